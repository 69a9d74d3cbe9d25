/**
 * Our node and CLI (dist/) against the Go peer playing the original controller: a stock
 * grpc-go server with DEFAULT keepalive enforcement (one client ping per 5 minutes; more
 * draws GOAWAY too_many_pings). Nothing of ours may be disconnected for its pings.
 */
import { randomUUID } from 'node:crypto';
import { freePort } from '../support/ports';
import { type Program, killAll, startProgram } from '../support/processes';
import { WaitAborted, waitFor } from '../support/wait';
import { type GoPeer, killGoPeers, startGoController } from './go-peer';

jest.setTimeout(150_000);

/** A hold long enough for grpc-go's ping strikes (GOAWAY after 3 early pings) many times over. */
const HOLD_MS = 60_000;

const PING_FAILURE = /too_many_pings|excess pings|ENHANCE_YOUR_CALM/i;

afterEach(async () => {
  await killAll();
  await killGoPeers();
});

async function startOurNode(address: string, pairs: string[], uuid = randomUUID()) {
  const node = startProgram('node', {
    NODE_CONTROLLER_ADDR: address,
    NODE_CURRENCY_PAIRS: pairs.join(','),
    NODE_UUID: uuid,
    NODE_NAME: 'ours',
    NODE_PRICE_INTERVAL_MS: '200-400',
    METRICS_ADDR: `127.0.0.1:${await freePort()}`,
  });
  return { node, uuid };
}

/** Fails the wait at once when our node has died or the Go controller has seen it go. */
function guard(go: GoPeer, node: Program): void {
  if (node.child.exitCode !== null) throw new WaitAborted(`our node exited: ${node.stdout()}`);
  const lost = go.events('node_disconnected');
  if (lost.length > 0) {
    const ours = node
      .stdout()
      .split('\n')
      .filter((l) => /lost|ping/i.test(l));
    throw new WaitAborted(
      `our node was disconnected: ${JSON.stringify(lost)}; its log: ${ours.join('\n')}`,
    );
  }
}

test(`our node stays connected to a default grpc-go controller for ${HOLD_MS / 1000} s with zero reconnects, and streams`, async () => {
  const { peer: go, address } = await startGoController();
  const { node, uuid } = await startOurNode(address, ['EUR_USD', 'GBP_USD']);

  // Registration, with the name header, then a full-state start of both pairs, answered.
  const registered = await waitFor('registration at the Go controller', () =>
    go.events('registered').find((e) => e.node_uuid === uuid),
  );
  expect((registered.pairs as string[]).sort()).toEqual(['EUR_USD', 'GBP_USD']);
  expect(go.events('node_connected')[0]).toMatchObject({ name: 'ours' });
  const start = await waitFor('the start command sent', () => go.events('start_sent')[0]);
  const reply = await waitFor('the reply to the start command', () => go.events('modify_reply')[0]);
  expect(reply).toMatchObject({ node_uuid: uuid, from_uuid: start.from_uuid });
  await waitFor('prices for both pairs', () => {
    const pairs = new Set(go.events('price').map((e) => e.pair));
    return pairs.has('EUR_USD') && pairs.has('GBP_USD');
  });

  // The hold: any disconnect ends the wait at once with the reason.
  const t0 = Date.now();
  const countAt = (ms: number) =>
    go.events('price').filter((e) => Date.parse(String(e.at)) <= t0 + ms).length;
  await waitFor(
    `${HOLD_MS / 1000} s without a reconnect`,
    () => {
      guard(go, node);
      return Date.now() - t0 >= HOLD_MS;
    },
    { timeoutMs: HOLD_MS + 15_000, intervalMs: 250 },
  );
  expect(go.events('node_connected')).toHaveLength(1);
  expect(go.events('node_disconnected')).toHaveLength(0);
  // Nothing our node sent was a frame the original would answer with UnknownCommandV1Notify.
  expect(go.events('node_unknown')).toEqual([]);
  expect(node.stdout() + node.stderr()).not.toMatch(PING_FAILURE);
  // Prices kept coming over the whole hold, not only at the start.
  expect(countAt(HOLD_MS) - countAt(HOLD_MS / 2)).toBeGreaterThan(10);
  console.log(`prices at the Go controller in ${HOLD_MS / 1000} s: ${countAt(HOLD_MS)}`);
});

test('our node is back with the same full-state start after the Go controller restarts', async () => {
  const first = await startGoController();
  const { uuid } = await startOurNode(first.address, ['USD_JPY']);
  await waitFor('prices at the first Go controller', () => first.peer.events('price').length > 0);

  await first.peer.kill('SIGTERM');
  const started = Date.now();
  // Same address: the node keeps dialling it.
  const second = await waitFor(
    'the Go controller listening again on the same port',
    async () => startGoController(first.address).catch(() => undefined),
    { timeoutMs: 10_000, intervalMs: 200 },
  );
  const registered = await waitFor(
    'registration at the restarted Go controller',
    () => second.peer.events('registered').find((e) => e.node_uuid === uuid),
    { timeoutMs: 20_000 },
  );
  expect(registered.pairs).toEqual(['USD_JPY']);
  await waitFor('prices at the restarted Go controller', () =>
    second.peer.events('price').some((e) => e.node_uuid === uuid && e.pair === 'USD_JPY'),
  );
  console.log(`back and streaming ${Date.now() - started} ms after the restart`);
});

test('our CLI against a default grpc-go controller: controller nodes, and a watch that is not cut for its pings', async () => {
  const { peer: go, address } = await startGoController();
  const { uuid } = await startOurNode(address, ['AUD_USD']);
  // A generous bound: the node is a fresh process, and the lanes may have the machine busy.
  await waitFor('our node registered', () => go.events('registered').length > 0, {
    timeoutMs: 30_000,
  });

  const list = startProgram('cli', {}, ['--controller', address, '--json', 'controller', 'nodes']);
  expect(await list.exited).toBe(0);
  expect(list.stdout()).toContain(uuid);

  // An idle watch (pairs nobody streams): the controller sends nothing, so every client
  // ping counts as a strike at a grpc-go server; a pinging CLI is cut within seconds.
  const watch = startProgram('cli', {}, ['--controller', address, 'watch', '--pair', 'NZD_USD']);
  await waitFor('the watch subscribed', () => /watching/.test(watch.stderr()));
  const t0 = Date.now();
  await waitFor(
    'an idle watch held for 15 s',
    () => {
      if (watch.child.exitCode !== null)
        throw new WaitAborted(`watch ended: ${watch.stderr()} ${watch.stdout()}`);
      return Date.now() - t0 >= 15_000;
    },
    { timeoutMs: 25_000, intervalMs: 250 },
  );
  watch.signal('SIGINT');
  expect(await watch.exited).toBe(0);
  expect(watch.stderr()).not.toMatch(PING_FAILURE);
});

test("our CLI's node commands through a controller that sends no response count (the original's way)", async () => {
  const { peer: go, address } = await startGoController();
  const { uuid } = await startOurNode(address, ['CHF_USD']);
  // A generous bound: the node is a fresh process, and the lanes may have the machine busy.
  await waitFor('our node registered', () => go.events('registered').length > 0, {
    timeoutMs: 30_000,
  });
  const absent = randomUUID();

  /** `currency-cli node status` for these nodes through the Go controller. */
  const status = (timeoutS: number, uuids: string[], json = false) =>
    startProgram('cli', {}, [
      ...['--controller', address, '--timeout', String(timeoutS)],
      ...(json ? ['--json'] : []),
      ...['node', 'status'],
      ...uuids.flatMap((u) => ['--node-uuid', u]),
    ]);

  const started = Date.now();
  const one = status(20, [uuid], true);
  expect(await one.exited).toBe(0);
  // The reply ends the wait, not the 20 s timeout (a generous bound).
  expect(Date.now() - started).toBeLessThan(15_000);
  const out = JSON.parse(one.stdout()) as {
    expectedNodeUuids: string[];
    replies: { nodeUuid: string; type: string; reply: { config: { uuid: string } } }[];
  };
  expect(out.expectedNodeUuids).toEqual([uuid]);
  expect(out.replies.map((r) => [r.nodeUuid, r.type, r.reply.config.uuid])).toEqual([
    [uuid, 'NodeStatusV1Reply', uuid],
  ]);
  expect(go.events('reply_routed')).toHaveLength(1);
  expect(one.stderr()).toMatch(/no response count/i);

  // A node the controller does not have never answers: named at the timeout, exit 1.
  const missing = status(2, [uuid, absent]);
  expect(await missing.exited).toBe(1);
  expect(missing.stderr()).toContain(absent);
  expect(missing.stdout()).toContain(uuid);

  // Only absent nodes named: no count and no reply; still named at the timeout. Upper-case
  // UUIDs go out canonical (lower case), so the reply of a named node is recognised.
  const none = status(2, [absent]);
  expect(await none.exited).toBe(1);
  expect(none.stderr()).toContain(`no reply from ${absent}`);
  const upper = status(20, [uuid.toUpperCase()]);
  expect(await upper.exited).toBe(0);
  expect(upper.stdout()).toContain(uuid);
  expect(go.events('node_unknown')).toEqual([]);
});
