/**
 * Stage 2 of the k8s tier, a failing upstream on the working node: the project's test market
 * (services/market, run from the node image) as a Deployment + Service the test applies, and
 * the chart installed with two node groups sharing USD_HKD: `feed`, whose `upstream` polls
 * the market over HTTP (NODE_UPSTREAM_FAIL_AFTER_MS 2 s), and `sim` (the simulated market).
 * `feed` holds USD_HKD first (installed with `sim` at 0 replicas, `sim` scaled up by `helm
 * upgrade` once the feed pod streams it). Then the market answers USD_HKD with HTTP 500
 * (POST /control/faults, through `kubectl exec` into the market pod): the feed pod withdraws
 * the pair and stays connected, the controller moves it to the sim pod, whose prices arrive
 * (`kubectl exec deploy/<release>-currency-nodes-cli -- currency-cli --json controller
 * streams` / `prices` / `nodes`). The fault cleared, the feed pod offers the pair again.
 * `helm uninstall` and the market's deletion leave nothing in the namespace.
 *
 * Runs only when the suite runs stage 2 (K8S_STAGE=2, the default); otherwise the file
 * fails with a message saying so rather than passing silently.
 */
import { CHART, type Cluster } from './cluster';
import {
  IMAGE_PREFIX,
  IMAGE_TAG,
  LOADED_IMAGES,
  type Pod,
  cleanUp,
  cliJson,
  expectNothingLeft,
  helmInstall,
  livePods,
  runsStage2,
  stage2Cluster,
} from './support';
import { metricValue } from '../../tests-e2e/support/docker';
import { waitFor } from '../support/wait';

jest.setTimeout(900_000);

const NODE_IMAGE = `${IMAGE_PREFIX}/node:${IMAGE_TAG}`;
const NS = 'currency-upstream';
const RELEASE = 'up';
const FULL = `${RELEASE}-currency-nodes`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
/** The market's Deployment and Service (the test's own objects, not the chart's). */
const MARKET = 'market';
const MARKET_LABELS = { 'app.kubernetes.io/name': 'upstream-market', 'cn-test': 'upstream' };
const PAIR = 'USD_HKD';
const SYMBOL = 'USDHKD';
const FEED_PAIRS = ['EUR_USD', PAIR];
/** GBP_USD: a stream of its own, so a joining sim pod does not rebalance USD_HKD onto it. */
const SIM_PAIRS = [PAIR, 'GBP_USD'];
const FAIL_AFTER_MS = 2_000;
const report = (line: string) => process.stdout.write(`k8s stage 2 upstream: ${line}\n`);

interface ListedNode {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
}
interface Stream {
  currencyPair: string;
  nodeUuids: string[];
  capableNodes: number;
}
interface Price {
  currencyPair: string;
  price: number;
  priceUpdatedAt: string;
  nodeUuid: string;
}
const runStage2 = runsStage2();
let cluster: Cluster;

beforeAll(() => {
  if (runStage2) cluster = stage2Cluster({ images: true });
});

afterAll(() => cleanUp(cluster, [[RELEASE, NS]]));

/** The market: the node image running services/market on 8080, with a Service in front. */
function marketManifest(): string {
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: MARKET, namespace: NS, labels: MARKET_LABELS },
    spec: {
      replicas: 1,
      selector: { matchLabels: MARKET_LABELS },
      template: {
        metadata: { labels: MARKET_LABELS },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'market',
              image: NODE_IMAGE,
              imagePullPolicy: 'Never',
              // The image's entrypoint is currency-node; the market is in the same dist/.
              command: ['node', 'dist/services/market/main.js'],
              env: [
                { name: 'MARKET_LISTEN_ADDR', value: '0.0.0.0:8080' },
                { name: 'MARKET_TICK_MS', value: '1000' },
              ],
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 2 },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '16Mi' } }],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: MARKET, namespace: NS, labels: MARKET_LABELS },
    spec: {
      selector: MARKET_LABELS,
      ports: [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }],
    },
  };
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [deployment, service] });
}

/** The release's values; `sim` at `simReplicas`. */
function values(simReplicas: number) {
  return {
    image: LOADED_IMAGES,
    controller: { streamsPerPair: 1 },
    node: { priceIntervalMs: '300-600' },
    nodeGroups: [
      {
        name: 'feed',
        replicas: 1,
        pairs: FEED_PAIRS,
        upstream: {
          kind: 'http',
          url: `http://${MARKET}:8080/v1/quote/{symbol}`,
          pricePath: 'price',
          timePath: 'time',
          failAfterMs: FAIL_AFTER_MS,
        },
      },
      { name: 'sim', replicas: simReplicas, pairs: SIM_PAIRS },
    ],
  };
}

/** `currency-cli --json ...` in the CLI pod, through `kubectl exec deploy/...`. */
const cli = <T>(args: string[]): T => cliJson<T>(cluster, NS, RELEASE, args);
const nodes = () => cli<ListedNode[]>(['controller', 'nodes']);
const streams = () => cli<Stream[]>(['controller', 'streams']);
const prices = () => cli<Price[]>(['controller', 'prices']);

/** An HTTP request to the market from inside its pod (`kubectl exec ... node -e fetch`). */
function marketRequest(
  method: string,
  path: string,
  body?: unknown,
): { status: number; text: string } {
  const script = `
    const [method, path, body] = process.argv.slice(1);
    fetch('http://127.0.0.1:8080' + path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body || undefined,
      signal: AbortSignal.timeout(5000),
    }).then(
      async (r) => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() })),
      (e) => { console.error(String(e)); process.exit(2); },
    );`;
  const out = cluster.kubectlOk(
    [
      'exec',
      '-n',
      NS,
      `deploy/${MARKET}`,
      '--',
      'node',
      '-e',
      script,
      method,
      path,
      body === undefined ? '' : JSON.stringify(body),
    ],
    undefined,
    30_000,
  );
  return JSON.parse(out) as { status: number; text: string };
}

function pods(component: string, group?: string): Pod[] {
  const labels = [SELECTOR, `app.kubernetes.io/component=${component}`];
  if (group) labels.push(`currency-nodes/node-group=${group}`);
  return livePods(cluster, NS, labels.join(','));
}

/** The one running pod of a node group, as `controller nodes` lists it. */
async function groupNode(group: string): Promise<ListedNode> {
  return waitFor(
    `the ${group} pod to be listed by controller nodes`,
    () => {
      const p = pods('node', group);
      if (p.length !== 1) return false;
      return nodes().find((n) => n.name === p[0]!.metadata.name);
    },
    { timeoutMs: 90_000, intervalMs: 1_000 },
  );
}

/** A price of `pair` from `nodeUuid` dated after `afterMs`. */
async function priceFrom(
  pair: string,
  nodeUuid: string,
  afterMs: number,
  what: string,
): Promise<Price> {
  let last: Price | undefined;
  return waitFor(
    what,
    () => {
      last = prices().find((p) => p.currencyPair === pair);
      return last?.nodeUuid === nodeUuid && Date.parse(last.priceUpdatedAt) > afterMs
        ? last
        : false;
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last ${pair} price: ${JSON.stringify(last)}`);
  });
}

/** The controller's /metrics, from its pod IP (the pod bridge is on this host). */
async function controllerMetrics(): Promise<string> {
  const [pod] = pods('controller');
  if (!pod?.status.podIP) throw new Error('no running controller pod with an IP');
  const res = await fetch(`http://${pod.status.podIP}:9464/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return res.text();
}

(runStage2 ? describe : describe.skip)(
  'stage 2 (a working node): a failing upstream moves its pair to another node group',
  () => {
    let feed: ListedNode;
    let sim: ListedNode;

    test('the market Deployment + Service and helm install with the feed group (sim at 0): the feed pod streams USD_HKD with prices from the market', async () => {
      const t0 = Date.now();
      cluster.kubectlOk(['create', 'namespace', NS]);
      cluster.kubectlOk(['apply', '-f', '-'], marketManifest());
      cluster.kubectlOk(
        ['rollout', 'status', '-n', NS, `deployment/${MARKET}`, '--timeout=2m'],
        undefined,
        150_000,
      );
      const q = marketRequest('GET', `/v1/quote/${SYMBOL}`);
      expect(q.status).toBe(200);
      expect(JSON.parse(q.text)).toMatchObject({ symbol: SYMBOL, price: expect.any(String) });

      const out = helmInstall(cluster, RELEASE, NS, values(0), {
        createNamespace: false,
        timeout: '4m',
      });
      expect(out).toMatch(/STATUS: deployed/);
      // The feed group's pods read the market (the chart's NODE_UPSTREAM_* variables).
      const env = cluster.json(['get', 'deployment', '-n', NS, `${FULL}-node-feed`]).spec.template
        .spec.containers[0].env as { name: string; value?: string }[];
      expect(Object.fromEntries(env.map((e) => [e.name, e.value]))).toMatchObject({
        NODE_UPSTREAM: 'http',
        NODE_UPSTREAM_URL: `http://${MARKET}:8080/v1/quote/{symbol}`,
        NODE_UPSTREAM_PRICE_PATH: 'price',
        NODE_UPSTREAM_TIME_PATH: 'time',
        NODE_UPSTREAM_FAIL_AFTER_MS: String(FAIL_AFTER_MS),
      });

      feed = await groupNode('feed');
      expect([...feed.knownCurrencyPairs].sort()).toEqual([...FEED_PAIRS].sort());
      const since = Date.now();
      await waitFor(
        'the feed pod to stream USD_HKD',
        () => {
          const s = streams().find((x) => x.currencyPair === PAIR);
          return s?.nodeUuids.length === 1 && s.nodeUuids[0] === feed.nodeUuid;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      await priceFrom(PAIR, feed.nodeUuid, since, 'a USD_HKD price from the feed pod');
      report(`market and release up, the feed pod streaming USD_HKD: ${Date.now() - t0} ms`);
    });

    test('helm upgrade scales sim to 1: its pod joins, the feed pod keeps USD_HKD', async () => {
      const t0 = Date.now();
      cluster.helmOk(
        ['upgrade', RELEASE, CHART, '-n', NS, '--values', '-', '--wait', '--timeout', '3m'],
        JSON.stringify(values(1)),
      );
      sim = await groupNode('sim');
      expect([...sim.knownCurrencyPairs].sort()).toEqual([...SIM_PAIRS].sort());
      const hkd = await waitFor(
        'USD_HKD with 2 capable nodes, GBP_USD streamed by the sim pod',
        () => {
          const all = streams();
          const h = all.find((x) => x.currencyPair === PAIR);
          const g = all.find((x) => x.currencyPair === 'GBP_USD');
          return h?.capableNodes === 2 && g?.nodeUuids[0] === sim.nodeUuid ? h : false;
        },
        { timeoutMs: 60_000, intervalMs: 1_000 },
      );
      expect(hkd.nodeUuids).toEqual([feed.nodeUuid]);
      // The upgrade left the feed pod alone.
      expect(pods('node', 'feed').map((p) => p.metadata.name)).toEqual([feed.name]);
      report(`sim scaled up and registered: ${Date.now() - t0} ms`);
    });

    test('the market fails USD_HKD: the pair moves to the sim pod, its prices arrive, the feed pod stays connected', async () => {
      const faultAt = Date.now();
      const set = marketRequest('POST', '/control/faults', { symbol: SYMBOL, mode: 'http_500' });
      expect(set.status).toBe(200);
      expect(marketRequest('GET', `/v1/quote/${SYMBOL}`).status).toBe(500);
      expect(marketRequest('GET', '/v1/quote/EURUSD').status).toBe(200);

      const moved = await waitFor(
        'USD_HKD to be streamed by the sim pod',
        () => {
          const s = streams().find((x) => x.currencyPair === PAIR);
          return s?.nodeUuids.length === 1 && s.nodeUuids[0] === sim.nodeUuid ? s : false;
        },
        { timeoutMs: FAIL_AFTER_MS + 30_000, intervalMs: 500 },
      );
      const movedMs = Date.now() - faultAt;
      expect(moved.capableNodes).toBe(1);
      const first = await priceFrom(
        PAIR,
        sim.nodeUuid,
        faultAt,
        'a USD_HKD price from the sim pod',
      );
      const pricedMs = Date.now() - faultAt;
      const next = await priceFrom(
        PAIR,
        sim.nodeUuid,
        Date.parse(first.priceUpdatedAt),
        'a newer USD_HKD price from the sim pod',
      );
      expect(next.price).toBeGreaterThan(0);

      // The feed pod is still connected (same registration, not restarted), has withdrawn
      // USD_HKD only, and still streams EUR_USD from the market.
      const f = nodes().find((n) => n.nodeUuid === feed.nodeUuid);
      expect(f?.name).toBe(feed.name);
      expect(f?.knownCurrencyPairs).toEqual(['EUR_USD']);
      expect(f?.streamingCurrencyPairs).toEqual(['EUR_USD']);
      await priceFrom('EUR_USD', feed.nodeUuid, faultAt, 'a EUR_USD price from the feed pod');
      const [feedPod] = pods('node', 'feed');
      expect(feedPod?.metadata.name).toBe(feed.name);
      expect(feedPod?.status.containerStatuses?.[0]?.restartCount).toBe(0);

      const page = await controllerMetrics();
      expect(
        metricValue(page, 'currency_controller_stream_reassignments_total', {
          reason: 'withdrawn',
        }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        metricValue(page, 'currency_controller_failovers_total', { pair: PAIR }),
      ).toBeGreaterThanOrEqual(1);
      report(
        `USD_HKD failed at the market: streamed by the sim pod ${movedMs} ms later (failAfterMs ${FAIL_AFTER_MS}), its first price seen ${pricedMs} ms after the fault (polling through the CLI)`,
      );
    });

    test('the fault cleared: the feed pod offers USD_HKD again', async () => {
      const clearedAt = Date.now();
      const del = marketRequest('DELETE', '/control/faults');
      expect(del.status).toBe(200);
      expect(JSON.parse(del.text)).toEqual({ faults: [] });
      const f = await waitFor(
        'the feed pod to offer USD_HKD again',
        () => {
          const n = nodes().find((x) => x.nodeUuid === feed.nodeUuid);
          return n?.knownCurrencyPairs.includes(PAIR) ? n : false;
        },
        // Hold-down of failAfterMs, then three good probes failAfterMs / 2 apart.
        { timeoutMs: 4 * FAIL_AFTER_MS + 30_000, intervalMs: 1_000 },
      );
      expect([...f.knownCurrencyPairs].sort()).toEqual([...FEED_PAIRS].sort());
      const s = await waitFor(
        'USD_HKD with 2 capable nodes',
        () => {
          const x = streams().find((y) => y.currencyPair === PAIR);
          return x?.capableNodes === 2 ? x : false;
        },
        { timeoutMs: 20_000, intervalMs: 1_000 },
      );
      expect(s.nodeUuids).toHaveLength(1);
      expect([feed.nodeUuid, sim.nodeUuid]).toContain(s.nodeUuids[0]);
      report(
        `fault cleared: the feed pod offered USD_HKD again after ${Date.now() - clearedAt} ms`,
      );
    });

    test('helm uninstall and deleting the market leave nothing in the namespace', async () => {
      const t0 = Date.now();
      cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
      cluster.kubectlOk(
        ['delete', '-f', '-', '--wait=true', '--timeout=2m'],
        marketManifest(),
        150_000,
      );
      await expectNothingLeft(cluster, NS, [SELECTOR, 'cn-test=upstream']);
      cluster.kubectlOk(
        ['delete', 'namespace', NS, '--wait=true', '--timeout=2m'],
        undefined,
        150_000,
      );
      report(`uninstalled and cleaned up: ${Date.now() - t0} ms`);
    });
  },
);
