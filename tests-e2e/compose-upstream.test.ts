/**
 * deploy/compose's `upstream` profile: a pair whose upstream fails moves to another node,
 * and its prices keep coming from there. The lightest stack that shows it: the controller,
 * the market, node-upstream (reading the market over HTTP), the cli, and one replica of the
 * simulated `node` service sharing USD_HKD with node-upstream; no observability services
 * (COMPOSE_PROFILES=upstream only, tracing off).
 *
 * node-upstream holds USD_HKD first: the stack starts without the simulated node, which is
 * started only once node-upstream streams the pair with prices from the market. Then the
 * market answers USD_HKD with HTTP 500 to node-upstream (POST /control/faults through its
 * published port on 127.0.0.1); after MARKET_NODE_FAIL_AFTER_MS (2 s here) node-upstream
 * withdraws the pair while staying connected, and the controller gives it to the simulated
 * node at once. Checked as a user would see it: `controller streams`, `controller prices`
 * (the new node's prices arriving), `controller nodes`, and the controller's /metrics. The
 * fault cleared, node-upstream offers the pair again.
 *
 * Own project name, every published port on 127.0.0.1 and chosen by the engine; `down -v`
 * removes it all.
 */
import { waitFor } from '../tests/support/wait';
import {
  ComposeProject,
  buildProjectImages,
  composeEnv,
  loadImages,
  metricValue,
  publishedAddr,
  runOk,
  type NodeInfo,
  type PriceInfo,
  type StreamInfo,
} from './support/docker';

jest.setTimeout(180_000);

const PROJECT = `cn-e2e-upstream-${process.pid}`;
/** The shared pair, and its market symbol. */
const PAIR = 'USD_HKD';
const SYMBOL = 'USDHKD';
/** node-upstream's pairs (MARKET_NODE_PAIRS): EUR_USD keeps working while USD_HKD fails. */
const UPSTREAM_PAIRS = ['EUR_USD', PAIR];
/**
 * The simulated node's pairs (NODE_PAIRS). GBP_USD gives it a stream of its own, so joining
 * does not make the controller rebalance USD_HKD onto it (a donor needs 2 streams more).
 */
const SIM_PAIRS = [PAIR, 'GBP_USD'];
const FAIL_AFTER_MS = 2_000;
/** The client name node-upstream gives the market (compose.yaml: ?client=node-upstream). */
const CLIENT = 'node-upstream';
const report = (line: string) => process.stdout.write(`e2e compose upstream: ${line}\n`);

let project: ComposeProject;
let up = false;

const composeOk = (args: string[], timeoutMs = 60_000) => project.ok(args, timeoutMs);
const cliJson = async <T>(args: string[]): Promise<T> =>
  JSON.parse(await composeOk(['exec', '-T', 'cli', 'currency-cli', '--json', ...args])) as T;
const nodes = () => cliJson<NodeInfo[]>(['controller', 'nodes']);
const streams = () => cliJson<StreamInfo[]>(['controller', 'streams']);
const prices = () => cliJson<(PriceInfo & { nodeName: string })[]>(['controller', 'prices']);

/** The one running container of a service. */
async function containerId(service: string): Promise<string> {
  const ids = (await composeOk(['ps', '-q', service]))
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length !== 1) throw new Error(`${service}: ${ids.length} containers, expected 1`);
  return ids[0]!;
}

/** The node a service's container registered as (NODE_NAME: the short container id). */
async function nodeOf(service: string): Promise<NodeInfo> {
  const name = (await containerId(service)).slice(0, 12);
  return waitFor(
    `${service} (${name}) to be listed by controller nodes`,
    async () => (await nodes()).find((n) => n.name === name),
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

let marketAddr: string | undefined;

/** A request to the market through its published port on 127.0.0.1. */
async function market(method: string, path: string, body?: unknown): Promise<Response> {
  const addr = (marketAddr ??= await publishedAddr(project, 'market', 8080));
  return fetch(`http://${addr}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
}

async function controllerMetrics(): Promise<string> {
  const addr = await publishedAddr(project, 'controller', 9464);
  const res = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
  return res.text();
}

/** A price of `pair` from `nodeUuid` dated after `afterMs`. */
async function priceFrom(
  pair: string,
  nodeUuid: string,
  afterMs: number,
  what: string,
): Promise<PriceInfo> {
  let last: PriceInfo | undefined;
  return waitFor(
    what,
    async () => {
      last = (await prices()).find((p) => p.currencyPair === pair);
      return last?.nodeUuid === nodeUuid && Date.parse(last.priceUpdatedAt) > afterMs
        ? last
        : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 500 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last ${pair} price: ${JSON.stringify(last)}`);
  });
}

let upstreamNode: NodeInfo;
let simNode: NodeInfo;

beforeAll(async () => {
  const images = loadImages();
  buildProjectImages();
  project = new ComposeProject(
    PROJECT,
    composeEnv(images, {
      // The upstream profile alone: no Prometheus, Collector or Jaeger, and no traces sent.
      COMPOSE_PROFILES: 'upstream',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      CURRENCY_NODE_IMAGE: images.NODE_IMAGE,
      MARKET_PORT: '0',
      MARKET_NODE_PAIRS: UPSTREAM_PAIRS.join(','),
      MARKET_NODE_FAIL_AFTER_MS: String(FAIL_AFTER_MS),
      NODE_PAIRS: SIM_PAIRS.join(','),
      // Quicker prices (node-upstream polls the market at this interval).
      NODE_PRICE_INTERVAL_MS: '300-600',
    }),
  );
  const started = Date.now();
  up = true;
  // Without the simulated node: node-upstream is the only node that can stream USD_HKD.
  await composeOk(
    [
      'up',
      '-d',
      '--no-build',
      '--wait',
      '--wait-timeout',
      '120',
      'controller',
      'market',
      'node-upstream',
      'cli',
    ],
    180_000,
  );
  report(`controller, market, node-upstream and cli healthy in ${Date.now() - started} ms`);
}, 25 * 60_000);

afterAll(async () => {
  if (!up) return;
  report(`stack logs: ${await project.down()}`);
});

describe('compose upstream profile: a pair whose upstream fails moves to another node', () => {
  it('node-upstream streams USD_HKD with prices read from the market', async () => {
    // The market answers on its published loopback port.
    const q = await market('GET', `/v1/quote/${SYMBOL}?client=test`);
    expect(q.status).toBe(200);
    expect(await q.json()).toMatchObject({ symbol: SYMBOL, price: expect.any(String) });

    upstreamNode = await nodeOf('node-upstream');
    expect([...upstreamNode.knownCurrencyPairs].sort()).toEqual([...UPSTREAM_PAIRS].sort());
    const since = Date.now();
    await waitFor(
      'node-upstream to stream USD_HKD',
      async () => {
        const s = (await streams()).find((x) => x.currencyPair === PAIR);
        return s?.nodeUuids.length === 1 && s.nodeUuids[0] === upstreamNode.nodeUuid;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    await priceFrom(PAIR, upstreamNode.nodeUuid, since, 'a USD_HKD price from node-upstream');
  });

  it('a simulated node sharing USD_HKD joins; node-upstream keeps the pair', async () => {
    await composeOk(
      ['up', '-d', '--no-build', '--no-deps', '--wait', '--wait-timeout', '120', 'node'],
      180_000,
    );
    simNode = await nodeOf('node');
    expect([...simNode.knownCurrencyPairs].sort()).toEqual([...SIM_PAIRS].sort());
    const s = await waitFor(
      'USD_HKD with 2 capable nodes and GBP_USD streamed by the simulated node',
      async () => {
        const all = await streams();
        const hkd = all.find((x) => x.currencyPair === PAIR);
        const gbp = all.find((x) => x.currencyPair === 'GBP_USD');
        return hkd?.capableNodes === 2 && gbp?.nodeUuids[0] === simNode.nodeUuid ? hkd : false;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(s.nodeUuids).toEqual([upstreamNode.nodeUuid]);
  });

  it('the market fails USD_HKD for node-upstream: the pair moves to the simulated node, its prices arrive, node-upstream stays connected', async () => {
    const failoversBefore =
      metricValue(await controllerMetrics(), 'currency_controller_failovers_total', {
        pair: PAIR,
      }) ?? 0;
    const faultAt = Date.now();
    const set = await market('POST', '/control/faults', {
      symbol: SYMBOL,
      client: CLIENT,
      mode: 'http_500',
    });
    expect(set.status).toBe(200);
    // The fault hits node-upstream's requests for that symbol only.
    expect((await market('GET', `/v1/quote/${SYMBOL}?client=${CLIENT}`)).status).toBe(500);
    expect((await market('GET', `/v1/quote/EURUSD?client=${CLIENT}`)).status).toBe(200);
    expect((await market('GET', `/v1/quote/${SYMBOL}?client=test`)).status).toBe(200);

    // The streamer changes, as the controller says.
    const moved = await waitFor(
      'USD_HKD to be streamed by the simulated node',
      async () => {
        const s = (await streams()).find((x) => x.currencyPair === PAIR);
        return s?.nodeUuids.length === 1 && s.nodeUuids[0] === simNode.nodeUuid ? s : false;
      },
      { timeoutMs: FAIL_AFTER_MS + 15_000, intervalMs: 250 },
    );
    const movedMs = Date.now() - faultAt;
    // Only the simulated node offers it now.
    expect(moved.capableNodes).toBe(1);

    // Its prices arrive: from the simulated node, dated after the fault, and still coming.
    const first = await priceFrom(
      PAIR,
      simNode.nodeUuid,
      faultAt,
      'a USD_HKD price from the simulated node',
    );
    const pricedMs = Date.now() - faultAt;
    const next = await priceFrom(
      PAIR,
      simNode.nodeUuid,
      Date.parse(first.priceUpdatedAt),
      'a newer USD_HKD price from the simulated node',
    );
    expect(next.price).toBeGreaterThan(0);

    // node-upstream is still connected (same registration, same container, not restarted),
    // has withdrawn USD_HKD only, and still streams EUR_USD with prices from the market.
    const listed = await nodes();
    const u = listed.find((n) => n.nodeUuid === upstreamNode.nodeUuid);
    expect(u).toBeDefined();
    expect(u!.knownCurrencyPairs).toEqual(['EUR_USD']);
    expect(u!.streamingCurrencyPairs).toEqual(['EUR_USD']);
    await priceFrom(
      'EUR_USD',
      upstreamNode.nodeUuid,
      faultAt,
      'a EUR_USD price from node-upstream',
    );
    const id = await containerId('node-upstream');
    expect(id.slice(0, 12)).toBe(upstreamNode.name);
    const state = (
      await runOk('docker', ['inspect', '-f', '{{.State.Status}} {{.RestartCount}}', id])
    ).trim();
    expect(state).toBe('running 0');

    // The controller counted it: a stream reassigned because it was withdrawn, a failover.
    const page = await controllerMetrics();
    expect(
      metricValue(page, 'currency_controller_stream_reassignments_total', { reason: 'withdrawn' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricValue(page, 'currency_controller_failovers_total', { pair: PAIR }),
    ).toBeGreaterThanOrEqual(failoversBefore + 1);
    report(
      `USD_HKD failed at the market: streamed by the simulated node ${movedMs} ms later (NODE_UPSTREAM_FAIL_AFTER_MS ${FAIL_AFTER_MS}), its first price seen ${pricedMs} ms after the fault (polling through the CLI)`,
    );
  });

  it('the fault cleared: node-upstream offers USD_HKD again', async () => {
    const clearedAt = Date.now();
    const del = await market('DELETE', '/control/faults');
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ faults: [] });
    const u = await waitFor(
      'node-upstream to offer USD_HKD again',
      async () => {
        const n = (await nodes()).find((x) => x.nodeUuid === upstreamNode.nodeUuid);
        return n?.knownCurrencyPairs.includes(PAIR) ? n : false;
      },
      // Hold-down of FAIL_AFTER_MS, then three good probes FAIL_AFTER_MS / 2 apart.
      { timeoutMs: 4 * FAIL_AFTER_MS + 15_000, intervalMs: 500 },
    );
    expect([...u.knownCurrencyPairs].sort()).toEqual([...UPSTREAM_PAIRS].sort());
    // Both nodes can stream it again; it is streamed exactly once.
    const s = await waitFor(
      'USD_HKD with 2 capable nodes',
      async () => {
        const x = (await streams()).find((y) => y.currencyPair === PAIR);
        return x?.capableNodes === 2 ? x : false;
      },
      { timeoutMs: 10_000, intervalMs: 500 },
    );
    expect(s.nodeUuids).toHaveLength(1);
    expect([upstreamNode.nodeUuid, simNode.nodeUuid]).toContain(s.nodeUuids[0]);
    report(`fault cleared: node-upstream offered USD_HKD again after ${Date.now() - clearedAt} ms`);
  });
});
