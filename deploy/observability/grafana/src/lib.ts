/**
 * Building blocks shared by the dashboards in this folder: the data source, the label
 * matchers every selector starts with, the node_name join, the standard panel shapes
 * (stat, table, time series) and the dashboard shell with its variables and links.
 * Built with @grafana/grafana-foundation-sdk (dashboard schema v1, the JSON model
 * that file provisioning and the Grafana sidecar read).
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/**
 * The schema version written into the JSON: Grafana 12's (12.0 and later read it). The
 * SDK defaults to the newest one; nothing here needs a newer schema.
 */
export const SCHEMA_VERSION = 41;

/** Every panel, target and query variable uses the `datasource` variable, by uid. */
export const DATASOURCE: dashboard.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

// ---- Selectors ------------------------------------------------------------------------

/** How every selector starts: one cluster (optional label) and one namespace (release). */
export const SCOPE = 'cluster=~"$cluster", namespace="$namespace"';

/** `metric{<scope>, <matchers>...}` */
export const series = (metric: string, ...matchers: string[]): string =>
  `${metric}{${[SCOPE, ...matchers].join(', ')}}`;
/** A controller series: scope and the `controller_job` variable. */
export const ctl = (metric: string, ...matchers: string[]): string =>
  series(metric, 'job=~"$controller_job"', ...matchers);
/** A node series: scope and the `node_job` variable. */
export const nod = (metric: string, ...matchers: string[]): string =>
  series(metric, 'job=~"$node_job"', ...matchers);

export const rate = (selector: string): string => `rate(${selector}[$__rate_interval])`;
export const increase = (selector: string, window = '$__rate_interval'): string =>
  `increase(${selector}[${window}])`;

/** A quantile of a histogram: `inner` is the rate of its buckets, summed by `by` and le. */
export const histogramQuantile = (phi: string, by: string, inner: string): string =>
  `histogram_quantile(${phi}, sum by (${by}, le) (${inner}))`;

/**
 * Labels a node series with its `node_name` (from currency_node_info, joined on cluster,
 * namespace and instance) so that legends and tables name nodes, not `IP:port` instances.
 * `selectedNodes` also keeps only the nodes of the `node` variable.
 */
export const withNodeName = (expr: string, selectedNodes: boolean): string =>
  `${expr} * on (cluster, namespace, instance) group_left (node_name) ` +
  `max by (cluster, namespace, instance, node_name) (${nodeInfo(selectedNodes)})`;
/** currency_node_info of the selected node jobs (and nodes). */
export const nodeInfo = (selectedNodes: boolean): string =>
  selectedNodes ? nod('currency_node_info', 'node_name=~"$node"') : nod('currency_node_info');

// ---- Queries ----------------------------------------------------------------------------

export interface Query {
  expr: string;
  legend: string;
  /** Show exemplars (trace links) of this query. */
  exemplar?: boolean;
}
/** A range query and its legend. */
export const q = (expr: string, legend: string, more: Partial<Query> = {}): Query => ({
  expr,
  legend,
  ...more,
});

/** Targets A, B, C... in code mode, on the `datasource` variable. */
const targets = (queries: Query[], asTable = false): prometheus.DataqueryBuilder[] =>
  queries.map((query, i) => {
    const t = new prometheus.DataqueryBuilder()
      .refId(String.fromCharCode(65 + i))
      .datasource(DATASOURCE)
      .editorMode(prometheus.QueryEditorMode.Code)
      .expr(query.expr)
      .legendFormat(query.legend);
    if (asTable) t.instant().format(prometheus.PromQueryFormat.Table);
    else t.range();
    if (query.exemplar) t.exemplar(true);
    return t;
  });

// ---- Field config pieces ----------------------------------------------------------------

/** Absolute thresholds: a base color, then `[from, color]` steps. */
export const thresholds = (
  base: string,
  ...steps: [number, string][]
): dashboard.ThresholdsConfigBuilder =>
  new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps([{ color: base, value: null }, ...steps.map(([value, color]) => ({ color, value }))]);

/** Value mappings, value -> text and color. */
export const valueMap = (
  options: Record<string, dashboard.ValueMappingResult>,
): dashboard.ValueMapping[] => [{ type: dashboard.MappingType.ValueToText, options }];

/** Override property: one fixed color. */
export const fixedColor = (color: string): dashboard.DynamicConfigValue => ({
  id: 'color',
  value: { mode: 'fixed', fixedColor: color },
});

// ---- Panels -----------------------------------------------------------------------------

interface PanelHead {
  id: number;
  title: string;
  description: string;
  /** Width in grid columns (of 24). The SDK places panels left to right, row by row. */
  span: number;
}

/** A single-value stat panel, 4 high: last value, colored by thresholds. */
export const statPanel = (head: PanelHead, ...queries: Query[]): stat.PanelBuilder =>
  new stat.PanelBuilder()
    .id(head.id)
    .title(head.title)
    .description(head.description)
    .datasource(DATASOURCE)
    .span(head.span)
    .height(4)
    .targets(targets(queries))
    .unit('short')
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds))
    .reduceOptions(
      new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false),
    )
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.Area)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .textMode(common.BigValueTextMode.Auto)
    .orientation(common.VizOrientation.Auto);

/** A table of instant queries (one row per series), without the Time column. */
export const tablePanel = (
  head: PanelHead & { height: number },
  ...queries: Query[]
): table.PanelBuilder =>
  new table.PanelBuilder()
    .id(head.id)
    .title(head.title)
    .description(head.description)
    .datasource(DATASOURCE)
    .span(head.span)
    .height(head.height)
    .targets(targets(queries, true))
    .unit('short')
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm);

/** Hides columns of a table (the organize transformation). */
export const hideColumns = (...names: string[]): dashboard.DataTransformerConfig => ({
  id: 'organize',
  options: { excludeByName: Object.fromEntries(names.map((n) => [n, true])) },
});

/** A time series panel, 8 high: thin lines, light fill, legend below, tooltip of all series. */
export const graphPanel = (head: PanelHead, ...queries: Query[]): timeseries.PanelBuilder =>
  new timeseries.PanelBuilder()
    .id(head.id)
    .title(head.title)
    .description(head.description)
    .datasource(DATASOURCE)
    .span(head.span)
    .height(8)
    .targets(targets(queries))
    .drawStyle(common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false)
    .legend(
      new common.VizLegendOptionsBuilder()
        .displayMode(common.LegendDisplayMode.List)
        .placement(common.LegendPlacement.Bottom)
        .showLegend(true),
    )
    .tooltip(
      new common.VizTooltipOptionsBuilder()
        .mode(common.TooltipDisplayMode.Multi)
        .sort(common.SortOrder.Descending),
    );

/** Events per interval: bars, from 0. */
export const barsPanel = (head: PanelHead, ...queries: Query[]): timeseries.PanelBuilder =>
  graphPanel(head, ...queries)
    .drawStyle(common.GraphDrawStyle.Bars)
    .fillOpacity(80)
    .min(0);

/** Rates stacked by outcome, from 0, the `ok` series green. */
export const outcomesPanel = (head: PanelHead, ...queries: Query[]): timeseries.PanelBuilder =>
  graphPanel(head, ...queries)
    .fillOpacity(60)
    .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal).group('A'))
    .unit('ops')
    .min(0)
    .overrideByRegexp('/(^| )ok$/', [fixedColor('green')]);

// ---- Dashboard --------------------------------------------------------------------------

/** A row (expanded) of the panels that follow it. */
export const row = (id: number, title: string): dashboard.RowBuilder =>
  new dashboard.RowBuilder(title).id(id);

/** A query variable on the `datasource` variable, refreshed with the time range. */
export const queryVariable = (
  name: string,
  label: string,
  query: string,
  choice: { includeAll: boolean; multi: boolean; allValue?: string; description?: string },
): dashboard.QueryVariableBuilder => {
  const v = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .definition(query)
    .query(query)
    .hide(dashboard.VariableHide.DontHide)
    .includeAll(choice.includeAll)
    .multi(choice.multi)
    .options([])
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .regex('')
    .sort(dashboard.VariableSort.AlphabeticalAsc);
  if (choice.allValue !== undefined) v.allValue(choice.allValue);
  if (choice.description !== undefined) v.description(choice.description);
  return v;
};

/**
 * The variables every dashboard starts with: `datasource` (any Prometheus), `cluster`
 * (optional: "All" matches series without the label too) and `namespace` (one release at a
 * time), their values read from `infoMetric`.
 */
export const releaseVariables = (
  infoMetric: string,
): (dashboard.DatasourceVariableBuilder | dashboard.QueryVariableBuilder)[] => [
  new dashboard.DatasourceVariableBuilder('datasource')
    .label('Data source')
    .type('prometheus')
    .hide(dashboard.VariableHide.DontHide)
    .includeAll(false)
    .multi(false)
    .regex(''),
  queryVariable('cluster', 'Cluster', `label_values(${infoMetric}, cluster)`, {
    includeAll: true,
    multi: false,
    allValue: '.*',
    description: 'Optional: only where Prometheus sets a cluster label (All matches none too).',
  }),
  queryVariable(
    'namespace',
    'Namespace',
    `label_values(${infoMetric}{cluster=~"$cluster"}, namespace)`,
    {
      includeAll: false,
      multi: false,
      description: 'One release at a time: series of other namespaces are never summed in.',
    },
  ),
];

/** A job variable: the scrape jobs that expose `infoMetric` in the namespace. */
export const jobVariable = (name: string, label: string, infoMetric: string) =>
  queryVariable(name, label, `label_values(${infoMetric}{${SCOPE}}, job)`, {
    includeAll: true,
    multi: true,
  });

/** Drops the `placement` the SDK gives links and annotations by default ("inControlsMenu":
 * Grafana versions that know it would move them into the controls menu). */
const withoutPlacement = <T extends { placement?: unknown }>(b: { build(): T }) => ({
  build: (): T => {
    const built = b.build();
    delete built.placement;
    return built;
  },
});

/** A header link to another dashboard of this project, keeping time range and variables. */
const dashboardLink = (title: string, uid: string) =>
  withoutPlacement(
    new dashboard.DashboardLinkBuilder(title)
      .type(dashboard.DashboardLinkType.Link)
      .url(`/d/${uid}`)
      .icon('dashboard')
      .keepTime(true)
      .includeVars(true)
      .asDropdown(false)
      .targetBlank(false)
      .tags([])
      .tooltip(''),
  );

/** Grafana's own annotations and alerts, hidden from the controls. */
const builtInAnnotations = () =>
  withoutPlacement(
    new dashboard.AnnotationQueryBuilder()
      .builtIn(1)
      .datasource({ type: 'grafana', uid: '-- Grafana --' })
      .enable(true)
      .hide(true)
      .iconColor('rgba(0, 211, 255, 1)')
      .name('Annotations & Alerts')
      .type('dashboard'),
  );

/** The dashboard around the panels: uid, title, time, refresh, shared crosshair, a link. */
export const dashboardShell = (spec: {
  uid: string;
  title: string;
  description: string;
  link: { title: string; uid: string };
}): dashboard.DashboardBuilder =>
  new dashboard.DashboardBuilder(spec.title)
    .uid(spec.uid)
    .id(null)
    .description(spec.description)
    .tags(['currency-nodes'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .fiscalYearStartMonth(0)
    .timezone('browser')
    .weekStart('')
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .version(1)
    .annotation(builtInAnnotations())
    .link(dashboardLink(spec.link.title, spec.link.uid));

/** The dashboard model as it is written to JSON. */
export const toModel = (builder: dashboard.DashboardBuilder): dashboard.Dashboard => ({
  ...builder.build(),
  schemaVersion: SCHEMA_VERSION,
});
