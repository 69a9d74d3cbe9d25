/**
 * The controller in-process on port 0, spoken to by protocol-level peers: exact metrics,
 * routing and reply counting, unknown and malformed input, duplicate UUIDs, the hand-over
 * of the latest price, and full desired state. Teardown fails on leaked handles.
 */
import { randomUUID } from 'node:crypto';
import { CurrencyStreamStateV1_StreamState as StreamState } from '../../services/gen/protobuf/currency_nodes';
import { pack } from '../../services/shared/any';
import type { RunningController } from '../../services/controller/controller';
import { runInProcess } from '../support/cli-runner';
import { LeakWatch } from '../support/leaks';
import { startTestController } from '../support/in-process';
import { RawCli, RawNode, as, rawBytesStream } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

let leaks: LeakWatch;
let ctl: Awaited<ReturnType<typeof startTestController>>;
let controller: RunningController;
const peers: { close(): void }[] = [];

function node(uuid = randomUUID()): RawNode {
  const n = new RawNode(ctl.address, uuid);
  peers.push(n);
  return n;
}
function cli(): RawCli {
  const c = new RawCli(ctl.address);
  peers.push(c);
  return c;
}
const streamingOf = (n: RawNode) =>
  (n.latestDesiredState()?.streamStates ?? [])
    .filter((s) => s.streamState === StreamState.StreamStart)
    .map((s) => s.currencyPair)
    .sort();

async function registered(count: number): Promise<void> {
  await waitFor(
    `${count} registered nodes`,
    async () => (await ctl.metric('currency_controller_connected_nodes')) === count,
  );
}

beforeAll(() => {
  leaks = new LeakWatch().start();
});

beforeEach(async () => {
  ctl = await startTestController();
  controller = ctl.controller;
});

afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  await controller.stop();
  expect(controller.core.openStreamCount()).toEqual({ nodes: 0, clis: 0, pending: 0 });
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('metrics say exactly what happened across registration, rebalancing, prices and failovers', async () => {
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  await a.next('both pairs', () => (streamingOf(a).length === 2 ? true : undefined));
  // b can stream only USD_HKD; a carries two streams to b's none, so one moves to b.
  const b = node();
  b.announce(['USD_HKD']);
  await registered(2);
  await b.next('USD_HKD rebalanced to b', () =>
    streamingOf(b).includes('USD_HKD') ? true : undefined,
  );
  await a.next('a keeps BTC_USD only', () =>
    streamingOf(a).join() === 'BTC_USD' ? true : undefined,
  );
  expect(
    await ctl.metric('currency_controller_stream_reassignments_total', { reason: 'rebalanced' }),
  ).toBe(1);
  b.price('USD_HKD', 7.8);
  b.price('USD_HKD', 7.81);
  a.price('BTC_USD', 60000);
  a.price('USD_HKD', 1); // not a's pair any more: ignored, not counted
  await waitFor(
    'updates counted',
    async () =>
      (await ctl.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' })) === 2,
  );
  await waitFor(
    'BTC update counted',
    async () =>
      (await ctl.metric('currency_controller_price_updates_total', { pair: 'BTC_USD' })) === 1,
  );
  expect(controller.core.prices.get('USD_HKD')?.price).toBe(7.81);
  expect(await ctl.metric('currency_controller_pairs_known')).toBe(2);
  expect(await ctl.metric('currency_controller_pairs_streamed')).toBe(2);
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(0);

  b.close(); // USD_HKD's streaming node goes away: the pair fails over to a
  await registered(1);
  await a.next('USD_HKD back on a', () => (streamingOf(a).includes('USD_HKD') ? true : undefined));
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(1);
  expect(
    await ctl.metric('currency_controller_stream_reassignments_total', { reason: 'node_left' }),
  ).toBe(1);
  expect(await ctl.metric('currency_controller_pairs_streamed')).toBe(2);

  a.close(); // nobody left: both pairs stay known, unstreamed, and no failover is counted
  await registered(0);
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(1);
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'BTC_USD' })).toBe(0);
  expect(await ctl.metric('currency_controller_pairs_known')).toBe(2);
  expect(await ctl.metric('currency_controller_pairs_streamed')).toBe(0);
  expect(await ctl.metric('currency_controller_pairs_unstreamed')).toBe(2);
  expect(await ctl.metric('currency_controller_pair_streamers', { pair: 'BTC_USD' })).toBe(0);
  // Both peers cancelled their own calls: they ended their streams, no connection was lost.
  expect(await ctl.metric('currency_controller_node_disconnects_total', { reason: 'closed' })).toBe(
    2,
  );
  expect(await ctl.metric('currency_controller_node_disconnects_total', { reason: 'lost' })).toBe(
    0,
  );
});

test('StreamStart hands over the latest price the controller knows', async () => {
  const a = node();
  a.announce(['USD_HKD']);
  await a.next('assigned', () => (streamingOf(a).length === 1 ? true : undefined));
  const at = Date.now() - 1000;
  a.price('USD_HKD', 7.7531, at);
  await waitFor('price stored', () => controller.core.prices.get('USD_HKD')?.price === 7.7531);
  const b = node();
  b.announce(['USD_HKD']);
  await registered(2);
  a.close();
  const start = await b.next('StreamStart with price', (f) =>
    as('NodeStreamModifyStateV1Req', f.command)?.streamStates.find(
      (s) => s.currencyPair === 'USD_HKD' && s.streamState === StreamState.StreamStart,
    ),
  );
  expect(start.latestPrice).toBe(7.7531);
  expect(start.latestPriceUpdatedAt?.seconds).toBe(Math.floor(at / 1000));
});

test('a node given one more pair is sent its full desired state, keeping the pairs it had', async () => {
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  await a.next('two pairs', () => (streamingOf(a).length === 2 ? true : undefined));
  a.announce(['USD_HKD', 'BTC_USD', 'EUR_USD']); // a new pair appears on this node
  await a.next('three pairs', () => (streamingOf(a).length === 3 ? true : undefined));
  expect(streamingOf(a)).toEqual(['BTC_USD', 'EUR_USD', 'USD_HKD']);
});

test('the controller answers an unknown CLI command with UnknownCommandV1Notify carrying it', async () => {
  const c = cli();
  const alien = {
    typeUrl: 'type.googleapis.com/protobuf.TeleportV9Req',
    value: Buffer.from([8, 1]),
  };
  c.send({ streamId: 's1', command: alien });
  const reply = await c.next('unknown notify', (f) =>
    f.streamId === 's1' ? as('UnknownCommandV1Notify', f.response) : undefined,
  );
  expect(reply.command?.typeUrl).toBe(alien.typeUrl);
  expect(await ctl.metric('currency_controller_unknown_commands_total', { peer: 'cli' })).toBe(1);
});

test('the controller answers an unknown node frame with UnknownCommandV1Notify and keeps the node', async () => {
  const a = node();
  a.announce(['USD_HKD']);
  await registered(1);
  a.send({
    response: { typeUrl: 'type.googleapis.com/protobuf.FutureNotifyV7', value: Buffer.alloc(0) },
  });
  const reply = await a.next('unknown notify', (f) => as('UnknownCommandV1Notify', f.command));
  expect(reply.command?.typeUrl).toBe('type.googleapis.com/protobuf.FutureNotifyV7');
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(1);
});

test('malformed frames are counted and logged, and neither the stream nor the controller goes down', async () => {
  const a = node();
  a.announce(['USD_HKD']);
  await registered(1);
  // Bytes that are not a StreamFromNode (a truncated length-delimited field).
  const raw = rawBytesStream(ctl.address, '/protobuf.NodeCmdStream/NodeCommandStream');
  peers.push(raw);
  raw.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
  // A valid envelope with a non-UUID node_uuid, and a known type with undecodable payload.
  a.send({ nodeUuid: 'not-a-uuid' });
  a.send({
    response: {
      typeUrl: 'type.googleapis.com/protobuf.NodePriceUpdateV1Notify',
      value: Buffer.from([0x12, 0x05, 0x01]),
    },
  });
  await waitFor(
    'three malformed frames counted',
    async () =>
      (await ctl.metric('currency_controller_malformed_frames_total', { peer: 'node' })) === 3,
  );
  // Still serving: the same stream still works, and a new CLI gets an answer.
  a.price('USD_HKD', 7.8);
  await waitFor('price after garbage', () => controller.core.prices.get('USD_HKD')?.price === 7.8);
  expect((await runInProcess(['--controller', ctl.address, 'controller', 'version'])).code).toBe(0);
});

test('a malformed CLI frame gets a clear error on its stream_id and is counted', async () => {
  const c = cli();
  c.send({ streamId: 's2', cliUuid: 'nope', command: pack('ControllerAppVersionV1Req', {}) });
  const err = await c.next('error', (f) =>
    f.streamId === 's2' ? as('CliErrorV1Notify', f.response) : undefined,
  );
  expect(err.message).toContain('cli_uuid');
  expect(await ctl.metric('currency_controller_malformed_frames_total', { peer: 'cli' })).toBe(1);
});

test('a second stream with the same node UUID replaces the first, which is ended', async () => {
  const uuid = randomUUID();
  const first = node(uuid);
  first.announce(['USD_HKD']);
  await first.next('assigned', () => (streamingOf(first).length === 1 ? true : undefined));
  const second = node(uuid);
  second.announce(['USD_HKD']);
  const status = await first.ended;
  expect(status.details).toContain('replaced');
  await second.next('assigned to the newer stream', () =>
    streamingOf(second).includes('USD_HKD') ? true : undefined,
  );
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(1);
  expect(
    await ctl.metric('currency_controller_node_disconnects_total', { reason: 'replaced' }),
  ).toBe(1);
  // The node kept its place: its pair did not fail over.
  expect(await ctl.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(0);
});

test('replies are routed back to the right stream_id and counted; a silent node makes the CLI time out naming it', async () => {
  const talker = node();
  talker.announce(['USD_HKD']);
  const silent = node();
  silent.announce(['BTC_USD']);
  await registered(2);
  // The talker answers status requests; the silent one never does.
  talker.call.on('data', () => {
    for (const f of talker.received.splice(0)) {
      if (as('NodeStatusV1Req', f.command))
        talker.send({
          fromUuid: f.fromUuid,
          response: pack('NodeStatusV1Reply', {
            appVersion: 't',
            connectedControllerServer: '',
            streamStates: [],
          }),
        });
    }
  });
  const t0 = Date.now();
  const m = await runInProcess([
    '--controller',
    ctl.address,
    '--timeout',
    '1.5',
    '--json',
    'node',
    'status',
    '--all',
  ]);
  const elapsed = Date.now() - t0;
  expect(m.code).toBe(1);
  const doc = JSON.parse(m.out) as {
    expectedNodeUuids: string[];
    replies: { nodeUuid: string }[];
    missingNodeUuids: string[];
  };
  expect(doc.expectedNodeUuids.sort()).toEqual([talker.uuid, silent.uuid].sort());
  expect(doc.replies.map((r) => r.nodeUuid)).toEqual([talker.uuid]);
  expect(doc.missingNodeUuids).toEqual([silent.uuid]);
  expect(m.err).toContain(`no reply from ${silent.uuid}`);
  expect(elapsed).toBeGreaterThanOrEqual(1400);
  expect(elapsed).toBeLessThan(5000);
  await waitFor(
    'partial outcome counted',
    async () =>
      (await ctl.metric('currency_controller_commands_total', {
        command: 'NodeStatusV1Req',
        outcome: 'partial',
      })) === 1,
  );
});

test('the CLI exits as soon as every expected reply has arrived, well before the timeout', async () => {
  const a = node();
  a.announce(['USD_HKD']);
  await registered(1);
  a.call.on('data', () => {
    for (const f of a.received.splice(0)) {
      if (as('NodeStatusV1Req', f.command))
        a.send({
          fromUuid: f.fromUuid,
          response: pack('NodeStatusV1Reply', {
            appVersion: 'x',
            connectedControllerServer: '',
            streamStates: [],
          }),
        });
    }
  });
  const t0 = Date.now();
  const { code } = await runInProcess([
    '--controller',
    ctl.address,
    '--timeout',
    '10',
    'node',
    'status',
    '--node-uuid',
    a.uuid,
  ]);
  expect(code).toBe(0);
  expect(Date.now() - t0).toBeLessThan(3000);
});

describe('target UUIDs that differ only in case (a foreign CLI, grpcurl) name one node', () => {
  test.each(['NodeStatusV1Req', 'NodeShutdownV1Req'] as const)(
    '%s goes to the node once and one reply is announced',
    async (command) => {
      const a = node();
      a.announce(['USD_HKD']);
      await registered(1);
      const c = cli();
      const upper = a.uuid.toUpperCase();
      c.send({ streamId: 's1', nodeUuids: [a.uuid, upper, upper], command: pack(command, {}) });
      const count = await c.next('the response count', (f) =>
        as('CliResponseCountV1Notify', f.response),
      );
      expect(count).toMatchObject({
        expectedResponses: 1,
        nodeUuids: [a.uuid],
        unknownNodeUuids: [],
      });
      await a.next('the command', (f) => (as(command, f.command) ? true : undefined));
      // A second copy would have been written right behind the first.
      await new Promise((r) => setTimeout(r, 200));
      expect(a.received.filter((f) => as(command, f.command))).toHaveLength(1);
    },
  );

  test('an unknown UUID given twice in two cases is reported once', async () => {
    const c = cli();
    const u = randomUUID();
    c.send({
      streamId: 's1',
      nodeUuids: [u, u.toUpperCase()],
      command: pack('NodeStatusV1Req', {}),
    });
    const count = await c.next('the response count', (f) =>
      as('CliResponseCountV1Notify', f.response),
    );
    expect(count).toMatchObject({ expectedResponses: 0, nodeUuids: [], unknownNodeUuids: [u] });
  });

  test('controller kick kicks the node once and does not call the second spelling unknown', async () => {
    const a = node();
    a.announce(['USD_HKD']);
    await registered(1);
    const c = cli();
    c.send({
      streamId: 's1',
      command: pack('ControllerKickNodesV1Req', { nodeUuids: [a.uuid.toUpperCase(), a.uuid] }),
    });
    const reply = await c.next('the kick reply', (f) =>
      as('ControllerKickNodesV1Reply', f.response),
    );
    expect(reply).toEqual({ kickedNodeUuids: [a.uuid], unknownNodeUuids: [] });
  });
});

test('node streams carry a response header saying the controller takes NodePriceUpdatesV1Notify', async () => {
  const a = node();
  a.announce(['USD_HKD']);
  const headers = await a.headers;
  expect(headers.get('x-currency-controller-accepts')).toEqual(['NodePriceUpdatesV1Notify']);
});

test('a batch of price updates is taken as that many single updates: prices, counts and watchers', async () => {
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  await a.next('both pairs', () => (streamingOf(a).length === 2 ? true : undefined));
  const v1 = cli();
  v1.send({ streamId: 'w1', command: pack('ControllerWatchPricesV1Req', { currencyPairs: [] }) });
  await v1.next('V1 watch started', (f) => as('ControllerWatchPricesV1Reply', f.response));
  const at = Date.now();
  a.prices([
    { pair: 'USD_HKD', price: 7.81, atMs: at },
    { pair: 'BTC_USD', price: 60001, atMs: at },
    { pair: 'USD_HKD', price: 7.82, atMs: at + 1 },
    { pair: 'EUR_USD', price: 1.08, atMs: at }, // not a's pair: ignored, as a single would be
  ]);
  await waitFor(
    'three updates counted',
    async () =>
      (await ctl.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' })) === 2 &&
      (await ctl.metric('currency_controller_price_updates_total', { pair: 'BTC_USD' })) === 1,
  );
  expect(controller.core.prices.get('USD_HKD')?.price).toBe(7.82);
  expect(controller.core.prices.get('BTC_USD')?.price).toBe(60001);
  expect(controller.core.prices.get('EUR_USD')).toBeUndefined();
  // A V1 watcher still gets one NodePriceUpdateV1Notify per update, naming the node.
  const seen = await v1.next('three V1 updates', () => {
    const u = v1
      .onStream('w1')
      .map((f) => ({ node: f.nodeUuid, m: as('NodePriceUpdateV1Notify', f.response) }))
      .filter((x) => x.m !== undefined);
    return u.length === 3 ? u : undefined;
  });
  expect(seen.map((x) => [x.node, x.m!.currencyPair, x.m!.price])).toEqual([
    [a.uuid, 'USD_HKD', 7.81],
    [a.uuid, 'BTC_USD', 60001],
    [a.uuid, 'USD_HKD', 7.82],
  ]);
  expect(await ctl.metric('currency_controller_malformed_frames_total', { peer: 'node' })).toBe(0);
});

test('a refused entry of a price batch (not a finite positive price) is counted and skipped; the rest of the batch and the stream carry on', async () => {
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  await a.next('both pairs', () => (streamingOf(a).length === 2 ? true : undefined));
  a.prices([
    { pair: 'USD_HKD', price: NaN },
    { pair: 'BTC_USD', price: 59999 },
    { pair: 'USD_HKD', price: Infinity },
  ]);
  await waitFor(
    'two refused entries counted',
    async () =>
      (await ctl.metric('currency_controller_prices_refused_total', { reason: 'not_positive' })) ===
      2,
  );
  await waitFor('BTC price taken', () => controller.core.prices.get('BTC_USD')?.price === 59999);
  expect(await ctl.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' })).toBe(0);
  expect(await ctl.metric('currency_controller_price_updates_total', { pair: 'BTC_USD' })).toBe(1);
  // An undecodable batch payload is one malformed frame, like any other.
  a.send({
    response: {
      typeUrl: 'type.googleapis.com/protobuf.NodePriceUpdatesV1Notify',
      value: Buffer.from([0x0a, 0x05, 0x01]),
    },
  });
  await waitFor(
    'undecodable batch counted',
    async () =>
      (await ctl.metric('currency_controller_malformed_frames_total', { peer: 'node' })) === 1,
  );
  a.prices([{ pair: 'USD_HKD', price: 7.8 }]);
  await waitFor('stream still works', () => controller.core.prices.get('USD_HKD')?.price === 7.8);
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(1);
});

test('a V2 watch gets the updates that arrive together as one ControllerPriceUpdatesV1Notify, each naming its node', async () => {
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  const b = node();
  b.announce(['EUR_USD']);
  await registered(2);
  await a.next('a streams two', () => (streamingOf(a).length === 2 ? true : undefined));
  await b.next('b streams one', () => (streamingOf(b).length === 1 ? true : undefined));
  const w = cli();
  w.send({ streamId: 'v2', command: pack('ControllerWatchPricesV2Req', { currencyPairs: [] }) });
  const ack = await w.next('V2 watch started', (f) =>
    as('ControllerWatchPricesV1Reply', f.response),
  );
  expect(ack.currencyPairs).toEqual(['BTC_USD', 'EUR_USD', 'USD_HKD']);
  const filtered = cli();
  filtered.send({
    streamId: 'only-eur',
    command: pack('ControllerWatchPricesV2Req', { currencyPairs: ['EUR_USD'] }),
  });
  await filtered.next('filtered watch started', (f) =>
    as('ControllerWatchPricesV1Reply', f.response),
  );
  const at = Date.now();
  a.prices([
    { pair: 'USD_HKD', price: 7.8, atMs: at },
    { pair: 'BTC_USD', price: 60000, atMs: at },
  ]);
  b.price('EUR_USD', 1.08, at);
  const got = await w.next('three updates in batches', () => {
    const batches = w
      .onStream('v2')
      .map((f) => as('ControllerPriceUpdatesV1Notify', f.response))
      .filter((m) => m !== undefined);
    const prices = batches.flatMap((m) => m.prices);
    return prices.length === 3 ? { batches, prices } : undefined;
  });
  // a's two updates came in one frame, so they reach the watcher in one frame.
  expect(got.batches.some((m) => m.prices.length >= 2)).toBe(true);
  expect(
    got.prices
      .map((p) => [p.nodeUuid, p.currencyPair, p.price])
      .sort((x, y) => (x[1]! < y[1]! ? -1 : 1)),
  ).toEqual([
    [a.uuid, 'BTC_USD', 60000],
    [b.uuid, 'EUR_USD', 1.08],
    [a.uuid, 'USD_HKD', 7.8],
  ]);
  expect(got.prices.every((p) => p.priceUpdatedAt?.seconds === Math.floor(at / 1000))).toBe(true);
  // No single-update frames on a V2 watch.
  expect(w.onStream('v2').some((f) => as('NodePriceUpdateV1Notify', f.response))).toBe(false);
  const eur = await filtered.next('EUR only', () => {
    const p = filtered
      .onStream('only-eur')
      .flatMap((f) => as('ControllerPriceUpdatesV1Notify', f.response)?.prices ?? []);
    return p.length > 0 ? p : undefined;
  });
  expect(eur.map((p) => p.currencyPair)).toEqual(['EUR_USD']);
});

test('`controller nodes` follows joins, leaves and moved pairs (its reply is kept between changes)', async () => {
  const list = async () => {
    const m = await runInProcess(['--controller', ctl.address, '--json', 'controller', 'nodes']);
    expect(m.code).toBe(0);
    return JSON.parse(m.out) as {
      nodeUuid: string;
      knownCurrencyPairs: string[];
      streamingCurrencyPairs: string[];
    }[];
  };
  const a = node();
  a.announce(['USD_HKD', 'BTC_USD']);
  await a.next('a streams two', () => (streamingOf(a).length === 2 ? true : undefined));
  const first = await list();
  expect(first.map((n) => [n.nodeUuid, n.streamingCurrencyPairs])).toEqual([
    [a.uuid, ['BTC_USD', 'USD_HKD']],
  ]);
  expect(await list()).toEqual(first); // unchanged: the same answer
  const b = node();
  b.announce(['USD_HKD']);
  await b.next('b takes USD_HKD', () => (streamingOf(b).includes('USD_HKD') ? true : undefined));
  await a.next('a keeps BTC_USD', () => (streamingOf(a).join() === 'BTC_USD' ? true : undefined));
  const second = await list();
  const byUuid = new Map(second.map((n) => [n.nodeUuid, n]));
  expect(byUuid.get(a.uuid)?.streamingCurrencyPairs).toEqual(['BTC_USD']);
  expect(byUuid.get(b.uuid)?.streamingCurrencyPairs).toEqual(['USD_HKD']);
  expect(byUuid.get(b.uuid)?.knownCurrencyPairs).toEqual(['USD_HKD']);
  a.announce(['USD_HKD', 'BTC_USD', 'EUR_USD']); // a new pair on a node already listed
  await a.next('a streams EUR_USD', () => (streamingOf(a).includes('EUR_USD') ? true : undefined));
  expect((await list()).find((n) => n.nodeUuid === a.uuid)?.knownCurrencyPairs).toEqual([
    'BTC_USD',
    'EUR_USD',
    'USD_HKD',
  ]);
  b.close();
  await registered(1);
  const third = await list();
  expect(third.map((n) => n.nodeUuid)).toEqual([a.uuid]);
  expect(third[0]!.streamingCurrencyPairs).toEqual(['BTC_USD', 'EUR_USD', 'USD_HKD']);
});
