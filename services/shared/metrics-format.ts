/**
 * `/metrics` in two formats from one registry. Prometheus asks for OpenMetrics (its Accept
 * header puts `application/openmetrics-text` first), the only format that carries exemplars
 * (the trace id on a command-latency sample); curl, browsers and older scrapers get the
 * classic text format, exactly as before exemplars existed.
 *
 * Why not simply a second registry, or switching the content type: prom-client (15.1)
 * renders OpenMetrics by renaming every registered counter in place (it strips `_total`,
 * writes `# TYPE x counter` and appends `_total` to each sample). A counter shared with a
 * text-format registry would then lose `_total` in the text format, and flipping one
 * registry's content type per request races between concurrent scrapes. So the registry
 * the metrics live in stays in the text format and is never changed; each OpenMetrics scrape
 * renders through a throwaway registry in which every counter is a read-only view already
 * named without `_total`. Both formats therefore name the same series.
 */
import Negotiator from 'negotiator';
import { Counter, type Metric, type OpenMetricsContentType, Registry } from 'prom-client';

export type MetricsFormat = 'openmetrics' | 'text';

const OPENMETRICS_MEDIA_TYPE = 'application/openmetrics-text';
const TEXT_MEDIA_TYPES = new Set(['text/plain', 'text/*', '*/*']);

/**
 * The format a scraper prefers, by its Accept header (q-values respected): OpenMetrics only
 * when it ranks `application/openmetrics-text` above anything text/plain would satisfy;
 * the text format otherwise, including no header, an unreadable one, or types we cannot
 * serve (rather than a 406 that would break a scraper that worked before).
 */
export function negotiateMetricsFormat(accept: string | string[] | undefined): MetricsFormat {
  let preferred: string[];
  try {
    preferred = new Negotiator({ headers: { accept } }).mediaTypes();
  } catch {
    return 'text';
  }
  for (const type of preferred) {
    const t = type.toLowerCase();
    if (t === OPENMETRICS_MEDIA_TYPE) return 'openmetrics';
    if (TEXT_MEDIA_TYPES.has(t)) return 'text';
  }
  return 'text';
}

export interface RenderedMetrics {
  contentType: string;
  body: string;
}

/**
 * Renders a text-format registry (prom-client's default) in the given format. A metric with
 * exemplars joins such a registry with `registerMetric` after construction (prom-client's
 * constructor refuses a text-format registry, not knowing it is also rendered here).
 * Registry default labels (`setDefaultLabels`, unused in this project) would not carry over
 * to OpenMetrics.
 */
export async function renderMetrics(
  registry: Registry,
  format: MetricsFormat,
): Promise<RenderedMetrics> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE)
    throw new TypeError('renderMetrics takes a registry in the Prometheus text format');
  if (format === 'text')
    return { contentType: registry.contentType, body: await registry.metrics() };
  const om = new Registry<OpenMetricsContentType>();
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of registry.getMetricsAsArray()) {
    om.registerMetric(
      metric instanceof Counter ? counterView(metric, metric.name) : (metric as unknown as Metric),
    );
  }
  return { contentType: om.contentType, body: await om.metrics() };
}

/**
 * The counter as prom-client's OpenMetrics rendering expects it (named without `_total`,
 * which it appends to each sample), reading the live counter's values; renaming the view
 * leaves the counter alone.
 */
function counterView(counter: Counter, registeredName: string): Metric {
  const name = registeredName.replace(/_total$/, '');
  const view = {
    name,
    type: 'counter',
    get: async () => ({ ...(await counter.get()), name }),
  };
  return view as unknown as Metric;
}
