/**
 * Reading a /metrics page as Prometheus would ingest it, in either exposition format
 * (Prometheus text or OpenMetrics): the series its sample lines name, and their exemplars.
 */

/** A sample line: name, optional label set (quoted values may hold `}` or escapes), then a space. */
const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?[ \t]/;
/** What follows a sample's value in OpenMetrics: ` # {labels} value [timestamp]`. */
const EXEMPLAR = / # (\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}) (\S+)(?: (\S+))?$/;

/** Every series (`name{labels}`, labels as written) the page's sample lines carry. */
export function seriesIn(page: string): Set<string> {
  const series = new Set<string>();
  for (const line of page.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m) series.add(m[1]! + (m[2] ?? ''));
  }
  return series;
}

/** The metric names of `seriesIn`: what `__name__` Prometheus would store. */
export function seriesNamesIn(page: string): Set<string> {
  return new Set([...seriesIn(page)].map((s) => s.replace(/\{.*$/, '')));
}

export interface ExemplarLine {
  series: string;
  labels: Record<string, string>;
  value: number;
}

/** The exemplars on a page (OpenMetrics only has them). */
export function exemplarsIn(page: string): ExemplarLine[] {
  const out: ExemplarLine[] = [];
  for (const line of page.split('\n')) {
    if (line.startsWith('#')) continue;
    const s = SAMPLE.exec(line);
    const e = EXEMPLAR.exec(line);
    if (!s || !e) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of e[1]!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[k!] = v!;
    out.push({ series: s[1]! + (s[2] ?? ''), labels, value: Number(e[2]) });
  }
  return out;
}

/** Sorted, for readable diffs in expectations. */
export const sorted = (s: Iterable<string>): string[] => [...s].sort();
