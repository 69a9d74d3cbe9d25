/**
 * Trust under real use (issue 12): each hole found by trying the system as an operator and
 * a hostile peer would, reproduced with real gRPC on loopback, the built programs where a
 * user would run them, and raw peers where a hostile one would.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pack } from '../../services/shared/any';
import { msFromTimestamp } from '../../services/shared/time';
import { startTestController } from '../support/in-process';
import { killAll, runProgram, startProgram } from '../support/processes';
import { RawCli, RawNode, as } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

type Ctl = Awaited<ReturnType<typeof startTestController>>;
const peers: { close(): void }[] = [];
const controllers: Ctl[] = [];

async function controller(opts: Parameters<typeof startTestController>[0] = {}): Promise<Ctl> {
  const c = await startTestController(opts);
  controllers.push(c);
  return c;
}
function rawNode(ctl: Ctl, uuid = randomUUID()): RawNode {
  const n = new RawNode(ctl.address, uuid);
  peers.push(n);
  return n;
}
const startedPairs = (n: RawNode) =>
  (n.latestDesiredState()?.streamStates ?? [])
    .filter((s) => s.streamState === 1)
    .map((s) => s.currencyPair);

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await killAll();
  for (const c of controllers.splice(0)) await c.controller.stop();
});

test('a price stamped in the future or not positive is refused: every CLI command still works and the next streamer is not handed the poison', async () => {
  const ctl = await controller();
  const a = rawNode(ctl);
  a.announce(['USD_HKD']);
  await a.next('assigned', () => (startedPairs(a).includes('USD_HKD') ? true : undefined));
  a.price('USD_HKD', 7.8);
  await waitFor('price taken', () => ctl.controller.core.prices.get('USD_HKD')?.price === 7.8);
  a.send({
    response: pack('NodePriceUpdateV1Notify', {
      currencyPair: 'USD_HKD',
      price: 9.9,
      priceUpdatedAt: { seconds: 1e13, nanos: 0 },
    }),
  });
  a.price('USD_HKD', 9.8, Date.now() + 3_600_000);
  a.price('USD_HKD', -1);
  a.price('USD_HKD', 0);
  await waitFor(
    'four refused',
    async () =>
      ((await ctl.metric('currency_controller_prices_refused_total', { reason: 'future' })) ?? 0) +
        ((await ctl.metric('currency_controller_prices_refused_total', {
          reason: 'bad_timestamp',
        })) ?? 0) +
        ((await ctl.metric('currency_controller_prices_refused_total', {
          reason: 'not_positive',
        })) ?? 0) ===
      4,
  );
  const prices = await runProgram('cli', [
    '--controller',
    ctl.address,
    '--json',
    'controller',
    'prices',
  ]);
  expect(prices.stderr).toBe('');
  expect(prices.code).toBe(0);
  expect(JSON.parse(prices.stdout)).toEqual([
    expect.objectContaining({ currencyPair: 'USD_HKD', price: 7.8 }),
  ]);
  const b = rawNode(ctl);
  b.announce(['USD_HKD']);
  a.close();
  const handed = await b.next('USD_HKD handed over', () =>
    b
      .latestDesiredState()
      ?.streamStates.find((s) => s.currencyPair === 'USD_HKD' && s.streamState === 1),
  );
  expect(handed.latestPrice).toBe(7.8);
  expect(msFromTimestamp(handed.latestPriceUpdatedAt)!).toBeLessThanOrEqual(Date.now());
});

test('two node programs started with one NODE_UUID settle instead of flapping: one stays, the other logs the conflict and backs off', async () => {
  const ctl = await controller();
  const uuid = randomUUID();
  const env = {
    NODE_CONTROLLER_ADDR: ctl.address,
    NODE_CURRENCY_PAIRS: 'USD_HKD',
    NODE_UUID: uuid,
    METRICS_ADDR: '127.0.0.1:0',
    NODE_PRICE_INTERVAL_MS: '200',
  };
  const first = startProgram('node', { ...env, NODE_NAME: 'first' });
  await waitFor('first registered', () =>
    ctl.controller.core.connectedNodes().some((n) => n.name === 'first'),
  );
  const second = startProgram('node', { ...env, NODE_NAME: 'second' });
  await waitFor('second took over', () =>
    ctl.controller.core.connectedNodes().some((n) => n.name === 'second'),
  );
  const displaced = await waitFor('the displaced node logs the conflict', () =>
    first.logLines().find((l) => l.level === 'error' && /NODE_UUID/.test(String(l.msg))),
  );
  expect(JSON.stringify(displaced)).toContain(uuid);
  // Today's failure: the two replaced each other about 12 times a second, for ever. Here
  // the second streams 15 prices (3 s at 200 ms) while the displaced one waits its 30 s.
  const replaced = () =>
    ctl.metric('currency_controller_node_disconnects_total', { reason: 'replaced' });
  const updates = () => ctl.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' });
  const from = (await updates()) ?? 0;
  await waitFor('15 more prices taken', async () => ((await updates()) ?? 0) >= from + 15, {
    timeoutMs: 20_000,
  });
  expect(await replaced()).toBe(1);
  expect(ctl.controller.core.connectedNodes().map((n) => n.name)).toEqual(['second']);
  first.signal('SIGKILL');
  second.signal('SIGKILL');
});

test('known pairs are bounded by CONTROLLER_MAX_KNOWN_PAIRS: 30,000 junk pairs from one stream do not grow the controller', async () => {
  const ctl = await controller({ limits: { maxKnownPairs: 100, maxPairsPerNode: 50_000 } });
  const junk = rawNode(ctl);
  junk.announce(Array.from({ length: 30_000 }, (_, i) => `J${i}_USD`));
  await waitFor(
    'refused counted',
    async () => (await ctl.metric('currency_controller_pairs_refused_total')) === 29_900,
  );
  expect(ctl.controller.core.assignment.knownPairCount()).toBe(100);
  const metrics = await fetch(`http://127.0.0.1:${ctl.controller.httpPort}/metrics`).then((r) =>
    r.text(),
  );
  expect(metrics.length).toBeLessThan(200_000);
});

test('a node stream that never registers is closed after CONTROLLER_REGISTER_TIMEOUT_MS', async () => {
  const ctl = await controller({ limits: { registerTimeoutMs: 300 } });
  const silent = rawNode(ctl);
  const status = await silent.ended;
  expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  expect(
    await ctl.metric('currency_controller_rejected_total', { reason: 'register_timeout' }),
  ).toBe(1);
});

test('a streamer whose connection is alive but that sends no price loses the pair, and prices from the new streamer arrive', async () => {
  const ctl = await controller({ limits: { staleStreamMs: 1500 } });
  const quiet = rawNode(ctl);
  quiet.announce(['USD_HKD']);
  await quiet.next('assigned', () => (startedPairs(quiet).includes('USD_HKD') ? true : undefined));
  const node = startProgram('node', {
    NODE_CONTROLLER_ADDR: ctl.address,
    NODE_CURRENCY_PAIRS: 'USD_HKD',
    NODE_NAME: 'healthy',
    METRICS_ADDR: '127.0.0.1:0',
    NODE_PRICE_INTERVAL_MS: '100',
  });
  await waitFor('healthy registered', () => ctl.controller.core.connectedNodes().length === 2);
  const healthy = ctl.controller.core.connectedNodes().find((n) => n.name === 'healthy')!;
  await waitFor(
    'prices from the healthy node',
    () => ctl.controller.core.prices.get('USD_HKD')?.nodeUuid === healthy.uuid,
    { timeoutMs: 10_000 },
  );
  expect(await ctl.metric('currency_controller_stale_streams_total', { pair: 'USD_HKD' })).toBe(1);
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(1);
  expect(startedPairs(quiet)).toEqual([]);
  node.signal('SIGKILL');
});

test("with two streamers per pair, watchers see one market: only the primary's prices, consecutive prices never jumping between two walks", async () => {
  const ctl = await controller({ streamsPerPair: 2 });
  for (const name of ['one', 'two'])
    startProgram('node', {
      NODE_CONTROLLER_ADDR: ctl.address,
      NODE_CURRENCY_PAIRS: 'USD_HKD',
      NODE_NAME: name,
      METRICS_ADDR: '127.0.0.1:0',
      NODE_PRICE_INTERVAL_MS: '20-40',
    });
  await waitFor(
    'both stream',
    () =>
      ctl.controller.core.connectedNodes().filter((n) => n.streamingPairs.length === 1).length ===
      2,
  );
  const w = new RawCli(ctl.address);
  peers.push(w);
  w.send({
    streamId: 'w',
    command: pack('ControllerWatchPricesV1Req', { currencyPairs: ['USD_HKD'] }),
  });
  // One streamer's prices only (about 33 a second): 150 take about 5 s, 60 s is the bound.
  const seen = await w.next(
    '150 updates',
    () => {
      const u = w
        .onStream('w')
        .map((f) => ({ node: f.nodeUuid, m: as('NodePriceUpdateV1Notify', f.response) }))
        .filter((x) => x.m !== undefined);
      return u.length >= 150 ? u : undefined;
    },
    60_000,
  );
  // The standby's prices prove it alive and are compared, never forwarded.
  const primary = ctl.controller.core.assignment.primaryOf('USD_HKD');
  expect(primary).toBeDefined();
  expect([...new Set(seen.map((s) => s.node))]).toEqual([primary]);
  let worst = 0;
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1]!.m!;
    const b = seen[i]!.m!;
    worst = Math.max(worst, Math.abs(b.price - a.price) / a.price);
    // An older price never reaches a watcher.
    expect(msFromTimestamp(b.priceUpdatedAt)!).toBeGreaterThan(msFromTimestamp(a.priceUpdatedAt)!);
  }
  expect(worst).toBeLessThan(0.005);
});

test('a node that stops cleanly counts as closed, a killed one as lost, and the log line says the same', async () => {
  const ctl = await controller();
  const env = {
    NODE_CONTROLLER_ADDR: ctl.address,
    NODE_CURRENCY_PAIRS: 'USD_HKD',
    METRICS_ADDR: '127.0.0.1:0',
  };
  const clean = startProgram('node', { ...env, NODE_NAME: 'clean' });
  const killed = startProgram('node', { ...env, NODE_NAME: 'killed' });
  await waitFor('both registered', () => ctl.controller.core.connectedNodes().length === 2);
  clean.signal('SIGTERM');
  await clean.exited;
  await waitFor(
    'clean counted',
    async () =>
      (await ctl.metric('currency_controller_node_disconnects_total', { reason: 'closed' })) === 1,
  );
  killed.signal('SIGKILL');
  await waitFor(
    'killed counted',
    async () =>
      (await ctl.metric('currency_controller_node_disconnects_total', { reason: 'lost' })) === 1,
  );
  expect(await ctl.metric('currency_controller_node_disconnects_total', { reason: 'closed' })).toBe(
    1,
  );
});
