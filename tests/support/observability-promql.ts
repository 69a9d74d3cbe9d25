/**
 * Reading the observability assets (Grafana dashboards, Prometheus rules) for the tests:
 * every PromQL expression in them, with Grafana's variables substituted, and the metric
 * names each one uses.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const ROOT = join(__dirname, '..', '..');
export const OBSERVABILITY_DIR = join(ROOT, 'deploy', 'observability');
export const DASHBOARDS_DIR = join(OBSERVABILITY_DIR, 'grafana', 'dashboards');
export const RULES_DIR = join(OBSERVABILITY_DIR, 'prometheus', 'rules');
export const RULES_FILE = join(RULES_DIR, 'currency-nodes.rules.yml');
export const RULES_TEST_FILE = join(RULES_DIR, 'currency-nodes.rules.test.yml');

export interface GrafanaTarget {
  refId?: string;
  expr?: string;
  datasource?: { type?: string; uid?: string };
  format?: string;
  instant?: boolean;
  exemplar?: boolean;
}

export interface GrafanaPanel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string } | string | null;
  gridPos?: { h?: number; w?: number; x?: number; y?: number };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string } | string | null;
}

export interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: GrafanaPanel[];
  templating?: { list?: GrafanaVariable[] };
}

export interface LoadedDashboard {
  file: string;
  dashboard: Dashboard;
}

export function loadDashboards(): LoadedDashboard[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      file: f,
      dashboard: JSON.parse(readFileSync(join(DASHBOARDS_DIR, f), 'utf8')) as Dashboard,
    }));
}

/** Every panel, including those nested in collapsed rows. */
export function allPanels(d: Dashboard): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (ps: GrafanaPanel[] | undefined) => {
    for (const p of ps ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

export interface PanelQuery {
  file: string;
  panel: string;
  refId: string;
  expr: string;
  /** Instant table queries (format: table) are run the same way: the API query is instant. */
  format?: string;
}

export function panelQueries(loaded: LoadedDashboard[]): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const { file, dashboard } of loaded) {
    for (const p of allPanels(dashboard)) {
      for (const t of p.targets ?? []) {
        out.push({
          file,
          panel: `#${p.id} ${p.title ?? '(untitled)'}`,
          refId: t.refId ?? '?',
          expr: t.expr ?? '',
          format: t.format,
        });
      }
    }
  }
  return out;
}

export function variableQuery(v: GrafanaVariable): string | undefined {
  if (typeof v.query === 'string') return v.query;
  return v.query?.query;
}

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadRules(file = RULES_FILE): Rule[] {
  const doc = parseYaml(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/**
 * Grafana's variables in an expression replaced by concrete values: `$var`, `${var}`,
 * `${var:format}` and `[[var]]`. Throws when a variable has no value, so a new variable
 * cannot slip through untested.
 */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  const pick = (name: string): string => {
    const v = values[name];
    if (v === undefined) throw new Error(`no test value for Grafana variable $${name} in: ${expr}`);
    return v;
  };
  return expr
    .replace(/\$\{(\w+)(?::\w+)?\}/g, (_m, n: string) => pick(n))
    .replace(/\[\[(\w+)(?::\w+)?\]\]/g, (_m, n: string) => pick(n))
    .replace(/\$(\w+)/g, (_m, n: string) => pick(n));
}

const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/**
 * Metric names used by a PromQL expression: identifiers that are not functions, keywords,
 * label names (inside `{}` or grouping clauses), strings, durations or numbers. Also the
 * names in `{__name__="..."}` matchers.
 */
export function metricNamesIn(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(m[1]);
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings
    .replace(/\{[^{}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery durations
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ') // grouping labels
    .replace(/\boffset\s+-?\w+/gi, ' ')
    .replace(/@\s*[\w.()]+/g, ' ');
  s = s.replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' '); // numbers
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const id = m[0];
    const after = s.slice((m.index ?? 0) + id.length);
    if (/^\s*\(/.test(after)) continue; // a function call
    if (PROMQL_KEYWORDS.has(id.toLowerCase())) continue;
    names.add(id);
  }
  return [...names].sort();
}

/** Series Prometheus makes itself for each target; not exposed by the programs. */
export const PROMETHEUS_SYNTHETIC_METRICS = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
  'ALERTS',
  'ALERTS_FOR_STATE',
]);

/**
 * Names a /metrics text page makes queryable: every `# TYPE` family (with `_bucket`,
 * `_sum`, `_count` for histograms and `_sum`, `_count` for summaries) and every sample
 * name. Families declared but without samples yet (labelled counters before their first
 * increment) are included: the name is right, there is just no series yet.
 */
export function exposedMetricNames(metricsText: string): Set<string> {
  const names = new Set<string>();
  for (const line of metricsText.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      const [, name, kind] = type;
      names.add(name);
      if (kind === 'histogram') ['_bucket', '_sum', '_count'].forEach((x) => names.add(name + x));
      if (kind === 'summary') ['_sum', '_count'].forEach((x) => names.add(name + x));
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{\s]/.exec(line);
    if (sample) names.add(sample[1]);
  }
  return names;
}

/**
 * A rule expression as the Helm chart scopes it to a release's namespace
 * (templates/prometheusrule.yaml, metrics.prometheusRule.scopeToNamespace): every
 * job="currency-..." matcher gets namespace="<ns>" beside it. tests/helm checks the chart
 * renders exactly this.
 */
export function scopeRuleExpr(expr: string, namespace: string): string {
  return expr.replace(
    /job="(currency-controller|currency-node)"/g,
    (_m, job: string) => `job="${job}", namespace="${namespace}"`,
  );
}

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
