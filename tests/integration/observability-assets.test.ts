/**
 * The observability assets (deploy/observability): Prometheus alerting rules, Grafana
 * dashboards. Checked three ways:
 *  1. promtool checks the rules and runs their unit tests;
 *  2. the dashboard JSON is well-formed for Grafana (datasource variable, ids, layout,
 *     one expression per target) and names only metrics the real programs expose;
 *  3. a real Prometheus scrapes a real controller and real nodes through a failover, a
 *     kick and some CLI commands, and every dashboard query and rule expression is run
 *     through its HTTP API: each must parse, each panel query must return data, and each
 *     alert condition must hold exactly when the scenario says it should.
 * Grafana itself is not run (there is none to install here); see deploy/observability/README.md.
 *
 * Needs `npm run build` and `bash scripts/setup/prometheus.sh` (prometheus + promtool).
 */
import { randomUUID } from 'node:crypto';
import {
  type LoadedDashboard,
  PROMETHEUS_SYNTHETIC_METRICS,
  RULES_DIR,
  RULES_FILE,
  RULES_TEST_FILE,
  allPanels,
  exposedMetricNames,
  loadDashboards,
  loadRules,
  metricNamesIn,
  panelQueries,
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
} from '../support/observability-stack';
import {
  UNDECODABLE_FRAME,
  sendRawCliFrames,
  unknownCommandFrame,
} from '../support/observability-grpc';

const CONTROLLER_JOB = 'currency-controller';
const NODE_JOB = 'currency-node';
const PAIRS = ['EUR_USD', 'GBP_USD', 'USD_JPY', 'USD_CHF'];

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
});

/**
 * The scenario: a controller and three nodes announcing the same pairs; Prometheus scrapes
 * them every second with the rules loaded. CLI commands run (ok outcomes, latency samples),
 * an unknown command and an undecodable frame are sent, one streaming node is SIGKILLed
 * (failovers, a node disconnect, node_left reassignments) and another one is kicked (it
 * reconnects). Then every expression is run.
 */
describe('against a real Prometheus scraping the real programs', () => {
  let tmp: ReturnType<typeof makeTempDir> | undefined;
  let prom: TestPrometheus;
  let controllerAddr = '';
  let controllerMetricsUrl = '';
  const nodes: { name: string; uuid: string; metricsAddr: string; proc: Proc }[] = [];
  let killed: (typeof nodes)[number];
  let kicked: (typeof nodes)[number];
  let controller: Proc;
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
    const [grpcPort, ctlMetricsPort, promPort, ...nodePorts] = await freePorts(3 + 3);
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
    for (const [i, port] of nodePorts.entries()) {
      const uuid = randomUUID();
      const name = `obs-node-${i + 1}`;
      const metricsAddr = `127.0.0.1:${port}`;
      const proc = startProcess(name, process.execPath, [programPath('node')], {
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
    await waitFor(
      'three nodes connected and every pair streamed',
      async () => {
        const dead = [controller, ...nodes.map((n) => n.proc)].find((p) => !isRunning(p));
        if (dead) throw new WaitAborted(`${dead.name} exited: ${dead.output()}`);
        const { body } = await httpGet(controllerMetricsUrl, 1_000);
        return (
          /^currency_controller_connected_nodes 3$/m.test(body) &&
          new RegExp(`^currency_controller_pairs_streamed ${PAIRS.length}$`, 'm').test(body)
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
        [CONTROLLER_JOB]: [controllerMetricsAddr],
        [NODE_JOB]: nodes.map((n) => n.metricsAddr),
      },
    });
    await waitFor(
      'all four targets up with samples',
      async () =>
        (await scalar('sum(up)')) === 4 &&
        (await scalar('count(currency_node_connected == 1)')) === 3,
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

    // Failover: SIGKILL a node that streams at least one pair (the others know every pair).
    const streaming = await Promise.all(
      nodes.map((n) => nodeMetric(n, 'currency_node_pairs_streaming')),
    );
    const idx = streaming.findIndex((s) => s > 0);
    expect(idx).toBeGreaterThanOrEqual(0);
    killed = nodes[idx];
    kicked = nodes.find((n) => n !== killed)!;
    await killProcess(killed.proc, 'SIGKILL');
    await waitFor(
      'Prometheus to see the failover and the killed node down',
      async () =>
        ((await scalar(`sum(currency_controller_failovers_total{job="${CONTROLLER_JOB}"})`)) ??
          0) >= 1 &&
        (await scalar(`up{job="${NODE_JOB}", instance="${killed.metricsAddr}"}`)) === 0 &&
        (await scalar(`sum(currency_controller_connected_nodes)`)) === 2 &&
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
          1 && (await scalar(`sum(currency_controller_connected_nodes)`)) === 2,
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
    tmp?.remove();
    expect(runningCount()).toBe(0);
    process.stdout.write(
      `observability scenario timings (ms since start): ${JSON.stringify(timings)}\n`,
    );
  }, 30_000);

  /** Grafana's variables as the test resolves them: real job names and a real node. */
  const variableValues = () => ({
    datasource: 'unused-in-promql',
    controller_job: CONTROLLER_JOB,
    node_job: NODE_JOB,
    // The kicked node: it has reconnects in range, so the node dashboard's stats have data.
    instance: kicked.metricsAddr,
    // Grafana computes these from the time range and the scrape interval; these stand in
    // for a short range on a 1 s scrape.
    __rate_interval: '30s',
    __interval: '5s',
    __range: '5m',
  });

  /** A panel query by "file title refId", variables substituted, summed over its series. */
  const panelSum = async (key: string): Promise<number> => {
    const q = panelQueries(loadDashboards()).find(
      (x) => `${x.file} ${x.panel.replace(/^#\d+ /, '')} ${x.refId}` === key,
    );
    if (!q) throw new Error(`no panel query ${key}`);
    const result = await prom.vector(substituteVariables(q.expr, variableValues()));
    if (result.length === 0) throw new Error(`panel query ${key} returned no data`);
    return result.reduce((sum, sample) => sum + Number(sample.value[1]), 0);
  };

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
      .filter(([n]) => !liveNames.has(n) && !PROMETHEUS_SYNTHETIC_METRICS.has(n))
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
        const values = result.map((s) => s.metric[label]).sort();
        const expected =
          label === 'job'
            ? [selector.includes('controller') ? CONTROLLER_JOB : NODE_JOB]
            : nodes.map((n) => n.metricsAddr).sort();
        // The killed node's series are stale now, so an instant query no longer lists it.
        expect({ file, variable: variable.name, values }).toEqual({
          file,
          variable: variable.name,
          values:
            label === 'instance' ? expected.filter((i) => i !== killed.metricsAddr) : expected,
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
    for (const r of rules) {
      const res = await prom.query(r.expr);
      expect({ rule: r.alert, status: res.status, error: res.error }).toEqual({
        rule: r.alert,
        status: 'success',
        error: undefined,
      });
      const instances = (res.data!.result as { metric: Record<string, string> }[])
        .map((s) => s.metric.instance ?? '(none)')
        .sort();
      expect({ rule: r.alert, instances }).toEqual({
        rule: r.alert,
        instances: expectedFiring[r.alert!] ?? [],
      });
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
