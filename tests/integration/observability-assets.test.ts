/**
 * The observability assets (deploy/observability): Prometheus alerting rules, Grafana
 * dashboards. Checked three ways:
 *  1. promtool checks the rules and runs their unit tests;
 *  2. the dashboard JSON is well-formed for Grafana (datasource variable, ids, layout,
 *     one expression per target) and names only metrics the real programs expose;
 *  3. a real Prometheus scrapes a real controller and real nodes through a failover, a
 *     kick and some CLI commands, and every dashboard query and rule expression is run
 *     through its HTTP API: each must parse, each panel query must return data, and each
 *     alert condition must hold exactly when the scenario says it should. Two releases run
 *     side by side, labelled with two namespaces as Kubernetes would: every panel runs with
 *     a concrete namespace and never sees the other release's series. One node reads its
 *     prices over HTTP from the test market (services/market) instead of the simulated
 *     upstream, and the market fails one of its pairs, so the upstream panels show real
 *     requests, failures and a withdrawal.
 * Grafana itself is not run (there is none to install here); see deploy/observability/README.md.
 *
 * Needs `npm run build` and `bash scripts/setup/prometheus.sh` (prometheus + promtool).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MarketServer, startMarketServer } from '../../services/market/server';
import {
  type GrafanaPanel,
  type LoadedDashboard,
  PROMETHEUS_SYNTHETIC_METRICS,
  RULES_DIR,
  RULES_FILE,
  ROOT,
  RULES_TEST_FILE,
  allPanels,
  exposedMetricNames,
  headingAnchor,
  loadDashboards,
  loadRules,
  metricNamesIn,
  panelQueries,
  scopeRuleExpr,
  substituteVariables,
  variableQuery,
} from '../support/observability-promql';
import {
  type Proc,
  TestPrometheus,
  WaitAborted,
  freePorts,
  httpGet,
  isRunning,
  killProcess,
  makeTempDir,
  programPath,
  requireBuilt,
  requireTool,
  runToEnd,
  runningCount,
  sleep,
  startProcess,
  stopAll,
  waitFor,
  type PromVectorSample,
} from '../support/observability-stack';
import {
  UNDECODABLE_FRAME,
  sendRawCliFrames,
  unknownCommandFrame,
} from '../support/observability-grpc';

type PromSample = { metric?: Record<string, string> };

const CONTROLLER_JOB = 'currency-controller';
const NODE_JOB = 'currency-node';
const PAIRS = ['EUR_USD', 'GBP_USD', 'USD_JPY', 'USD_CHF'];
/** The release under test, and a second one beside it in another namespace. */
const NS = 'obs-a';
const OTHER_NS = 'obs-b';
const OTHER_PAIRS = ['AUD_NZD', 'NZD_CAD'];
/** Metrics the rules may use before the programs export them (leader election is coming). */
/** How every selector of every dashboard query starts. */
const SCOPE = 'cluster=~"$cluster", namespace="$namespace"';
const PENDING_METRICS = new Set(['currency_controller_leader']);
/** The node that reads the test market over HTTP (the others use the simulated upstream). */
const UPSTREAM_NODE = 'obs-node-1';
/** Its NODE_UPSTREAM_FAIL_AFTER_MS: short, so the failed pair is withdrawn within the scenario. */
const UPSTREAM_FAIL_AFTER_MS = 1500;

describe('alerting rules', () => {
  it('pass promtool check rules', async () => {
    const promtool = requireTool('promtool');
    const r = await runToEnd(promtool, ['check', 'rules', RULES_FILE], {}, 30_000);
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  it('pass their unit tests under promtool test rules', async () => {
    const promtool = requireTool('promtool');
    // Run from the rules folder: the test file names the rules file relative to it.
    const r = await runToEnd(
      'sh',
      ['-c', `cd "${RULES_DIR}" && "${promtool}" test rules "${RULES_TEST_FILE}"`],
      {},
      60_000,
    );
    expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
    expect(`${r.stdout}${r.stderr}`).not.toContain('FAILED');
    expect(r.code).toBe(0);
  });

  it('give every alert a severity, a summary, a description and a runbook hint', () => {
    const rules = loadRules();
    const alerts = rules.filter((r) => r.alert);
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'CurrencyPairUnstreamed',
        'CurrencyNoNodesConnected',
        'CurrencyFailoverStorm',
        'CurrencyControllerDown',
        'CurrencyNodeReplaced',
        'CurrencyNodeIdentityRefused',
        'CurrencyStaleStreams',
        'CurrencyNoLeader',
      ]),
    );
    for (const a of alerts) {
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({
        alert: a.alert,
        severity: expect.stringMatching(/^(critical|warning|info)$/),
      });
      for (const key of ['summary', 'description', 'runbook']) {
        expect({
          alert: a.alert,
          key,
          ok: (a.annotations?.[key] ?? '').trim().length > 10,
        }).toEqual({
          alert: a.alert,
          key,
          ok: true,
        });
      }
    }
  });

  it('link every alert to its own section of docs/runbook.md and to a dashboard of this project', () => {
    const runbook = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) => headingAnchor(m[1])),
    );
    const uids = new Set(loadDashboards().map((d) => d.dashboard.uid));
    for (const a of loadRules().filter((r) => r.alert)) {
      const url = a.annotations?.runbook_url ?? '';
      expect({ alert: a.alert, runbook_url: url }).toEqual({
        alert: a.alert,
        runbook_url: `docs/runbook.md#${a.alert!.toLowerCase()}`,
      });
      expect({ alert: a.alert, section: anchors.has(url.split('#')[1]) }).toEqual({
        alert: a.alert,
        section: true,
      });
      const d =
        /^http:\/\/localhost:3000\/d\/([\w-]+)\/[\w-]+\?var-namespace=\{\{ \$labels\.namespace \}\}$/.exec(
          a.annotations?.dashboard_url ?? '',
        );
      expect({ alert: a.alert, dashboard: d && uids.has(d[1]) }).toEqual({
        alert: a.alert,
        dashboard: true,
      });
    }
  });

  it('select by job everywhere and keep namespace in every aggregation (so releases stay apart)', () => {
    for (const r of loadRules()) {
      // The chart scopes rules by adding namespace beside each job matcher: every selector
      // must have one.
      const selectors = [...r.expr.matchAll(/[a-z_:]+\{([^}]*)\}/g)].map((m) => m[1]);
      expect(selectors.length).toBeGreaterThan(0);
      for (const sel of selectors) {
        expect({ rule: r.alert, sel, job: /job="currency-(controller|node)"/.test(sel) }).toEqual({
          rule: r.alert,
          sel,
          job: true,
        });
      }
      for (const m of r.expr.matchAll(/\bby \(([^)]*)\)/g)) {
        expect({ rule: r.alert, by: m[1], namespace: /\bnamespace\b/.test(m[1]) }).toEqual({
          rule: r.alert,
          by: m[1],
          namespace: true,
        });
      }
    }
  });
});

describe('dashboards', () => {
  const loaded: LoadedDashboard[] = loadDashboards();

  it('include the overview dashboard and parse as JSON with a current schema and unique uids', () => {
    expect(loaded.map((l) => l.file)).toContain('currency-nodes-overview.json');
    const uids = loaded.map((l) => l.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, dashboard } of loaded) {
      expect({ file, uid: typeof dashboard.uid, title: typeof dashboard.title }).toEqual({
        file,
        uid: 'string',
        title: 'string',
      });
      // Grafana 11 writes 39-40, Grafana 12 writes 41.
      expect({ file, schemaVersion: dashboard.schemaVersion! >= 39 }).toEqual({
        file,
        schemaVersion: true,
      });
    }
  });

  it('declare a Prometheus ${datasource} variable and reference it by uid in every panel, target and query variable', () => {
    for (const { file, dashboard } of loaded) {
      const vars = dashboard.templating?.list ?? [];
      const ds = vars.find((v) => v.name === 'datasource');
      expect({ file, type: ds?.type, query: ds?.query }).toEqual({
        file,
        type: 'datasource',
        query: 'prometheus',
      });
      const byUid = { type: 'prometheus', uid: '${datasource}' };
      for (const v of vars.filter((x) => x.type === 'query')) {
        expect({ file, variable: v.name, datasource: v.datasource }).toEqual({
          file,
          variable: v.name,
          datasource: byUid,
        });
      }
      for (const p of allPanels(dashboard)) {
        if (p.type === 'row') {
          // Rows only group panels; they must not carry queries.
          expect({ file, panel: p.id, targets: p.targets ?? [] }).toEqual({
            file,
            panel: p.id,
            targets: [],
          });
          continue;
        }
        expect({ file, panel: p.title, datasource: p.datasource }).toEqual({
          file,
          panel: p.title,
          datasource: byUid,
        });
        for (const t of p.targets ?? []) {
          expect({ file, panel: p.title, ref: t.refId, datasource: t.datasource }).toEqual({
            file,
            panel: p.title,
            ref: t.refId,
            datasource: byUid,
          });
        }
      }
    }
  });

  it('give every panel a unique id, a grid position inside 24 columns and every target an expression', () => {
    for (const { file, dashboard } of loaded) {
      const panels = allPanels(dashboard);
      expect(panels.length).toBeGreaterThan(5);
      const ids = panels.map((p) => p.id);
      expect({ file, ids: ids.every((i) => Number.isInteger(i)) }).toEqual({ file, ids: true });
      expect({ file, unique: new Set(ids).size }).toEqual({ file, unique: ids.length });
      for (const p of panels) {
        const g = p.gridPos ?? {};
        const ok =
          [g.h, g.w, g.x, g.y].every((n) => Number.isInteger(n) && n! >= 0) &&
          g.w! >= 1 &&
          g.h! >= 1 &&
          g.x! + g.w! <= 24;
        expect({ file, panel: p.title, gridPos: ok }).toEqual({
          file,
          panel: p.title,
          gridPos: true,
        });
        if (p.type !== 'row') {
          expect({ file, panel: p.title, targets: (p.targets ?? []).length > 0 }).toEqual({
            file,
            panel: p.title,
            targets: true,
          });
          const refIds = (p.targets ?? []).map((t) => t.refId);
          expect({ file, panel: p.title, uniqueRefIds: new Set(refIds).size }).toEqual({
            file,
            panel: p.title,
            uniqueRefIds: refIds.length,
          });
        }
        for (const t of p.targets ?? []) {
          expect({ file, panel: p.title, expr: (t.expr ?? '').trim() !== '' }).toEqual({
            file,
            panel: p.title,
            expr: true,
          });
        }
      }
    }
  });

  it('scope every query to $cluster and $namespace, and name nodes by node_name, not by instance', () => {
    for (const { file, dashboard } of loaded) {
      const names = (dashboard.templating?.list ?? []).map((v) => v.name);
      expect({ file, names }).toEqual({
        file,
        names: expect.arrayContaining(['cluster', 'namespace']),
      });
      for (const p of allPanels(dashboard)) {
        for (const t of p.targets ?? []) {
          const expr = t.expr ?? '';
          const where = `${file} #${p.id} ${p.title} ${t.refId}`;
          for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
            expect({ where, sel: m[1], scoped: m[1].startsWith(SCOPE) }).toEqual({
              where,
              sel: m[1],
              scoped: true,
            });
          }
          // Node series carry an IP:port instance; legends name the node instead (the
          // controller's own process panels keep its instance).
          const legend = (t as { legendFormat?: string }).legendFormat ?? '';
          if (legend.includes('{{instance}}')) {
            expect({ where, controllerOnly: !expr.includes('$node_job') }).toEqual({
              where,
              controllerOnly: true,
            });
          }
          if (t.format === 'table' && expr.includes('currency_node_info'))
            expect({ where, nodeName: expr.includes('node_name') }).toEqual({
              where,
              nodeName: true,
            });
        }
      }
    }
  });

  it('show the panels the operators asked for on the overview', () => {
    const overview = loaded.find((l) => l.file === 'currency-nodes-overview.json')!.dashboard;
    const exprs = panelQueries([{ file: 'overview', dashboard: overview }])
      .map((q) => q.expr)
      .join('\n');
    for (const name of [
      'currency_controller_connected_nodes',
      'currency_controller_pairs_streamed',
      'currency_controller_pairs_known',
      'currency_controller_pairs_unstreamed',
      'currency_controller_failovers_total',
      'currency_controller_price_updates_total',
      'currency_controller_command_duration_seconds_bucket',
      'currency_controller_commands_total',
      'currency_node_reconnects_total',
      'currency_controller_malformed_frames_total',
      'currency_controller_node_disconnects_total',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ]) {
      expect({ name, used: exprs.includes(name) }).toEqual({ name, used: true });
    }
    expect(exprs).toMatch(/histogram_quantile\(0\.5,/);
    expect(exprs).toMatch(/histogram_quantile\(0\.99,/);
  });

  it('show exemplars (trace links) on command latency, from one query so that each shows once', () => {
    const withExemplars = loaded.flatMap(({ file, dashboard }) =>
      allPanels(dashboard).flatMap((p) =>
        (p.targets ?? [])
          .filter((t) => t.exemplar === true)
          .map((t) => ({ file, panel: p.title, expr: t.expr ?? '' })),
      ),
    );
    const latency = withExemplars.filter((t) =>
      t.expr.includes('currency_controller_command_duration_seconds_bucket'),
    );
    expect(latency.map((t) => `${t.file} ${t.panel}`)).toEqual([
      'currency-nodes-overview.json Command latency p50 / p99 by command',
    ]);
  });

  it('lay panels out without overlaps, each row above its own panels', () => {
    type Box = { x: number; y: number; w: number; h: number };
    const box = (p: GrafanaPanel): Box => ({
      x: p.gridPos?.x ?? 0,
      y: p.gridPos?.y ?? 0,
      w: p.gridPos?.w ?? 0,
      h: p.gridPos?.h ?? 0,
    });
    const overlap = (a: Box, b: Box) =>
      a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    for (const { file, dashboard } of loaded) {
      // The top level is one grid; the panels of a collapsed row are another, shown in its place.
      const grids = [
        dashboard.panels ?? [],
        ...(dashboard.panels ?? [])
          .filter((p) => (p.panels ?? []).length > 0)
          .map((p) => p.panels!),
      ];
      const overlaps: string[] = [];
      for (const grid of grids) {
        grid.forEach((a, i) =>
          grid.slice(i + 1).forEach((b) => {
            if (overlap(box(a), box(b))) overlaps.push(`#${a.id} ${a.title} / #${b.id} ${b.title}`);
          }),
        );
      }
      expect({ file, overlaps }).toEqual({ file, overlaps: [] });
      // Grafana places panels by gridPos alone; the list follows the grid too, so that a
      // reader (and rowPanels below) finds a row's panels after it.
      const top = dashboard.panels ?? [];
      const outOfOrder = top
        .slice(1)
        .filter((p, i) => box(p).y < box(top[i]).y)
        .map((p) => `#${p.id} ${p.title}`);
      expect({ file, outOfOrder }).toEqual({ file, outOfOrder: [] });
    }
  });

  /** The non-row panels under the row titled `title` (up to the next row). */
  const rowPanels = (file: string, title: string): GrafanaPanel[] => {
    const panels = loaded.find((l) => l.file === file)!.dashboard.panels ?? [];
    const start = panels.findIndex((p) => p.type === 'row' && p.title === title);
    if (start < 0) return [];
    const end = panels.findIndex((p, i) => i > start && p.type === 'row');
    return panels.slice(start + 1, end < 0 ? undefined : end);
  };
  type WithFieldConfig = GrafanaPanel & {
    fieldConfig?: { defaults?: { unit?: string; custom?: { stacking?: { mode?: string } } } };
  };

  it('show the upstream panels on the node dashboard, per selected node like its other panels', () => {
    const panels = rowPanels('currency-nodes-node.json', 'Upstreams') as WithFieldConfig[];
    expect(panels.map((p) => p.title)).toEqual([
      'Upstream reads by outcome',
      'Failed upstream reads (ratio)',
      'Upstream request latency p50 / p99',
      'Upstream price age per pair (top 10)',
      'Withdrawn pairs',
      'Withdrawals per pair',
    ]);
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    for (const name of [
      'currency_node_upstream_requests_total',
      'currency_node_upstream_request_duration_seconds_bucket',
      'currency_node_upstream_price_age_seconds',
      'currency_node_upstream_withdrawn_pairs',
      'currency_node_upstream_withdrawals_total',
    ]) {
      expect({ name, used: exprs.some((e) => e.includes(name)) }).toEqual({ name, used: true });
    }
    // Every query names its nodes by node_name and follows the node variable.
    const join =
      '* on (cluster, namespace, instance) group_left (node_name) max by (cluster, namespace, instance, node_name) (currency_node_info{cluster=~"$cluster", namespace="$namespace", job=~"$node_job", node_name=~"$node"})';
    for (const e of exprs) expect({ e, joined: e.includes(join) }).toEqual({ e, joined: true });
    const all = exprs.join('\n');
    expect(all).toContain(
      'histogram_quantile(0.5, sum by (node_name, le) (rate(currency_node_upstream_request_duration_seconds_bucket{',
    );
    expect(all).toContain(
      'histogram_quantile(0.99, sum by (node_name, le) (rate(currency_node_upstream_request_duration_seconds_bucket{',
    );
    expect(all).toContain(
      'topk(10, max by (node_name, pair) (currency_node_upstream_price_age_seconds{',
    );
    const byTitle = new Map(panels.map((p) => [p.title, p]));
    expect(
      byTitle.get('Upstream reads by outcome')?.fieldConfig?.defaults?.custom?.stacking?.mode,
    ).toBe('normal');
    expect(byTitle.get('Failed upstream reads (ratio)')?.fieldConfig?.defaults?.unit).toBe(
      'percentunit',
    );
  });

  it("show withdrawn pairs, the nodes offering each pair and the streamers' price deviation on the overview", () => {
    const panels = rowPanels('currency-nodes-overview.json', 'Upstreams');
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const name of [
      'currency_node_upstream_withdrawn_pairs',
      'currency_controller_pair_capable_nodes',
      'currency_controller_price_deviation_ratio',
      'currency_node_upstream_requests_total',
    ]) {
      expect({ name, used: exprs.includes(name) }).toEqual({ name, used: true });
    }
    expect(exprs).toContain('topk(10, max by (pair) (currency_controller_price_deviation_ratio{');
    expect(exprs).toContain('bottomk(10, max by (pair) (currency_controller_pair_capable_nodes{');
    // Unstreamed pairs and the reassignment reasons (withdrawn among them) stay where they were.
    const overview = panelQueries(loaded.filter((l) => l.file === 'currency-nodes-overview.json'));
    expect(overview.map((q) => q.panel.replace(/^#\d+ /, ''))).toEqual(
      expect.arrayContaining(['Pairs unstreamed', 'Stream reassignments by reason']),
    );
  });
});

/**
 * The scenario: a controller and three nodes announcing the same pairs; Prometheus scrapes
 * them every second with the rules loaded. CLI commands run (ok outcomes, latency samples),
 * an unknown command and an undecodable frame are sent, the test market fails one pair of the
 * node that reads it over HTTP (upstream failures, a withdrawal, a withdrawn reassignment),
 * another streaming node is SIGKILLed (failovers, a node disconnect, node_left
 * reassignments) and the upstream node is kicked (it reconnects). Then every expression is run. A second release (a controller and one node with
 * other pairs) runs beside it, its targets labelled with another namespace.
 */
describe('against a real Prometheus scraping the real programs', () => {
  let tmp: ReturnType<typeof makeTempDir> | undefined;
  let prom: TestPrometheus;
  let controllerAddr = '';
  let controllerMetricsUrl = '';
  const nodes: { name: string; uuid: string; metricsAddr: string; proc: Proc }[] = [];
  let killed: (typeof nodes)[number];
  let kicked: (typeof nodes)[number];
  /** The test market the upstream node reads, and the pair it fails for that node. */
  let market: MarketServer | undefined;
  let upstreamNode: (typeof nodes)[number];
  let failedPair = '';
  /** What the withdrawal panels say right after the withdrawal (their windows are short). */
  let afterWithdrawal: { withdrawals: PromVectorSample[]; reassignments: PromVectorSample[] } = {
    withdrawals: [],
    reassignments: [],
  };
  let controller: Proc;
  const other: { name: string; metricsAddr: string; controllerMetricsAddr: string } = {
    name: 'obs-b-node-1',
    metricsAddr: '',
    controllerMetricsAddr: '',
  };
  const liveNames = new Set<string>();
  let afterKill: Record<string, number> = {};
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  const mark = (what: string) => (timings[what] = Date.now() - t0);

  const cli = async (...args: string[]) => {
    const r = await runToEnd(
      process.execPath,
      [programPath('cli'), '--controller', controllerAddr, '--timeout', '5', ...args],
      {
        LOG_LEVEL: 'warn',
      },
    );
    if (r.code !== 0)
      throw new Error(`currency-cli ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const scalar = async (expr: string): Promise<number | undefined> => {
    const v = await prom.vector(expr);
    return v.length === 1 ? Number(v[0].value[1]) : undefined;
  };
  const nodeMetric = async (node: (typeof nodes)[number], name: string): Promise<number> => {
    const { body } = await httpGet(`http://${node.metricsAddr}/metrics`);
    const line = body.split('\n').find((l) => l.startsWith(`${name} `));
    if (!line) throw new Error(`${name} not in ${node.name}'s /metrics`);
    return Number(line.split(' ')[1]);
  };

  beforeAll(async () => {
    requireBuilt();
    requireTool('prometheus');
    tmp = makeTempDir('currency-obs-');
    const [
      grpcPort,
      ctlMetricsPort,
      promPort,
      otherGrpc,
      otherCtlMetrics,
      otherNode,
      ...nodePorts
    ] = await freePorts(6 + 3);
    controllerAddr = `127.0.0.1:${grpcPort}`;
    const controllerMetricsAddr = `127.0.0.1:${ctlMetricsPort}`;
    controllerMetricsUrl = `http://${controllerMetricsAddr}/metrics`;

    controller = startProcess('controller', process.execPath, [programPath('controller')], {
      CONTROLLER_LISTEN_ADDR: controllerAddr,
      METRICS_ADDR: controllerMetricsAddr,
      LOG_LEVEL: 'warn',
    });
    await waitFor('the controller to be ready', async () => {
      if (!isRunning(controller))
        throw new WaitAborted(`controller exited: ${controller.output()}`);
      return (await httpGet(`http://${controllerMetricsAddr}/readyz`, 1_000)).status === 200;
    });
    market = await startMarketServer();
    for (const [i, port] of nodePorts.entries()) {
      const uuid = randomUUID();
      const name = `obs-node-${i + 1}`;
      const metricsAddr = `127.0.0.1:${port}`;
      // One node reads the test market over HTTP, the others the simulated upstream.
      const upstream: Record<string, string> =
        name === UPSTREAM_NODE
          ? {
              NODE_UPSTREAM: 'http',
              NODE_UPSTREAM_URL: `${market.url}/v1/quote/{symbol}?client=${name}`,
              NODE_UPSTREAM_PRICE_PATH: 'price',
              NODE_UPSTREAM_TIME_PATH: 'time',
              NODE_UPSTREAM_TIMEOUT_MS: '1000',
              NODE_UPSTREAM_MAX_RPS: '50',
              NODE_UPSTREAM_FAIL_AFTER_MS: String(UPSTREAM_FAIL_AFTER_MS),
            }
          : {};
      const proc = startProcess(name, process.execPath, [programPath('node')], {
        ...upstream,
        NODE_CONTROLLER_ADDR: controllerAddr,
        NODE_CURRENCY_PAIRS: PAIRS.join(','),
        NODE_PRICE_INTERVAL_MS: '200-400',
        NODE_UUID: uuid,
        NODE_NAME: name,
        METRICS_ADDR: metricsAddr,
        LOG_LEVEL: 'warn',
      });
      nodes.push({ name, uuid, metricsAddr, proc });
    }
    // The other release: its own controller and one node, other pairs, other names.
    other.controllerMetricsAddr = `127.0.0.1:${otherCtlMetrics}`;
    other.metricsAddr = `127.0.0.1:${otherNode}`;
    const otherController = startProcess(
      'other-controller',
      process.execPath,
      [programPath('controller')],
      {
        CONTROLLER_LISTEN_ADDR: `127.0.0.1:${otherGrpc}`,
        METRICS_ADDR: other.controllerMetricsAddr,
        LOG_LEVEL: 'warn',
      },
    );
    const otherNodeProc = startProcess(other.name, process.execPath, [programPath('node')], {
      NODE_CONTROLLER_ADDR: `127.0.0.1:${otherGrpc}`,
      NODE_CURRENCY_PAIRS: OTHER_PAIRS.join(','),
      NODE_PRICE_INTERVAL_MS: '200-400',
      NODE_NAME: other.name,
      METRICS_ADDR: other.metricsAddr,
      LOG_LEVEL: 'warn',
    });
    await waitFor(
      'three nodes connected and every pair streamed',
      async () => {
        const dead = [controller, otherController, otherNodeProc, ...nodes.map((n) => n.proc)].find(
          (p) => !isRunning(p),
        );
        if (dead) throw new WaitAborted(`${dead.name} exited: ${dead.output()}`);
        const { body } = await httpGet(controllerMetricsUrl, 1_000);
        const otherBody = (await httpGet(`http://${other.controllerMetricsAddr}/metrics`, 1_000))
          .body;
        return (
          /^currency_controller_connected_nodes 3$/m.test(body) &&
          new RegExp(`^currency_controller_pairs_streamed ${PAIRS.length}$`, 'm').test(body) &&
          new RegExp(`^currency_controller_pairs_streamed ${OTHER_PAIRS.length}$`, 'm').test(
            otherBody,
          )
        );
      },
      { timeoutMs: 20_000 },
    );
    mark('programs up');

    prom = await TestPrometheus.start({
      dir: tmp.path,
      port: promPort,
      ruleFiles: [RULES_FILE],
      jobs: {
        [CONTROLLER_JOB]: [controllerMetricsAddr, other.controllerMetricsAddr],
        [NODE_JOB]: [...nodes.map((n) => n.metricsAddr), other.metricsAddr],
      },
      // What Kubernetes' service discovery would set for two releases in two namespaces.
      targetLabels: Object.fromEntries([
        ...[controllerMetricsAddr, ...nodes.map((n) => n.metricsAddr)].map((t) => [
          t,
          { namespace: NS },
        ]),
        ...[other.controllerMetricsAddr, other.metricsAddr].map((t) => [
          t,
          { namespace: OTHER_NS },
        ]),
      ]),
    });
    await waitFor(
      'all six targets up with samples',
      async () =>
        (await scalar('sum(up)')) === 6 &&
        (await scalar('count(currency_node_connected == 1)')) === 4,
      { timeoutMs: 30_000 },
    );
    mark('prometheus scraping');

    // Commands: ok outcomes and latency samples on the controller and on the nodes.
    await cli('controller', 'nodes');
    await cli('controller', 'streams');
    await cli('controller', 'prices');
    await cli('controller', 'version');
    await cli('node', 'status', '--all');
    // An unknown command (answered) and an undecodable frame (counted, not answered).
    const replies = await sendRawCliFrames(
      controllerAddr,
      [
        unknownCommandFrame(
          'obs-unknown-1',
          randomUUID(),
          'type.googleapis.com/protobuf.ObservabilityProbeV1Req',
        ),
      ],
      { expectReplies: 1 },
    );
    expect(replies).toBeGreaterThanOrEqual(1);
    await sendRawCliFrames(controllerAddr, [UNDECODABLE_FRAME]);

    // Upstream failure: the market answers 500 to the HTTP node for one pair it streams.
    // After NODE_UPSTREAM_FAIL_AFTER_MS the node withdraws the pair (it stays connected and
    // keeps probing it) and the controller moves the pair to another node (reason withdrawn).
    // This node is the one kicked later and the one the node dashboard shows.
    upstreamNode = nodes.find((n) => n.name === UPSTREAM_NODE)!;
    kicked = upstreamNode;
    const streamed = await waitFor('the upstream node to stream a pair', async () => {
      const pairs = JSON.parse(await cli('--json', 'controller', 'streams')) as {
        currencyPair: string;
        nodeUuids: string[];
      }[];
      return pairs.find((p) => p.nodeUuids.includes(upstreamNode.uuid));
    });
    failedPair = streamed.currencyPair;
    market!.setFault({ symbol: failedPair, client: UPSTREAM_NODE, mode: 'http_500' });
    await waitFor(
      'Prometheus to see the pair withdrawn and streamed by another node',
      async () =>
        (await scalar(
          `currency_node_upstream_withdrawn_pairs{instance="${upstreamNode.metricsAddr}"}`,
        )) === 1 &&
        (await scalar(
          `currency_controller_pair_streamers{namespace="${NS}", pair="${failedPair}"}`,
        )) === 1 &&
        (await scalar(
          `currency_controller_pair_capable_nodes{namespace="${NS}", pair="${failedPair}"}`,
        )) ===
          nodes.length - 1,
      { timeoutMs: 20_000 },
    );
    mark('withdrawal seen');
    await sleep(2_500);
    afterWithdrawal = {
      withdrawals: await panelSeries('currency-nodes-node.json Withdrawals per pair A'),
      reassignments: await panelSeries(
        'currency-nodes-overview.json Stream reassignments by reason A',
      ),
    };

    // Failover: SIGKILL a node that streams at least one pair (the third node knows every
    // pair; the upstream node all but the failed one).
    const streaming = await Promise.all(
      nodes.map((n) => nodeMetric(n, 'currency_node_pairs_streaming')),
    );
    const idx = streaming.findIndex((s, i) => s > 0 && nodes[i] !== upstreamNode);
    expect(idx).toBeGreaterThanOrEqual(0);
    killed = nodes[idx];
    await killProcess(killed.proc, 'SIGKILL');
    await waitFor(
      'Prometheus to see the failover and the killed node down',
      async () =>
        ((await scalar(`sum(currency_controller_failovers_total{job="${CONTROLLER_JOB}"})`)) ??
          0) >= 1 &&
        (await scalar(`up{job="${NODE_JOB}", instance="${killed.metricsAddr}"}`)) === 0 &&
        (await scalar(`sum(currency_controller_connected_nodes{namespace="${NS}"})`)) === 2 &&
        (await scalar(`sum(currency_controller_pairs_unstreamed)`)) === 0,
      { timeoutMs: 20_000 },
    );
    mark('failover seen');
    // What the panels say right after the node died, before the kick adds more events
    // (after a few more scrapes, so each series has samples on both sides of the event).
    await sleep(2_500);
    const capture = (title: string) =>
      panelSum(`currency-nodes-overview.json ${title} A`).catch(() => Number.NaN);
    afterKill = {
      failoversInRange: await capture('Failovers in range'),
      failoversPerPair: await capture('Failovers per pair'),
      disconnectsByReason: await capture('Node disconnects by reason'),
      reassignmentsByReason: await capture('Stream reassignments by reason'),
    };

    // Kick: the node reconnects by itself.
    await cli('controller', 'kick', kicked.uuid);
    await waitFor(
      'Prometheus to see the kicked node reconnect',
      async () =>
        ((await scalar(`currency_node_reconnects_total{instance="${kicked.metricsAddr}"}`)) ?? 0) >=
          1 && (await scalar(`sum(currency_controller_connected_nodes{namespace="${NS}"})`)) === 2,
      { timeoutMs: 20_000 },
    );
    mark('kick seen');

    // Fresh command samples inside the rate windows, then let a few scrapes land.
    await cli('controller', 'nodes');
    await cli('node', 'status', '--all');
    await sleep(3_000);
    const { body } = await httpGet(controllerMetricsUrl);
    exposedMetricNames(body).forEach((n) => liveNames.add(n));
    for (const n of nodes.filter((x) => x !== killed)) {
      exposedMetricNames((await httpGet(`http://${n.metricsAddr}/metrics`)).body).forEach((x) =>
        liveNames.add(x),
      );
    }
    mark('scenario done');
  }, 150_000);

  afterAll(async () => {
    await stopAll();
    await market?.close();
    tmp?.remove();
    expect(runningCount()).toBe(0);
    process.stdout.write(
      `observability scenario timings (ms since start): ${JSON.stringify(timings)}\n`,
    );
  }, 30_000);

  /** Grafana's variables as the test resolves them: real job names and a real node. */
  const variableValues = (namespace = NS) => ({
    datasource: 'unused-in-promql',
    // No cluster label here: the variable is then "All", which Grafana sends as its allValue.
    cluster: '.*',
    namespace,
    controller_job: CONTROLLER_JOB,
    node_job: NODE_JOB,
    // The kicked node: it has reconnects in range, so the node dashboard's stats have data.
    node: namespace === NS ? kicked.name : other.name,
    // Grafana computes these from the time range and the scrape interval; these stand in
    // for a short range on a 1 s scrape.
    __rate_interval: '30s',
    __interval: '5s',
    __range: '5m',
  });

  /** A panel query by "file title refId", variables substituted, summed over its series. */
  const panelSum = async (key: string, namespace = NS): Promise<number> => {
    const q = panelQueries(loadDashboards()).find(
      (x) => `${x.file} ${x.panel.replace(/^#\d+ /, '')} ${x.refId}` === key,
    );
    if (!q) throw new Error(`no panel query ${key}`);
    const result = await prom.vector(substituteVariables(q.expr, variableValues(namespace)));
    if (result.length === 0) throw new Error(`panel query ${key} returned no data`);
    return result.reduce((sum, sample) => sum + Number(sample.value[1]), 0);
  };

  /** A panel query by "file title refId", variables substituted: its series. */
  const panelSeries = async (key: string, namespace = NS): Promise<PromVectorSample[]> => {
    const q = panelQueries(loadDashboards()).find(
      (x) => `${x.file} ${x.panel.replace(/^#\d+ /, '')} ${x.refId}` === key,
    );
    if (!q) throw new Error(`no panel query ${key}`);
    return prom.vector(substituteVariables(q.expr, variableValues(namespace)));
  };
  /** label value -> sample value, for the series of one panel query. */
  const byLabel = (samples: PromVectorSample[], label: string): Record<string, number> =>
    Object.fromEntries(samples.map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

  it('expose every metric name the dashboards and the rules use', () => {
    const used = new Map<string, string[]>();
    const note = (name: string, where: string) =>
      used.set(name, [...(used.get(name) ?? []), where]);
    for (const q of panelQueries(loadDashboards())) {
      for (const n of metricNamesIn(q.expr)) note(n, `${q.file} ${q.panel} ${q.refId}`);
    }
    for (const { file, dashboard } of loadDashboards()) {
      for (const v of dashboard.templating?.list ?? []) {
        const q = v.type === 'query' ? variableQuery(v) : undefined;
        const m = q ? /^label_values\((.+),\s*\w+\)$/.exec(q) : null;
        if (m) for (const n of metricNamesIn(m[1])) note(n, `${file} variable ${v.name}`);
      }
    }
    for (const r of loadRules())
      for (const n of metricNamesIn(r.expr)) note(n, `rule ${r.alert ?? r.record}`);
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used.entries()]
      .filter(
        ([n]) =>
          !liveNames.has(n) && !PROMETHEUS_SYNTHETIC_METRICS.has(n) && !PENDING_METRICS.has(n),
      )
      .map(([n, where]) => `${n} (used in ${where.join('; ')})`);
    expect(missing).toEqual([]);
  });

  it('answer every dashboard panel query with data from Prometheus', async () => {
    const queries = panelQueries(loadDashboards());
    expect(queries.length).toBeGreaterThan(30);
    const problems: string[] = [];
    for (const q of queries) {
      const expr = substituteVariables(q.expr, variableValues());
      const r = await prom.query(expr);
      const where = `${q.file} ${q.panel} ${q.refId}: ${expr}`;
      if (r.status !== 'success') problems.push(`${where}: ${r.errorType}: ${r.error}`);
      else if (!Array.isArray(r.data?.result) || r.data.result.length === 0)
        problems.push(`${where}: no data`);
    }
    expect(problems).toEqual([]);
  }, 60_000);

  it("keep two releases in two namespaces apart: a namespace's panels never see the other's series", async () => {
    // Unscoped, the two releases would add up: that is what the namespace variable prevents.
    expect(await scalar('sum(currency_controller_connected_nodes)')).toBe(3);
    const overview = (title: string, ns: string) =>
      panelSum(`currency-nodes-overview.json ${title} A`, ns);
    expect(await overview('Connected nodes', NS)).toBe(2);
    expect(await overview('Connected nodes', OTHER_NS)).toBe(1);
    expect(await overview('Pairs known', NS)).toBe(PAIRS.length);
    expect(await overview('Pairs known', OTHER_NS)).toBe(OTHER_PAIRS.length);
    expect(await overview('Connected CLIs', OTHER_NS)).toBe(0);
    // Every panel, run for the other namespace: it parses, and no series in any answer
    // names a pair, node, instance or namespace of the release under test.
    const ours = new Set([
      NS,
      ...PAIRS,
      ...nodes.flatMap((n) => [n.name, n.metricsAddr]),
      controllerMetricsUrl.replace(/^http:\/\/|\/metrics$/g, ''),
    ]);
    const problems: string[] = [];
    let withData = 0;
    for (const q of panelQueries(loadDashboards())) {
      const expr = substituteVariables(q.expr, variableValues(OTHER_NS));
      const r = await prom.query(expr);
      if (r.status !== 'success') {
        problems.push(`${q.file} ${q.panel} ${q.refId}: ${r.error}`);
        continue;
      }
      const result = Array.isArray(r.data?.result) ? (r.data.result as PromSample[]) : [];
      if (result.length > 0) withData++;
      for (const sample of result) {
        const leaked = Object.values(sample.metric ?? {}).filter((v) => ours.has(v));
        if (leaked.length > 0)
          problems.push(`${q.file} ${q.panel} ${q.refId}: ${leaked.join(', ')} in ${expr}`);
      }
    }
    expect(problems).toEqual([]);
    expect(withData).toBeGreaterThan(20);
    // And the other way round: the node panels of our namespace never show the other node.
    const ourNodes = await prom.vector(
      substituteVariables(
        panelQueries(loadDashboards()).find(
          (x) =>
            x.file === 'currency-nodes-overview.json' &&
            x.panel.endsWith(' Price updates sent per node'),
        )!.expr,
        variableValues(NS),
      ),
    );
    const names = ourNodes.map((x) => x.metric.node_name).sort();
    expect(names).toEqual(
      nodes
        .filter((n) => n !== killed)
        .map((n) => n.name)
        .sort(),
    );
  });

  it('show what happened on the key panels: two nodes, every pair streamed, a reconnect', async () => {
    const overview = (title: string) => panelSum(`currency-nodes-overview.json ${title} A`);
    const node = (title: string) => panelSum(`currency-nodes-node.json ${title} A`);
    expect(await overview('Connected nodes')).toBe(2);
    expect(await overview('Pairs known')).toBe(PAIRS.length);
    expect(await overview('Pairs streamed')).toBe(PAIRS.length);
    expect(await overview('Pairs unstreamed')).toBe(0);
    expect(await node('Reconnects in range')).toBeGreaterThanOrEqual(1);
    expect(await node('Connected to a controller')).toBe(1);
  });

  // Prometheus sees a counter's first increment only if the series existed (at 0) before
  // it: rate() and increase() start from the first scraped sample. So the first failover of
  // a pair, or the first disconnect of a reason, is visible on these panels (and to the
  // failover alerts) only when the programs create those labelled series at 0 up front
  // (prom-client: `counter.inc({ pair }, 0)` when a pair becomes known).
  it('count the first node death on the failover, disconnect and reassignment panels', () => {
    expect(afterKill).toEqual({
      failoversInRange: expect.any(Number),
      failoversPerPair: expect.any(Number),
      disconnectsByReason: expect.any(Number),
      reassignmentsByReason: expect.any(Number),
    });
    // Each is one node's death: at least one event (increase() extrapolates a little).
    const tooLow = Object.entries(afterKill).filter(
      ([k, v]) => !(v >= (k === 'failoversInRange' ? 1 : 0.9)),
    );
    expect(tooLow).toEqual([]);
  });

  it("show the upstream node's reads, failures, latency and price age on the node dashboard", async () => {
    const node = (title: string, ref = 'A') =>
      panelSeries(`currency-nodes-node.json ${title} ${ref}`);
    // $node is the upstream node: ok reads of its pairs, and the 500s of the failed pair,
    // which it keeps probing while it is withdrawn.
    // (Outcomes the node creates at 0 up front, if it does, have no reads.)
    const outcomes = byLabel(await node('Upstream reads by outcome'), 'outcome');
    expect(
      Object.keys(outcomes)
        .filter((o) => outcomes[o] > 0)
        .sort(),
    ).toEqual(['http_status', 'ok']);
    const failed = byLabel(await node('Failed upstream reads (ratio)'), 'node_name');
    expect(Object.keys(failed)).toEqual([UPSTREAM_NODE]);
    expect(failed[UPSTREAM_NODE]).toBeGreaterThan(0);
    expect(failed[UPSTREAM_NODE]).toBeLessThan(1);
    // Loopback requests answer within the histogram's buckets, well under the 1 s timeout.
    for (const ref of ['A', 'B']) {
      const latency = byLabel(await node('Upstream request latency p50 / p99', ref), 'node_name');
      expect({ ref, names: Object.keys(latency) }).toEqual({ ref, names: [UPSTREAM_NODE] });
      expect({ ref, ok: latency[UPSTREAM_NODE] > 0 && latency[UPSTREAM_NODE] <= 1 }).toEqual({
        ref,
        ok: true,
      });
    }
    // The market dates its prices now: each arrives a few milliseconds old.
    const ages = await node('Upstream price age per pair (top 10)');
    expect(ages.length).toBeGreaterThan(0);
    for (const a of ages) {
      expect({ pair: a.metric.pair, node: a.metric.node_name }).toEqual({
        pair: expect.stringMatching(new RegExp(`^(${PAIRS.join('|')})$`)),
        node: UPSTREAM_NODE,
      });
      const v = Number(a.value[1]);
      expect({ pair: a.metric.pair, age: v >= 0 && v < 5 }).toEqual({
        pair: a.metric.pair,
        age: true,
      });
    }
    expect(byLabel(await node('Withdrawn pairs'), 'node_name')).toEqual({ [UPSTREAM_NODE]: 1 });
  });

  // As for failovers: the first withdrawal of a pair shows only if its counter series existed
  // (at 0) before it, i.e. if the node creates it for each of its pairs at start.
  it('count the first withdrawal of a pair on the withdrawal and reassignment panels', () => {
    const withdrawals = afterWithdrawal.withdrawals.map((s) => ({
      node: s.metric.node_name,
      pair: s.metric.pair,
      counted: Number(s.value[1]) >= 0.9,
    }));
    expect(withdrawals.filter((w) => w.counted || w.pair === failedPair)).toEqual([
      { node: UPSTREAM_NODE, pair: failedPair, counted: true },
    ]);
    const reasons = byLabel(afterWithdrawal.reassignments, 'reason');
    expect({ withdrawn: reasons.withdrawn >= 0.9 }).toEqual({ withdrawn: true });
  });

  it('show the withdrawn pair, the nodes offering each pair and the price deviation on the overview', async () => {
    const overview = (title: string, ref = 'A') =>
      panelSeries(`currency-nodes-overview.json ${title} ${ref}`);
    const live = nodes.filter((n) => n !== killed).map((n) => n.name);
    expect(byLabel(await overview('Withdrawn pairs'), 'node_name')).toEqual(
      Object.fromEntries(live.map((n) => [n, n === UPSTREAM_NODE ? 1 : 0])),
    );
    expect(await panelSum('currency-nodes-overview.json Withdrawn pairs B')).toBe(1);
    // Two nodes are left: both offer every pair but the one the upstream node withdrew.
    expect(byLabel(await overview('Nodes offering each pair (10 fewest)'), 'pair')).toEqual(
      Object.fromEntries(PAIRS.map((p) => [p, p === failedPair ? 1 : 2])),
    );
    // One streamer per pair (CONTROLLER_STREAMS_PER_PAIR 1): nothing to disagree with.
    const deviation = byLabel(
      await overview('Price deviation between streamers (top 10 pairs)'),
      'pair',
    );
    expect(Object.keys(deviation).sort()).toEqual([...PAIRS].sort());
    for (const [pair, v] of Object.entries(deviation))
      expect({ pair, v: v >= 0 && v < 0.01 }).toEqual({ pair, v: true });
    const outcomes = byLabel(await overview('Upstream reads by outcome'), 'outcome');
    expect(
      Object.keys(outcomes)
        .filter((o) => outcomes[o] > 0)
        .sort(),
    ).toEqual(['http_status', 'ok']);
  });

  it('resolve every dashboard variable query to the real jobs and instances', async () => {
    const v = variableValues();
    for (const { file, dashboard } of loadDashboards()) {
      for (const variable of dashboard.templating?.list ?? []) {
        if (variable.type !== 'query') continue;
        const q = variableQuery(variable) ?? '';
        const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
        expect({ file, variable: variable.name, labelValuesQuery: m !== null }).toEqual({
          file,
          variable: variable.name,
          labelValuesQuery: true,
        });
        const [, selector, label] = m!;
        const result = await prom.vector(
          `group by (${label}) (${substituteVariables(selector, v)})`,
        );
        const values = result
          .map((s) => s.metric[label])
          .filter((x) => x !== undefined)
          .sort();
        // The killed node's series are stale now, so an instant query no longer lists it.
        const expected: Record<string, string[]> = {
          cluster: [],
          namespace: [NS, OTHER_NS],
          job: [selector.includes('controller') ? CONTROLLER_JOB : NODE_JOB],
          node_name: nodes
            .filter((n) => n !== killed)
            .map((n) => n.name)
            .sort(),
        };
        expect({ file, variable: variable.name, values }).toEqual({
          file,
          variable: variable.name,
          values: expected[label],
        });
      }
    }
  });

  it('parse every rule expression, and each alert condition holds exactly when the scenario says it should', async () => {
    // After the scenario only the SIGKILLed node is down; every other condition is false
    // in a healthy, failed-over fleet (the failover storm and flapping thresholds are far
    // above one failover per pair).
    const expectedFiring: Record<string, string[]> = {
      CurrencyNodeDown: [killed.metricsAddr],
    };
    const rules = loadRules();
    // As compose loads them, and as the chart installs them for each of the two releases.
    const variants = [
      { as: 'unscoped', scope: (e: string) => e, firing: expectedFiring },
      { as: NS, scope: (e: string) => scopeRuleExpr(e, NS), firing: expectedFiring },
      { as: OTHER_NS, scope: (e: string) => scopeRuleExpr(e, OTHER_NS), firing: {} },
    ];
    for (const v of variants) {
      for (const r of rules) {
        const res = await prom.query(v.scope(r.expr));
        expect({ as: v.as, rule: r.alert, status: res.status, error: res.error }).toEqual({
          as: v.as,
          rule: r.alert,
          status: 'success',
          error: undefined,
        });
        const instances = (res.data!.result as { metric: Record<string, string> }[])
          .map((s) => s.metric.instance ?? '(none)')
          .sort();
        expect({ as: v.as, rule: r.alert, instances }).toEqual({
          as: v.as,
          rule: r.alert,
          instances: (v.firing as Record<string, string[]>)[r.alert!] ?? [],
        });
      }
    }
  });

  it('load the rules into Prometheus, evaluate them without error, and put the killed node down as a pending alert', async () => {
    const ruleNames = loadRules().map((r) => r.alert);
    const loaded = await waitFor(
      'every rule evaluated at least once',
      async () => {
        const res = await prom.getJson<{
          data: {
            groups: {
              rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
            }[];
          };
        }>('/api/v1/rules');
        const all = res.data.groups.flatMap((g) => g.rules);
        return (
          all.length === ruleNames.length &&
          all.every((r) => !r.lastEvaluation.startsWith('0001')) &&
          all
        );
      },
      { timeoutMs: 10_000 },
    );
    for (const r of loaded) {
      expect({ rule: r.name, health: r.health, lastError: r.lastError ?? '' }).toEqual({
        rule: r.name,
        health: 'ok',
        lastError: '',
      });
    }
    const alerts = await prom.getJson<{
      data: { alerts: { labels: Record<string, string>; state: string }[] };
    }>('/api/v1/alerts');
    expect(
      alerts.data.alerts
        .map((a) => `${a.labels.alertname} ${a.labels.instance ?? ''} ${a.state}`)
        .sort(),
    ).toEqual([`CurrencyNodeDown ${killed.metricsAddr} pending`]);
  });
});
