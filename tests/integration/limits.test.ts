/**
 * Limits and backpressure: the controller refuses what exceeds its configured bounds with
 * RESOURCE_EXHAUSTED, counts it, and keeps serving everyone else; a peer that stops
 * reading is disconnected instead of making the controller buffer without bound.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pack } from '../../services/shared/any';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { RawCli, RawNode, as } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

let leaks: LeakWatch;
const peers: { close(): void }[] = [];
beforeAll(() => {
  leaks = new LeakWatch().start();
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});
afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('nodes beyond CONTROLLER_MAX_NODES are refused and counted; those inside keep working', async () => {
  const ctl = await startTestController({ limits: { maxNodes: 2 } });
  const nodes = [0, 1, 2].map(() => {
    const n = new RawNode(ctl.address, randomUUID());
    peers.push(n);
    return n;
  });
  nodes[0]!.announce(['USD_HKD']);
  nodes[1]!.announce(['BTC_USD']);
  await waitFor(
    'two registered',
    async () => (await ctl.metric('currency_controller_connected_nodes')) === 2,
  );
  nodes[2]!.announce(['EUR_USD']);
  const status = await nodes[2]!.ended;
  expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(status.details).toContain('limit of 2 nodes');
  expect(await ctl.metric('currency_controller_rejected_total', { reason: 'max_nodes' })).toBe(1);
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(2);
  // Unregistered streams count too: at the limit even a stream that would replace a
  // connected node waits until a place is free.
  const early = new RawNode(ctl.address, nodes[0]!.uuid);
  peers.push(early);
  expect((await early.ended).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  nodes[0]!.close();
  await waitFor(
    'a place free',
    async () => (await ctl.metric('currency_controller_connected_nodes')) === 1,
  );
  const again = new RawNode(ctl.address, nodes[0]!.uuid);
  peers.push(again);
  again.announce(['USD_HKD']);
  await again.next('desired state', (f) => as('NodeStreamModifyStateV1Req', f.command));
  await ctl.controller.stop();
});

test('a node announcing more pairs than CONTROLLER_MAX_PAIRS_PER_NODE is refused', async () => {
  const ctl = await startTestController({ limits: { maxPairsPerNode: 3 } });
  const n = new RawNode(ctl.address, randomUUID());
  peers.push(n);
  n.announce(['A_B', 'C_D', 'E_F', 'G_H']);
  const status = await n.ended;
  expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(status.details).toContain('4 pairs');
  expect(await ctl.metric('currency_controller_rejected_total', { reason: 'max_pairs' })).toBe(1);
  expect(await ctl.metric('currency_controller_pairs_known')).toBe(0);
  await ctl.controller.stop();
});

test('CLI streams beyond CONTROLLER_MAX_CLI_STREAMS are refused; closing one makes room', async () => {
  const ctl = await startTestController({ limits: { maxCliStreams: 2 } });
  const a = new RawCli(ctl.address);
  const b = new RawCli(ctl.address);
  peers.push(a, b);
  a.send({ streamId: 'a', command: pack('ControllerAppVersionV1Req', {}) });
  b.send({ streamId: 'b', command: pack('ControllerAppVersionV1Req', {}) });
  await a.next('a answered', (f) => as('ControllerAppVersionV1Reply', f.response));
  await b.next('b answered', (f) => as('ControllerAppVersionV1Reply', f.response));
  const c = new RawCli(ctl.address);
  peers.push(c);
  c.send({ streamId: 'c', command: pack('ControllerAppVersionV1Req', {}) });
  expect((await c.ended).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(await ctl.metric('currency_controller_rejected_total', { reason: 'max_clis' })).toBe(1);
  a.close();
  await waitFor(
    'a gone',
    async () => (await ctl.metric('currency_controller_connected_clis')) === 1,
  );
  const d = new RawCli(ctl.address);
  peers.push(d);
  d.send({ streamId: 'd', command: pack('ControllerAppVersionV1Req', {}) });
  await d.next('d answered', (f) => as('ControllerAppVersionV1Reply', f.response));
  await ctl.controller.stop();
});

test('a CLI flooding node commands gets RESOURCE_EXHAUSTED past CONTROLLER_MAX_PENDING_PER_CLI', async () => {
  const ctl = await startTestController({ limits: { maxPendingPerCli: 5 } });
  const silent = new RawNode(ctl.address, randomUUID()); // never answers
  peers.push(silent);
  silent.announce(['USD_HKD']);
  await waitFor(
    'registered',
    async () => (await ctl.metric('currency_controller_connected_nodes')) === 1,
  );
  const c = new RawCli(ctl.address);
  peers.push(c);
  for (let i = 0; i < 8; i++) c.send({ streamId: `s${i}`, command: pack('NodeStatusV1Req', {}) });
  const errors = await waitFor('three refusals', () => {
    const e = c.received
      .map((f) => as('CliErrorV1Notify', f.response))
      .filter((x) => x !== undefined);
    return e.length === 3 ? e : undefined;
  });
  expect(errors.every((e) => e.code === grpc.status.RESOURCE_EXHAUSTED)).toBe(true);
  expect(controller(ctl).core.openStreamCount().pending).toBe(5);
  expect(await ctl.metric('currency_controller_rejected_total', { reason: 'max_pending' })).toBe(3);
  await ctl.controller.stop();
});

test('a watcher that stops reading loses updates, then is disconnected; the controller does not buffer without bound', async () => {
  const ctl = await startTestController({ limits: { maxQueuedMessages: 50, slowWatcherMs: 300 } });
  const n = new RawNode(ctl.address, randomUUID());
  peers.push(n);
  n.announce(['USD_HKD']);
  await n.next('assigned', (f) => as('NodeStreamModifyStateV1Req', f.command));
  const w = new RawCli(ctl.address);
  peers.push(w);
  w.send({ streamId: 'w', command: pack('ControllerWatchPricesV1Req', { currencyPairs: [] }) });
  await w.next('watch started', (f) => as('ControllerWatchPricesV1Reply', f.response));
  w.call.pause(); // stops reading: HTTP/2 flow control fills up, then our queue
  let sent = 0;
  await waitFor(
    'the watcher disconnected as a slow consumer',
    async () => {
      for (let i = 0; i < 2000; i++, sent++) n.price('USD_HKD', 7 + (sent % 100) / 1000);
      return (
        (await ctl.metric('currency_controller_rejected_total', { reason: 'slow_consumer' })) === 1
      );
    },
    { timeoutMs: 20_000, intervalMs: 20 },
  );
  expect(
    (await ctl.metric('currency_controller_watch_updates_dropped_total')) ?? 0,
  ).toBeGreaterThan(50);
  await waitFor(
    'CLI stream closed',
    async () => (await ctl.metric('currency_controller_connected_clis')) === 0,
  );
  // The node kept streaming throughout.
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(1);
  console.log(`slow watcher disconnected after ${sent} updates were offered`);
  await ctl.controller.stop();
});

test('a batched (V2) watcher that stops reading loses updates, then is disconnected, like a V1 one', async () => {
  const ctl = await startTestController({ limits: { maxQueuedMessages: 50, slowWatcherMs: 300 } });
  const n = new RawNode(ctl.address, randomUUID());
  peers.push(n);
  n.announce(['USD_HKD']);
  await n.next('assigned', (f) => as('NodeStreamModifyStateV1Req', f.command));
  const w = new RawCli(ctl.address);
  peers.push(w);
  w.send({ streamId: 'w', command: pack('ControllerWatchPricesV2Req', { currencyPairs: [] }) });
  await w.next('watch started', (f) => as('ControllerWatchPricesV1Reply', f.response));
  w.call.pause();
  let sent = 0;
  await waitFor(
    'the watcher disconnected as a slow consumer',
    async () => {
      for (let i = 0; i < 200; i++, sent += 10) {
        n.prices(
          Array.from({ length: 10 }, (_, k) => ({
            pair: 'USD_HKD',
            price: 7 + ((sent + k) % 100) / 1000,
          })),
        );
      }
      return (
        (await ctl.metric('currency_controller_rejected_total', { reason: 'slow_consumer' })) === 1
      );
    },
    { timeoutMs: 20_000, intervalMs: 20 },
  );
  expect(
    (await ctl.metric('currency_controller_watch_updates_dropped_total')) ?? 0,
  ).toBeGreaterThan(50);
  await waitFor(
    'CLI stream closed',
    async () => (await ctl.metric('currency_controller_connected_clis')) === 0,
  );
  expect(await ctl.metric('currency_controller_connected_nodes')).toBe(1);
  console.log(`slow V2 watcher disconnected after ${sent} updates were offered`);
  await ctl.controller.stop();
});

test('a message over CONTROLLER_MAX_MESSAGE_BYTES ends only that stream', async () => {
  const ctl = await startTestController({ maxMessageBytes: 1024 });
  const big = new RawNode(ctl.address, randomUUID());
  const ok = new RawNode(ctl.address, randomUUID());
  peers.push(big, ok);
  ok.announce(['USD_HKD']);
  await waitFor(
    'ok registered',
    async () => (await ctl.metric('currency_controller_connected_nodes')) === 1,
  );
  big.announce(Array.from({ length: 300 }, (_, i) => `P${i}_USD`));
  expect((await big.ended).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  ok.price('USD_HKD', 7.8);
  await waitFor('ok still streams', () => ctl.controller.core.prices.get('USD_HKD')?.price === 7.8);
  await ctl.controller.stop();
});

function controller(ctl: Awaited<ReturnType<typeof startTestController>>) {
  return ctl.controller;
}
