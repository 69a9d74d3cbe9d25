/**
 * The scenario of tests/integration/observability-live.test.ts: a controller and three nodes
 * announcing the same pairs; Prometheus scrapes them every second with the rules loaded.
 * CLI commands run (ok outcomes, latency samples), an unknown command and an undecodable
 * frame are sent, the test market fails one pair of the node that reads it over HTTP
 * (upstream failures, a withdrawal, a withdrawn reassignment), another streaming node is
 * SIGKILLed (failovers, a node disconnect, node_left reassignments) and the upstream node
 * is kicked (it reconnects). A second release (a controller and one node with other pairs)
 * runs beside it, its targets labelled with another namespace, as Kubernetes would.
 *
 * Needs `npm run build` and `bash scripts/setup/prometheus.sh` (prometheus).
 */
import { randomUUID } from 'node:crypto';
import { type MarketServer, startMarketServer } from '../../services/market/server';
import {
  RULES_FILE,
  exposedMetricNames,
  loadDashboards,
  panelQueries,
  substituteVariables,
} from './observability-promql';
import { UNDECODABLE_FRAME, sendRawCliFrames, unknownCommandFrame } from './observability-grpc';
import {
  type Proc,
  type PromVectorSample,
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
  sleep,
  startProcess,
  stopAll,
  waitFor,
} from './observability-stack';

export const CONTROLLER_JOB = 'currency-controller';
export const NODE_JOB = 'currency-node';
export const PAIRS = ['EUR_USD', 'GBP_USD', 'USD_JPY', 'USD_CHF'];
/** The release under test, and a second one beside it in another namespace. */
export const NS = 'obs-a';
export const OTHER_NS = 'obs-b';
export const OTHER_PAIRS = ['AUD_NZD', 'NZD_CAD'];
/** The node that reads the test market over HTTP (the others use the simulated upstream). */
export const UPSTREAM_NODE = 'obs-node-1';
/** Its NODE_UPSTREAM_FAIL_AFTER_MS: short, so the failed pair is withdrawn within the scenario. */
const UPSTREAM_FAIL_AFTER_MS = 1500;

export interface ScenarioNode {
  name: string;
  uuid: string;
  metricsAddr: string;
  proc: Proc;
}

/** label value -> sample value, for the series of one panel query. */
export function byLabel(samples: PromVectorSample[], label: string): Record<string, number> {
  return Object.fromEntries(samples.map((s) => [s.metric[label] ?? '', Number(s.value[1])]));
}

export class ObservabilityScenario {
  prom!: TestPrometheus;
  controllerAddr = '';
  controllerMetricsUrl = '';
  readonly nodes: ScenarioNode[] = [];
  killed!: ScenarioNode;
  kicked!: ScenarioNode;
  /** The pair the test market fails for the upstream node. */
  failedPair = '';
  /** What the withdrawal panels say right after the withdrawal (their windows are short). */
  afterWithdrawal: { withdrawals: PromVectorSample[]; reassignments: PromVectorSample[] } = {
    withdrawals: [],
    reassignments: [],
  };
  readonly other: { name: string; metricsAddr: string; controllerMetricsAddr: string } = {
    name: 'obs-b-node-1',
    metricsAddr: '',
    controllerMetricsAddr: '',
  };
  /** Every metric name the live programs expose at the end. */
  readonly liveNames = new Set<string>();
  /** What the failover panels say right after the node died, before the kick. */
  afterKill: Record<string, number> = {};
  private tmp: ReturnType<typeof makeTempDir> | undefined;
  private market: MarketServer | undefined;
  private readonly timings: Record<string, number> = {};
  private readonly t0 = Date.now();

  private mark(what: string): void {
    this.timings[what] = Date.now() - this.t0;
  }

  private async cli(...args: string[]): Promise<string> {
    const r = await runToEnd(
      process.execPath,
      [programPath('cli'), '--controller', this.controllerAddr, '--timeout', '5', ...args],
      { LOG_LEVEL: 'warn' },
    );
    if (r.code !== 0)
      throw new Error(`currency-cli ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async scalar(expr: string): Promise<number | undefined> {
    const v = await this.prom.vector(expr);
    return v.length === 1 ? Number(v[0].value[1]) : undefined;
  }

  private async nodeMetric(node: ScenarioNode, name: string): Promise<number> {
    const { body } = await httpGet(`http://${node.metricsAddr}/metrics`);
    const line = body.split('\n').find((l) => l.startsWith(`${name} `));
    if (!line) throw new Error(`${name} not in ${node.name}'s /metrics`);
    return Number(line.split(' ')[1]);
  }

  /** Grafana's variables as the test resolves them: real job names and a real node. */
  variableValues(namespace = NS) {
    return {
      datasource: 'unused-in-promql',
      // No cluster label here: the variable is then "All", which Grafana sends as its allValue.
      cluster: '.*',
      namespace,
      controller_job: CONTROLLER_JOB,
      node_job: NODE_JOB,
      // The kicked node: it has reconnects in range, so the node dashboard's stats have data.
      node: namespace === NS ? this.kicked.name : this.other.name,
      // Grafana computes these from the time range and the scrape interval; these stand in
      // for a short range on a 1 s scrape.
      __rate_interval: '30s',
      __interval: '5s',
      __range: '5m',
    };
  }

  /** A panel query by "file title refId", variables substituted: its series. */
  async panelSeries(key: string, namespace = NS): Promise<PromVectorSample[]> {
    const q = panelQueries(loadDashboards()).find(
      (x) => `${x.file} ${x.panel.replace(/^#\d+ /, '')} ${x.refId}` === key,
    );
    if (!q) throw new Error(`no panel query ${key}`);
    return this.prom.vector(substituteVariables(q.expr, this.variableValues(namespace)));
  }

  /** A panel query by "file title refId", variables substituted, summed over its series. */
  async panelSum(key: string, namespace = NS): Promise<number> {
    const result = await this.panelSeries(key, namespace);
    if (result.length === 0) throw new Error(`panel query ${key} returned no data`);
    return result.reduce((sum, sample) => sum + Number(sample.value[1]), 0);
  }

  /** Runs the scenario up to the point the tests look at (bounded: every wait is). */
  async start(): Promise<void> {
    requireBuilt();
    requireTool('prometheus');
    this.tmp = makeTempDir('currency-obs-');
    const [
      grpcPort,
      ctlMetricsPort,
      promPort,
      otherGrpc,
      otherCtlMetrics,
      otherNode,
      ...nodePorts
    ] = await freePorts(6 + 3);
    this.controllerAddr = `127.0.0.1:${grpcPort}`;
    const controllerMetricsAddr = `127.0.0.1:${ctlMetricsPort}`;
    this.controllerMetricsUrl = `http://${controllerMetricsAddr}/metrics`;

    const controller = startProcess('controller', process.execPath, [programPath('controller')], {
      CONTROLLER_LISTEN_ADDR: this.controllerAddr,
      METRICS_ADDR: controllerMetricsAddr,
      LOG_LEVEL: 'warn',
    });
    await waitFor('the controller to be ready', async () => {
      if (!isRunning(controller))
        throw new WaitAborted(`controller exited: ${controller.output()}`);
      return (await httpGet(`http://${controllerMetricsAddr}/readyz`, 1_000)).status === 200;
    });
    this.market = await startMarketServer();
    for (const [i, port] of nodePorts.entries()) {
      const uuid = randomUUID();
      const name = `obs-node-${i + 1}`;
      const metricsAddr = `127.0.0.1:${port}`;
      // One node reads the test market over HTTP, the others the simulated upstream.
      const upstream: Record<string, string> =
        name === UPSTREAM_NODE
          ? {
              NODE_UPSTREAM: 'http',
              NODE_UPSTREAM_URL: `${this.market.url}/v1/quote/{symbol}?client=${name}`,
              NODE_UPSTREAM_PRICE_PATH: 'price',
              NODE_UPSTREAM_TIME_PATH: 'time',
              // Generous: the market runs in this busy test process, and a read that times out
              // (not the injected fault) would withdraw pairs this scenario does not fail.
              NODE_UPSTREAM_TIMEOUT_MS: '10000',
              NODE_UPSTREAM_MAX_RPS: '50',
              NODE_UPSTREAM_FAIL_AFTER_MS: String(UPSTREAM_FAIL_AFTER_MS),
            }
          : {};
      const proc = startProcess(name, process.execPath, [programPath('node')], {
        ...upstream,
        NODE_CONTROLLER_ADDR: this.controllerAddr,
        NODE_CURRENCY_PAIRS: PAIRS.join(','),
        NODE_PRICE_INTERVAL_MS: '200-400',
        NODE_UUID: uuid,
        NODE_NAME: name,
        METRICS_ADDR: metricsAddr,
        LOG_LEVEL: 'warn',
      });
      this.nodes.push({ name, uuid, metricsAddr, proc });
    }
    // The this.other release: its own controller and one node, this.other pairs, this.other names.
    this.other.controllerMetricsAddr = `127.0.0.1:${otherCtlMetrics}`;
    this.other.metricsAddr = `127.0.0.1:${otherNode}`;
    const otherController = startProcess(
      'other-controller',
      process.execPath,
      [programPath('controller')],
      {
        CONTROLLER_LISTEN_ADDR: `127.0.0.1:${otherGrpc}`,
        METRICS_ADDR: this.other.controllerMetricsAddr,
        LOG_LEVEL: 'warn',
      },
    );
    const otherNodeProc = startProcess(this.other.name, process.execPath, [programPath('node')], {
      NODE_CONTROLLER_ADDR: `127.0.0.1:${otherGrpc}`,
      NODE_CURRENCY_PAIRS: OTHER_PAIRS.join(','),
      NODE_PRICE_INTERVAL_MS: '200-400',
      NODE_NAME: this.other.name,
      METRICS_ADDR: this.other.metricsAddr,
      LOG_LEVEL: 'warn',
    });
    await waitFor(
      'three nodes connected and every pair streamed',
      async () => {
        const dead = [
          controller,
          otherController,
          otherNodeProc,
          ...this.nodes.map((n) => n.proc),
        ].find((p) => !isRunning(p));
        if (dead) throw new WaitAborted(`${dead.name} exited: ${dead.output()}`);
        const { body } = await httpGet(this.controllerMetricsUrl, 1_000);
        const otherBody = (
          await httpGet(`http://${this.other.controllerMetricsAddr}/metrics`, 1_000)
        ).body;
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
    this.mark('programs up');

    this.prom = await TestPrometheus.start({
      dir: this.tmp.path,
      port: promPort,
      ruleFiles: [RULES_FILE],
      jobs: {
        [CONTROLLER_JOB]: [controllerMetricsAddr, this.other.controllerMetricsAddr],
        [NODE_JOB]: [...this.nodes.map((n) => n.metricsAddr), this.other.metricsAddr],
      },
      // What Kubernetes' service discovery would set for two releases in two namespaces.
      targetLabels: Object.fromEntries([
        ...[controllerMetricsAddr, ...this.nodes.map((n) => n.metricsAddr)].map((t) => [
          t,
          { namespace: NS },
        ]),
        ...[this.other.controllerMetricsAddr, this.other.metricsAddr].map((t) => [
          t,
          { namespace: OTHER_NS },
        ]),
      ]),
    });
    await waitFor(
      'all six targets up with samples',
      async () =>
        (await this.scalar('sum(up)')) === 6 &&
        (await this.scalar('count(currency_node_connected == 1)')) === 4,
      { timeoutMs: 30_000 },
    );
    this.mark('prometheus scraping');

    // Commands: ok outcomes and latency samples on the controller and on the this.nodes.
    await this.cli('controller', 'nodes');
    await this.cli('controller', 'streams');
    await this.cli('controller', 'prices');
    await this.cli('controller', 'version');
    await this.cli('node', 'status', '--all');
    // An unknown command (answered) and an undecodable frame (counted, not answered).
    const replies = await sendRawCliFrames(
      this.controllerAddr,
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
    await sendRawCliFrames(this.controllerAddr, [UNDECODABLE_FRAME]);

    // Upstream failure: the test market answers 500 to the HTTP node for one pair it streams.
    // After NODE_UPSTREAM_FAIL_AFTER_MS the node withdraws the pair (it stays connected and
    // keeps probing it) and the controller moves the pair to another node (reason withdrawn).
    // This node is the one this.kicked later and the one the node dashboard shows.
    const upstreamNode = this.nodes.find((n) => n.name === UPSTREAM_NODE)!;
    this.kicked = upstreamNode;
    const streamed = await waitFor('the upstream node to stream a pair', async () => {
      const pairs = JSON.parse(await this.cli('--json', 'controller', 'streams')) as {
        currencyPair: string;
        nodeUuids: string[];
      }[];
      return pairs.find((p) => p.nodeUuids.includes(upstreamNode.uuid));
    });
    this.failedPair = streamed.currencyPair;
    this.market!.setFault({ symbol: this.failedPair, client: UPSTREAM_NODE, mode: 'http_500' });
    await waitFor(
      'Prometheus to see the pair withdrawn and streamed by another node',
      async () =>
        (await this.scalar(
          `currency_node_upstream_withdrawn_pairs{instance="${upstreamNode.metricsAddr}"}`,
        )) === 1 &&
        (await this.scalar(
          `currency_controller_pair_streamers{namespace="${NS}", pair="${this.failedPair}"}`,
        )) === 1 &&
        (await this.scalar(
          `currency_controller_pair_capable_nodes{namespace="${NS}", pair="${this.failedPair}"}`,
        )) ===
          this.nodes.length - 1,
      { timeoutMs: 20_000 },
    );
    this.mark('withdrawal seen');
    await sleep(2_500);
    this.afterWithdrawal = {
      withdrawals: await this.panelSeries('currency-nodes-node.json Withdrawals per pair A'),
      reassignments: await this.panelSeries(
        'currency-nodes-overview.json Stream reassignments by reason A',
      ),
    };

    // Failover: SIGKILL a node that streams at least one pair (the third node knows every
    // pair; the upstream node all but the failed one).
    const streaming = await Promise.all(
      this.nodes.map((n) => this.nodeMetric(n, 'currency_node_pairs_streaming')),
    );
    const idx = streaming.findIndex((s, i) => s > 0 && this.nodes[i] !== upstreamNode);
    expect(idx).toBeGreaterThanOrEqual(0);
    this.killed = this.nodes[idx];
    await killProcess(this.killed.proc, 'SIGKILL');
    await waitFor(
      'Prometheus to see the failover and the killed node down',
      async () =>
        ((await this.scalar(`sum(currency_controller_failovers_total{job="${CONTROLLER_JOB}"})`)) ??
          0) >= 1 &&
        (await this.scalar(`up{job="${NODE_JOB}", instance="${this.killed.metricsAddr}"}`)) === 0 &&
        (await this.scalar(`sum(currency_controller_connected_nodes{namespace="${NS}"})`)) === 2 &&
        (await this.scalar(`sum(currency_controller_pairs_unstreamed)`)) === 0,
      { timeoutMs: 20_000 },
    );
    this.mark('failover seen');
    // What the panels say right after the node died, before the kick adds more events
    // (after a few more scrapes, so each series has samples on both sides of the event).
    await sleep(2_500);
    const capture = (title: string) =>
      this.panelSum(`currency-nodes-overview.json ${title} A`).catch(() => Number.NaN);
    this.afterKill = {
      failoversInRange: await capture('Failovers in range'),
      failoversPerPair: await capture('Failovers per pair'),
      disconnectsByReason: await capture('Node disconnects by reason'),
      reassignmentsByReason: await capture('Stream reassignments by reason'),
    };

    // Kick: the node reconnects by itself.
    await this.cli('controller', 'kick', this.kicked.uuid);
    await waitFor(
      'Prometheus to see the kicked node reconnect',
      async () =>
        ((await this.scalar(
          `currency_node_reconnects_total{instance="${this.kicked.metricsAddr}"}`,
        )) ?? 0) >= 1 &&
        (await this.scalar(`sum(currency_controller_connected_nodes{namespace="${NS}"})`)) === 2,
      { timeoutMs: 20_000 },
    );
    this.mark('kick seen');

    // Fresh command samples inside the rate windows, then let a few scrapes land.
    await this.cli('controller', 'nodes');
    await this.cli('node', 'status', '--all');
    await sleep(3_000);
    const { body } = await httpGet(this.controllerMetricsUrl);
    exposedMetricNames(body).forEach((n) => this.liveNames.add(n));
    for (const n of this.nodes.filter((x) => x !== this.killed)) {
      exposedMetricNames((await httpGet(`http://${n.metricsAddr}/metrics`)).body).forEach((x) =>
        this.liveNames.add(x),
      );
    }
    this.mark('scenario done');
  }

  /** Stops every process and removes the temporary files. */
  async stop(): Promise<void> {
    await stopAll();
    await this.market?.close();
    this.tmp?.remove();
    process.stdout.write(
      `observability scenario timings (ms since start): ${JSON.stringify(this.timings)}\n`,
    );
  }
}
