/** Reads a controller's Prometheus text exposition (the same view an operator has). */
export async function scrape(metricsUrl: string): Promise<string> {
  const res = await fetch(`${metricsUrl}/metrics`);
  return res.text();
}

/** Sum of every series of `name` (all label sets); NaN when absent. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : NaN;
}

export async function gauges(metricsUrl: string, names: string[]): Promise<Record<string, number>> {
  const text = await scrape(metricsUrl);
  return Object.fromEntries(names.map((n) => [n, metricSum(text, n)]));
}

/** Sum of the series of `name` whose label text (`{...}`, or '' for none) passes `keep`. */
export function metricSumWhere(
  text: string,
  name: string,
  keep: (labels: string) => boolean,
): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const labels = rest[0] === '{' ? rest.slice(0, rest.indexOf('}') + 1) : '';
    if (!keep(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
