/**
 * The controller core with fake streams and the fake scheduler: every rule of issue 12
 * that the core owns, without a socket or a real clock.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type {
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../../gen/protobuf/currency_nodes';
import { CurrencyStreamStateV1_StreamState as StreamState } from '../../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../shared/any';
import { type Logger, silentLogger } from '../../shared/logger';
import { seededRandom } from '../../shared/scheduler';
import { timestampFromMs } from '../../shared/time';
import { CLOSE_REASON_METADATA_KEY } from '../../shared/wire';
import { FakeCall } from '../../../tests/support/fake-call';
import { type FakeScheduler, fakeScheduler } from '../../../tests/support/fake-scheduler';
import { capturingLogger } from '../../../tests/support/log-capture';
import { loadControllerConfig, type ControllerLimits } from '../config';
import { ControllerCore } from './core';
import type { NodeAdmission } from '../identity';
import { createControllerMetrics } from '../metrics';

type NodeCall = FakeCall<StreamFromNode, StreamToNode>;
type CliCall = FakeCall<StreamFromCli, StreamToCli>;

function setup(
  opts: { streamsPerPair?: number; limits?: Partial<ControllerLimits>; logger?: Logger } = {},
) {
  const scheduler = fakeScheduler();
  const registry = new Registry();
  const metrics = createControllerMetrics(registry, { defaultMetrics: false });
  const defaults = loadControllerConfig({});
  const core = new ControllerCore({
    scheduler,
    random: seededRandom(7),
    logger: opts.logger ?? silentLogger(),
    metrics,
    appVersion: 'test',
    streamsPerPair: opts.streamsPerPair ?? 1,
    newId: randomUUID,
    limits: { ...defaults.limits, ...opts.limits },
  });
  const metric = async (name: string, labels: Record<string, string> = {}) => {
    const m = await registry.getSingleMetric(name)?.get();
    return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      ?.value;
  };
  /** A metric's sum over all its series. */
  const total = async (name: string) =>
    ((await registry.getSingleMetric(name)?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);
  const node = (uuid = randomUUID(), admission?: NodeAdmission) => {
    const call: NodeCall = new FakeCall(
      `ipv4:127.0.0.1:${40000 + Math.floor(Math.random() * 999)}`,
    );
    core.attachNode(call.asCall(), admission);
    const send = <N extends MessageName>(name: N, m: MessageOf<N>, fromUuid?: string) =>
      call.receive({ nodeUuid: uuid, fromUuid, response: pack(name, m), traceContext: {} });
    return {
      uuid,
      call,
      send,
      announce: (pairs: string[]) =>
        send('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }),
      price: (pair: string, price: number, atMs = scheduler.now()) =>
        send('NodePriceUpdateV1Notify', {
          currencyPair: pair,
          price,
          priceUpdatedAt: timestampFromMs(atMs),
        }),
      /** Pairs the latest desired state starts, with the prices handed over. */
      started: () => {
        for (let i = call.written.length - 1; i >= 0; i--) {
          const u = unpack(call.written[i]!.command);
          if (u.ok && u.value.name === 'NodeStreamModifyStateV1Req')
            return u.value.message.streamStates.filter(
              (s) => s.streamState === StreamState.StreamStart,
            );
        }
        return [];
      },
      commands: (name: MessageName) =>
        call.written.filter((w) => {
          const u = unpack(w.command);
          return u.ok && u.value.name === name;
        }),
    };
  };
  const cli = () => {
    const call: CliCall = new FakeCall();
    core.attachCli(call.asCall());
    return {
      call,
      send: <N extends MessageName>(
        streamId: string,
        name: N,
        m: MessageOf<N>,
        nodeUuids: string[] = [],
      ) =>
        call.receive({
          streamId,
          cliUuid: randomUUID(),
          nodeUuids,
          command: pack(name, m),
          traceContext: {},
        }),
      replies: (streamId: string) =>
        call.written
          .filter((w) => w.streamId === streamId)
          .map((w) => ({ nodeUuid: w.nodeUuid, r: unpack(w.response) }))
          .map(({ nodeUuid, r }) => ({
            nodeUuid,
            name: r.ok ? r.value.name : '?',
            message: r.ok ? r.value.message : undefined,
          })),
    };
  };
  return { core, scheduler, metric, total, node, cli };
}

const streamingPairs = (n: { started(): { currencyPair: string }[] }) =>
  n
    .started()
    .map((s) => s.currencyPair)
    .sort();

/** Every price a V2 (batched) watch on stream `streamId` was sent, with its node. */
const watched = (w: ReturnType<ReturnType<typeof setup>['cli']>, streamId = 'w') =>
  w
    .replies(streamId)
    .filter((r) => r.name === 'ControllerPriceUpdatesV1Notify')
    .flatMap((b) =>
      (b.message as MessageOf<'ControllerPriceUpdatesV1Notify'>).prices.map((p) => ({
        price: p.price,
        nodeUuid: p.nodeUuid,
      })),
    );

describe('prices', () => {
  test('a price not finite and positive, or dated beyond the allowed skew, is refused and counted; no CLI command sees it', async () => {
    const t = setup({ limits: { maxPriceSkewMs: 5000 } });
    const a = t.node();
    a.announce(['USD_HKD']);
    a.price('USD_HKD', 7.8);
    const s = t.scheduler.now();
    a.price('USD_HKD', 7.9, 1e13 * 1000); // seconds = 1e13: no instant a Date can hold
    a.price('USD_HKD', 7.9, s + 3_600_000); // an hour ahead
    a.price('USD_HKD', -1, s + 1);
    a.price('USD_HKD', 0, s + 2);
    a.price('USD_HKD', NaN, s + 3);
    a.send('NodePriceUpdateV1Notify', {
      currencyPair: 'USD_HKD',
      price: 7.9,
      priceUpdatedAt: { seconds: s / 1000, nanos: 2e9 },
    });
    expect(t.core.prices.get('USD_HKD')).toMatchObject({ price: 7.8, updatedAtMs: s });
    expect(await t.metric('currency_controller_prices_refused_total', { reason: 'future' })).toBe(
      1,
    );
    expect(
      await t.metric('currency_controller_prices_refused_total', { reason: 'not_positive' }),
    ).toBe(3);
    expect(
      await t.metric('currency_controller_prices_refused_total', { reason: 'bad_timestamp' }),
    ).toBe(2);
    // A price just inside the skew is taken.
    a.price('USD_HKD', 7.85, s + 4000);
    expect(t.core.prices.get('USD_HKD')?.price).toBe(7.85);
  });

  test('only prices newer than the latest held are stored and reach watchers; the next streamer starts from the newest', async () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    const w = t.cli();
    w.send('w', 'ControllerWatchPricesV2Req', { currencyPairs: [] });
    const s = t.scheduler.now();
    a.price('USD_HKD', 7.8, s);
    a.price('USD_HKD', 7.7, s - 1000); // older
    a.price('USD_HKD', 7.75, s); // as old
    a.price('USD_HKD', 7.81, s + 1);
    t.scheduler.flush();
    const batches = w.replies('w').filter((r) => r.name === 'ControllerPriceUpdatesV1Notify');
    const seen = batches.flatMap((b) =>
      (b.message as MessageOf<'ControllerPriceUpdatesV1Notify'>).prices.map((p) => p.price),
    );
    expect(seen).toEqual([7.8, 7.81]);
    expect(await t.metric('currency_controller_prices_superseded_total')).toBe(2);
    const b = t.node();
    b.announce(['USD_HKD']);
    a.call.peerEnds();
    expect(b.started()).toEqual([
      expect.objectContaining({
        currencyPair: 'USD_HKD',
        latestPrice: 7.81,
        latestPriceUpdatedAt: timestampFromMs(s + 1),
      }),
    ]);
  });
});

describe('a node withdrawing a pair whose upstream failed (a new NodeKnownCurrenciesV1Notify on its live stream)', () => {
  test('the pair moves at once to another capable node: a failover, reassignment reason withdrawn', async () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD', 'A_X']);
    const b = t.node();
    b.announce(['USD_HKD', 'B_X']);
    expect(streamingPairs(a)).toEqual(['A_X', 'USD_HKD']);
    const capable = () => t.metric('currency_controller_pair_capable_nodes', { pair: 'USD_HKD' });
    expect(await capable()).toBe(2);
    a.announce(['A_X']);
    expect(streamingPairs(a)).toEqual(['A_X']);
    expect(streamingPairs(b)).toEqual(['B_X', 'USD_HKD']);
    expect(await capable()).toBe(1);
    expect(await t.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(1);
    const moved = (reason: string) =>
      t.metric('currency_controller_stream_reassignments_total', { reason });
    expect(await moved('withdrawn')).toBe(1);
    expect(await moved('pairs_changed')).toBe(0);
    expect(await t.metric('currency_controller_pairs_unstreamed')).toBe(0);
    // One streamer per pair: nothing to compare, the deviation is 0.
    expect(await t.metric('currency_controller_price_deviation_ratio', { pair: 'USD_HKD' })).toBe(
      0,
    );
  });

  test('with no other capable node the pair stays known with no streamer (pairs_unstreamed, logged); announced again, the node streams it again from the latest price', async () => {
    const { logger, lines } = capturingLogger<{ msg: string; pair?: string; reason?: string }>(
      'info',
      { service: 'currency-controller' },
    );
    const t = setup({ logger });
    const a = t.node();
    a.announce(['USD_HKD', 'A_X']);
    const s = t.scheduler.now();
    a.price('USD_HKD', 7.8, s);
    a.announce(['A_X']);
    expect(t.core.assignment.knownPairs()).toEqual(['A_X', 'USD_HKD']);
    expect(streamingPairs(a)).toEqual(['A_X']);
    expect(await t.metric('currency_controller_pairs_unstreamed')).toBe(1);
    expect(await t.metric('currency_controller_pair_streamers', { pair: 'USD_HKD' })).toBe(0);
    expect(await t.metric('currency_controller_pair_capable_nodes', { pair: 'USD_HKD' })).toBe(0);
    expect(await t.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(0);
    expect(lines).toContainEqual(
      expect.objectContaining({
        pair: 'USD_HKD',
        reason: 'withdrawn',
        msg: expect.stringContaining('the pair is unstreamed'),
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'node changed its pairs', withdrawn: ['USD_HKD'] }),
    );
    t.scheduler.advance(5_000);
    a.announce(['A_X', 'USD_HKD']);
    expect(t.core.assignment.capableCount('USD_HKD')).toBe(1);
    expect(a.started()).toContainEqual(
      expect.objectContaining({
        currencyPair: 'USD_HKD',
        latestPrice: 7.8,
        latestPriceUpdatedAt: timestampFromMs(s),
      }),
    );
    expect(await t.metric('currency_controller_pairs_unstreamed')).toBe(0);
    expect(await t.metric('currency_controller_pair_streamers', { pair: 'USD_HKD' })).toBe(1);
    expect(await t.metric('currency_controller_pair_capable_nodes', { pair: 'USD_HKD' })).toBe(1);
  });

  test('a pair given back a moment after it was withdrawn is watched for progress afresh, not judged by its old price', () => {
    const t = setup({ limits: { staleStreamMs: 30_000 } });
    const a = t.node();
    a.announce(['USD_HKD']);
    const b = t.node();
    b.announce(['B_X']);
    t.scheduler.advance(25_000); // a sends nothing: its upstream is failing
    a.announce([]);
    a.announce(['USD_HKD']);
    b.announce(['B_X', 'USD_HKD']); // another node could take it now
    t.scheduler.advance(10_000);
    expect(streamingPairs(a)).toEqual(['USD_HKD']);
  });

  test('a newer stream of the node announcing another set moves the dropped pairs with reason pairs_changed (no failover)', async () => {
    const t = setup();
    const uuid = randomUUID();
    const first = t.node(uuid);
    first.announce(['USD_HKD', 'A_X']);
    const b = t.node();
    b.announce(['USD_HKD', 'B_X']);
    const second = t.node(uuid);
    second.announce(['A_X']);
    expect(streamingPairs(b)).toEqual(['B_X', 'USD_HKD']);
    expect(
      await t.metric('currency_controller_stream_reassignments_total', { reason: 'pairs_changed' }),
    ).toBe(1);
    expect(
      await t.metric('currency_controller_stream_reassignments_total', { reason: 'withdrawn' }),
    ).toBe(0);
    expect(await t.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(0);
  });
});

describe('one market per pair (CONTROLLER_STREAMS_PER_PAIR 2): a primary streamer and a hot standby', () => {
  /** a streams USD_HKD first (primary), b second (standby); `w` watches USD_HKD. */
  function primaryAndStandby(limits: Partial<ControllerLimits> = {}) {
    const t = setup({ streamsPerPair: 2, limits: { staleStreamMs: 30_000, ...limits } });
    const a = t.node();
    a.announce(['USD_HKD', 'A_X']);
    const b = t.node();
    b.announce(['USD_HKD']);
    expect(t.core.assignment.streamersOf('USD_HKD')).toEqual([a.uuid, b.uuid]);
    const w = t.cli();
    w.send('w', 'ControllerWatchPricesV2Req', { currencyPairs: ['USD_HKD'] });
    return { t, a, b, w };
  }

  test("only the primary's prices are stored, counted and forwarded to watchers; the standby's are not", async () => {
    const { t, a, b, w } = primaryAndStandby();
    const s = t.scheduler.now();
    b.price('USD_HKD', 101, s + 1);
    expect(t.core.prices.get('USD_HKD')).toBeUndefined();
    a.price('USD_HKD', 100, s);
    b.price('USD_HKD', 101.5, s + 2);
    a.price('USD_HKD', 100.5, s + 3);
    t.scheduler.flush();
    expect(watched(w)).toEqual([
      { price: 100, nodeUuid: a.uuid },
      { price: 100.5, nodeUuid: a.uuid },
    ]);
    expect(t.core.prices.get('USD_HKD')).toMatchObject({ price: 100.5, nodeUuid: a.uuid });
    expect(await t.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' })).toBe(2);
    expect(await t.metric('currency_controller_prices_superseded_total')).toBe(0);
    // `controller prices` shows the primary's; `controller streams` lists the primary first.
    const c = t.cli();
    c.send('p', 'ControllerPricesV1Req', {});
    c.send('s', 'ControllerStreamsV1Req', {});
    const prices = c.replies('p')[0]!.message as MessageOf<'ControllerPricesV1Reply'>;
    expect(prices.prices).toEqual([expect.objectContaining({ price: 100.5, nodeUuid: a.uuid })]);
    const streams = c.replies('s')[0]!.message as MessageOf<'ControllerStreamsV1Reply'>;
    expect(streams.pairs).toEqual([
      expect.objectContaining({ currencyPair: 'A_X' }),
      expect.objectContaining({ currencyPair: 'USD_HKD', nodeUuids: [a.uuid, b.uuid] }),
    ]);
  });

  test("a standby's prices prove it alive: it keeps the pair while the primary streams", () => {
    const { t, a, b } = primaryAndStandby();
    for (let i = 0; i < 6; i++) {
      t.scheduler.advance(10_000);
      a.price('USD_HKD', 100 + i);
      b.price('USD_HKD', 101 + i);
    }
    expect(t.core.assignment.streamersOf('USD_HKD')).toEqual([a.uuid, b.uuid]);
  });

  test.each(['leaves', 'withdraws the pair', 'goes stale'])(
    'when the primary %s, the standby is primary at once and its latest price is the next one watchers see',
    (how) => {
      const { t, a, b, w } = primaryAndStandby();
      a.price('USD_HKD', 100);
      t.scheduler.advance(5_000);
      b.price('USD_HKD', 101);
      t.scheduler.flush();
      expect(watched(w)).toEqual([{ price: 100, nodeUuid: a.uuid }]);
      if (how === 'leaves') a.call.peerEnds();
      else if (how === 'withdraws the pair') a.announce(['A_X']);
      // a's last price is 30 s old, b's 25 s: a is quiet, b is not.
      else t.scheduler.advance(25_000);
      expect(t.core.assignment.primaryOf('USD_HKD')).toBe(b.uuid);
      t.scheduler.flush();
      expect(watched(w)).toEqual([
        { price: 100, nodeUuid: a.uuid },
        { price: 101, nodeUuid: b.uuid },
      ]);
      expect(t.core.prices.get('USD_HKD')).toMatchObject({ price: 101, nodeUuid: b.uuid });
      // From now on b's prices are the pair's; a's, if it still streams, are a standby's.
      t.scheduler.advance(1_000);
      b.price('USD_HKD', 101.5);
      if (how === 'goes stale') a.price('USD_HKD', 99);
      t.scheduler.flush();
      expect(watched(w).slice(2)).toEqual([{ price: 101.5, nodeUuid: b.uuid }]);
    },
  );

  test('a standby whose latest price is not newer than the latest held is promoted without a price', () => {
    const { t, a, b, w } = primaryAndStandby();
    const s = t.scheduler.now();
    b.price('USD_HKD', 101, s);
    a.price('USD_HKD', 100, s + 1);
    a.call.peerEnds();
    t.scheduler.flush();
    expect(t.core.assignment.primaryOf('USD_HKD')).toBe(b.uuid);
    expect(watched(w)).toEqual([{ price: 100, nodeUuid: a.uuid }]);
  });

  test('currency_controller_price_deviation_ratio is the gap between the streamers’ latest prices, over recent ones only', async () => {
    const { t, a, b } = primaryAndStandby({ forgetPairAfterMs: 60_000 });
    const deviation = () =>
      t.metric('currency_controller_price_deviation_ratio', { pair: 'USD_HKD' });
    a.price('USD_HKD', 100);
    expect(await deviation()).toBe(0); // one streamer so far
    b.price('USD_HKD', 101);
    expect(await deviation()).toBeCloseTo(0.01, 12);
    b.price('USD_HKD', 99);
    expect(await deviation()).toBeCloseTo(1 / 99, 12);
    // b's price ages past CONTROLLER_STALE_STREAM_MS while a keeps sending: one left.
    for (let i = 0; i < 4; i++) {
      t.scheduler.advance(10_000);
      a.price('USD_HKD', 100);
    }
    expect(await deviation()).toBe(0);
    // The pair forgotten, its series goes.
    a.call.peerEnds();
    b.call.peerEnds();
    t.scheduler.advance(62_000);
    expect(t.core.assignment.isKnown('USD_HKD')).toBe(false);
    expect(await deviation()).toBeUndefined();
  });
});

/** Node admissions whose refused claims are recorded (uuid and why). */
function recordingAdmission() {
  const refused: { uuid: string; because: string }[] = [];
  const admission = (bound: boolean, mayClaim = (_u: string) => true): NodeAdmission => ({
    bound,
    mayClaim,
    refuseClaim: (uuid, because) => void refused.push({ uuid, because }),
  });
  return { refused, admission };
}

describe('identity', () => {
  test('a second stream claiming a connected UUID wins; the old one is ended with ABORTED and the replaced trailer, and counted', async () => {
    const t = setup();
    const uuid = randomUUID();
    const first = t.node(uuid);
    first.announce(['USD_HKD']);
    const second = t.node(uuid);
    second.announce(['USD_HKD']);
    expect(first.call.status?.code).toBe(grpc.status.ABORTED);
    expect(first.call.status?.metadata?.get(CLOSE_REASON_METADATA_KEY)).toEqual(['replaced']);
    expect(second.call.status).toBeUndefined();
    expect(streamingPairs(second)).toEqual(['USD_HKD']);
    expect(t.core.connectedNodes()).toHaveLength(1);
    expect(
      await t.metric('currency_controller_node_disconnects_total', { reason: 'replaced' }),
    ).toBe(1);
    // The replaced stream's own end, when it comes, changes nothing.
    first.call.connectionDrops();
    expect(t.core.connectedNodes()).toHaveLength(1);
    expect(await t.metric('currency_controller_node_disconnects_total', { reason: 'lost' })).toBe(
      0,
    );
  });

  test('a claim the credential does not allow is refused with PERMISSION_DENIED and never displaces the holder', () => {
    const t = setup();
    const victim = t.node();
    victim.announce(['USD_HKD']);
    const { refused, admission } = recordingAdmission();
    const evil = t.node(
      victim.uuid,
      admission(true, (u) => u === 'a'),
    );
    evil.announce(['USD_HKD']);
    expect(evil.call.status?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused.map((r) => r.uuid)).toEqual([victim.uuid]);
    expect(victim.call.status).toBeUndefined();
    expect(t.core.connectedNodes().map((n) => n.uuid)).toEqual([victim.uuid]);
  });

  test('a stream whose credential is bound to its UUID is displaced only by a credential bound to it too', () => {
    const t = setup();
    const { refused, admission } = recordingAdmission();
    const victim = t.node(undefined, admission(true));
    victim.announce(['USD_HKD']);
    const unbound = t.node(victim.uuid, admission(false));
    unbound.announce(['USD_HKD']);
    expect(unbound.call.status?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused.map((r) => r.because)).toEqual([
      'a stream whose credential is bound to this UUID holds it',
    ]);
    expect(victim.call.status).toBeUndefined();
    // The node itself, restarted with its bound credential, takes its UUID back as always.
    const restarted = t.node(victim.uuid, admission(true));
    restarted.announce(['USD_HKD']);
    expect(victim.call.status?.code).toBe(grpc.status.ABORTED);
    expect(restarted.call.status).toBeUndefined();
    expect(t.core.connectedNodes()).toHaveLength(1);
  });

  test('an unbound stream that sent its first frame before the bound holder registered is refused at registration', () => {
    const t = setup();
    const { refused, admission } = recordingAdmission();
    const early = t.node(undefined, admission(false));
    const victim = t.node(early.uuid, admission(true));
    early.price('USD_HKD', 7.8); // a first frame, before its known currencies
    victim.announce(['USD_HKD']);
    early.announce(['USD_HKD']);
    expect(early.call.status?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(refused.map((r) => r.uuid)).toEqual([early.uuid]);
    expect(victim.call.status).toBeUndefined();
  });
});

describe('bounds', () => {
  test('pairs beyond CONTROLLER_MAX_KNOWN_PAIRS are refused and counted; the node keeps the rest', async () => {
    const t = setup({ limits: { maxKnownPairs: 3 } });
    const a = t.node();
    a.announce(['A_B', 'C_D']);
    const b = t.node();
    b.announce(['C_D', 'E_F', 'G_H', 'I_J']);
    expect(t.core.assignment.knownPairs()).toEqual(['A_B', 'C_D', 'E_F']);
    expect(await t.metric('currency_controller_pairs_refused_total')).toBe(2);
    expect(t.core.assignment.knownPairsOf(b.uuid)).toEqual(['C_D', 'E_F']);
  });

  test('a pair no node can stream is forgotten after CONTROLLER_FORGET_PAIR_AFTER_MS, with its series', async () => {
    const t = setup({ limits: { forgetPairAfterMs: 60_000 } });
    const a = t.node();
    a.announce(['USD_HKD', 'BTC_USD']);
    a.price('USD_HKD', 7.8);
    const b = t.node();
    b.announce(['BTC_USD']);
    a.call.peerEnds();
    t.scheduler.advance(30_000);
    expect(t.core.assignment.knownPairs()).toEqual(['BTC_USD', 'USD_HKD']);
    expect(await t.metric('currency_controller_pair_capable_nodes', { pair: 'USD_HKD' })).toBe(0);
    t.scheduler.advance(32_000);
    expect(t.core.assignment.knownPairs()).toEqual(['BTC_USD']);
    expect(t.core.prices.get('USD_HKD')).toBeUndefined();
    expect(
      await t.metric('currency_controller_pair_streamers', { pair: 'USD_HKD' }),
    ).toBeUndefined();
    expect(
      await t.metric('currency_controller_failovers_total', { pair: 'USD_HKD' }),
    ).toBeUndefined();
    expect(
      await t.metric('currency_controller_pair_capable_nodes', { pair: 'USD_HKD' }),
    ).toBeUndefined();
    expect(await t.metric('currency_controller_pair_capable_nodes', { pair: 'BTC_USD' })).toBe(1);
    expect(await t.metric('currency_controller_pairs_forgotten_total')).toBe(1);
    expect(await t.metric('currency_controller_pairs_known')).toBe(1);
  });

  test('a node stream that does not register within CONTROLLER_REGISTER_TIMEOUT_MS is closed; streams count against CONTROLLER_MAX_NODES', async () => {
    const t = setup({ limits: { registerTimeoutMs: 10_000, maxNodes: 2 } });
    const quiet = t.node();
    const other = t.node();
    const third = t.node();
    expect(third.call.status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    other.announce(['USD_HKD']);
    t.scheduler.advance(10_000);
    expect(quiet.call.status?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(other.call.status).toBeUndefined();
    expect(
      await t.metric('currency_controller_rejected_total', { reason: 'register_timeout' }),
    ).toBe(1);
    expect(await t.metric('currency_controller_rejected_total', { reason: 'max_nodes' })).toBe(1);
    expect(t.core.openStreamCount().nodes).toBe(1);
  });
});

describe('progress', () => {
  test('a streamer that sends no price for CONTROLLER_STALE_STREAM_MS loses the pair to another capable node (failover reason stale)', async () => {
    const t = setup({ limits: { staleStreamMs: 30_000 } });
    const a = t.node();
    a.announce(['USD_HKD']);
    const b = t.node();
    b.announce(['USD_HKD']);
    const [streamer, spare] = streamingPairs(a).length === 1 ? [a, b] : [b, a];
    for (let i = 0; i < 5; i++) {
      t.scheduler.advance(10_000);
      streamer.price('USD_HKD', 7.8 + i / 100);
    }
    expect(streamingPairs(streamer)).toEqual(['USD_HKD']); // it kept sending: it keeps the pair
    t.scheduler.advance(31_000);
    expect(streamingPairs(streamer)).toEqual([]);
    expect(streamingPairs(spare)).toEqual(['USD_HKD']);
    expect(await t.metric('currency_controller_failovers_total', { pair: 'USD_HKD' })).toBe(1);
    expect(await t.metric('currency_controller_stale_streams_total', { pair: 'USD_HKD' })).toBe(1);
    expect(
      await t.metric('currency_controller_stream_reassignments_total', { reason: 'stale' }),
    ).toBe(1);
  });

  test('a price not newer than the latest held still proves its streamer alive: it keeps the pair', async () => {
    const t = setup({ limits: { staleStreamMs: 30_000 } });
    const a = t.node();
    a.announce(['USD_HKD']);
    const b = t.node();
    b.announce(['USD_HKD']);
    const [streamer, spare] = streamingPairs(a).length === 1 ? [a, b] : [b, a];
    const s = t.scheduler.now();
    streamer.price('USD_HKD', 7.8, s);
    for (let i = 0; i < 6; i++) {
      t.scheduler.advance(10_000);
      streamer.price('USD_HKD', 7.8, s); // the upstream repeats its last quote
    }
    expect(streamingPairs(streamer)).toEqual(['USD_HKD']);
    expect(streamingPairs(spare)).toEqual([]);
    expect(await t.metric('currency_controller_prices_superseded_total')).toBe(6);
    expect(await t.metric('currency_controller_stale_streams_total', { pair: 'USD_HKD' })).toBe(0);
  });

  test('a quiet streamer with no other capable node keeps its pair', () => {
    const t = setup({ limits: { staleStreamMs: 30_000 } });
    const a = t.node();
    a.announce(['USD_HKD']);
    t.scheduler.advance(120_000);
    expect(streamingPairs(a)).toEqual(['USD_HKD']);
  });
});

describe('node commands', () => {
  test('a command to a node that goes is answered at once with CliErrorV1Notify naming the node', async () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    const c = t.cli();
    c.send('s1', 'NodeStatusV1Req', {}, [a.uuid]);
    expect(a.commands('NodeStatusV1Req')).toHaveLength(1);
    a.call.connectionDrops();
    const replies = c.replies('s1');
    expect(replies.map((r) => r.name)).toEqual(['CliResponseCountV1Notify', 'CliErrorV1Notify']);
    expect(replies[1]!.nodeUuid).toBe(a.uuid);
    expect((replies[1]!.message as MessageOf<'CliErrorV1Notify'>).message).toContain(
      `node ${a.uuid}`,
    );
    expect(t.core.openStreamCount().pending).toBe(0);
    expect(
      await t.metric('currency_controller_commands_total', {
        command: 'NodeStatusV1Req',
        outcome: 'error',
      }),
    ).toBe(1);
  });

  test('a reply without from_uuid (a foreign node) answers the oldest command waiting for that node', () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    const c = t.cli();
    c.send('s1', 'NodeStatusV1Req', {}, [a.uuid]);
    a.send('NodeStatusV1Reply', {
      appVersion: 'go',
      connectedControllerServer: '',
      streamStates: [],
    });
    expect(c.replies('s1').map((r) => r.name)).toEqual([
      'CliResponseCountV1Notify',
      'NodeStatusV1Reply',
    ]);
    expect(t.core.openStreamCount().pending).toBe(0);
  });

  test.each([
    ['unset', undefined],
    ['empty', ''],
  ])(
    'a modify reply with from_uuid %s (the original node) is taken quietly: no UnknownCommandV1Notify, not counted, not routed to a waiting CLI',
    async (_what, fromUuid) => {
      const t = setup();
      const a = t.node();
      a.announce(['USD_HKD']);
      const c = t.cli();
      c.send('s1', 'NodeStatusV1Req', {}, [a.uuid]);
      const before = a.call.written.length;
      a.send('NodeStreamModifyStateV1Reply', {}, fromUuid);
      expect(a.call.written.slice(before)).toEqual([]);
      expect(await t.metric('currency_controller_unknown_commands_total', { peer: 'node' })).toBe(
        0,
      );
      // The status command still waits for the node's status reply.
      expect(c.replies('s1').map((r) => r.name)).toEqual(['CliResponseCountV1Notify']);
      expect(t.core.openStreamCount().pending).toBe(1);
    },
  );

  test('the controller gives its own commands a from_uuid for a peer to echo', () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    const modify = a.commands('NodeStreamModifyStateV1Req');
    expect(modify.length).toBeGreaterThan(0);
    expect(modify.every((m) => typeof m.fromUuid === 'string' && m.fromUuid.length === 36)).toBe(
      true,
    );
  });
});

describe('disconnect reasons', () => {
  test('a clean end counts closed, a dropped connection lost, and log and metric use the same word', async () => {
    const t = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    const b = t.node();
    b.announce(['USD_HKD']);
    a.call.peerEnds();
    b.call.connectionDrops();
    expect(await t.metric('currency_controller_node_disconnects_total', { reason: 'closed' })).toBe(
      1,
    );
    expect(await t.metric('currency_controller_node_disconnects_total', { reason: 'lost' })).toBe(
      1,
    );
    expect(a.call.status?.code).toBe(grpc.status.OK);
  });

  test('a node that registers holds no register timer any more (10,000 of them would for 10 s)', () => {
    const t: ReturnType<typeof setup> & { scheduler: FakeScheduler } = setup();
    const base = t.scheduler.pending(); // the upkeep sweep
    const a = t.node();
    expect(t.scheduler.pending()).toBe(base + 1);
    a.announce(['USD_HKD']);
    expect(t.scheduler.pending()).toBe(base);
  });

  test('shutdown ends every stream and leaves no timer behind', () => {
    const t: ReturnType<typeof setup> & { scheduler: FakeScheduler } = setup();
    const a = t.node();
    a.announce(['USD_HKD']);
    t.node(); // not registered: its register timer must go too
    t.core.closeAll();
    expect(t.scheduler.pending()).toBe(0);
    expect(a.call.status?.code).toBe(grpc.status.OK);
  });
});

describe('ending every node stream at once (a graceful stop, or leadership lost)', () => {
  const PAIRS = ['EUR_USD', 'GBP_USD', 'USD_HKD', 'USD_JPY'];
  const endings: [string, (core: ControllerCore) => void][] = [
    ['a graceful stop', (core) => core.closeNodes()],
    ['leadership lost', (core) => core.setLeading(false, 'controller-b')],
  ];

  test.each(endings)(
    '%s moves no pair among the nodes that are all going: no failover or reassignment is counted or logged, and no node is sent a new desired state',
    async (_, end) => {
      const { logger, lines } = capturingLogger<{ msg: string; reason?: string }>('info', {
        service: 'currency-controller',
      });
      const t = setup({ streamsPerPair: 2, logger });
      const nodes = [t.node(), t.node(), t.node(), t.node(), t.node()];
      for (const n of nodes) n.announce(PAIRS);
      const failovers = await t.total('currency_controller_failovers_total');
      const reassignments = await t.total('currency_controller_stream_reassignments_total');
      const written = nodes.map((n) => n.call.written.length);
      lines.length = 0;

      end(t.core);

      for (const n of nodes) expect(n.call.status).toBeDefined();
      expect(nodes.map((n) => n.call.written.length)).toEqual(written);
      expect(await t.total('currency_controller_failovers_total')).toBe(failovers);
      expect(await t.total('currency_controller_stream_reassignments_total')).toBe(reassignments);
      expect(
        lines
          .filter((l) => /pair (lost|failed over)|promoted|reassign/.test(l.msg))
          .map((l) => l.msg),
      ).toEqual([]);
      // Each node is still told and counted, once, with the controller's reason.
      expect(
        await t.metric('currency_controller_node_disconnects_total', { reason: 'shutdown' }),
      ).toBe(nodes.length);
      expect(lines.filter((l) => l.msg === 'node disconnected')).toHaveLength(nodes.length);
      // What the controller holds then: no node, every pair known and none streamed.
      expect(await t.metric('currency_controller_connected_nodes')).toBe(0);
      expect(await t.metric('currency_controller_pairs_known')).toBe(PAIRS.length);
      expect(await t.metric('currency_controller_pairs_streamed')).toBe(0);
      expect(await t.metric('currency_controller_pairs_unstreamed')).toBe(PAIRS.length);
      for (const pair of PAIRS)
        expect([pair, await t.metric('currency_controller_pair_streamers', { pair })]).toEqual([
          pair,
          0,
        ]);
    },
  );

  test('leading again, the controller assigns afresh: every pair streamed again, from the latest price held', async () => {
    const t = setup({ streamsPerPair: 2 });
    const a = t.node();
    const b = t.node();
    a.announce(['USD_HKD']);
    b.announce(['USD_HKD']);
    a.price('USD_HKD', 7.8); // a is the primary: assigned first
    t.core.setLeading(false, 'controller-b');
    t.core.setLeading(true, 'controller-a');
    const c = t.node();
    const d = t.node();
    c.announce(['USD_HKD', 'EUR_USD']);
    d.announce(['USD_HKD']);
    expect(c.started().find((s) => s.currencyPair === 'USD_HKD')?.latestPrice).toBe(7.8);
    expect(d.started().map((s) => s.currencyPair)).toEqual(['USD_HKD']);
    expect(await t.metric('currency_controller_pair_streamers', { pair: 'USD_HKD' })).toBe(2);
    expect(await t.metric('currency_controller_pairs_streamed')).toBe(2);
    expect(await t.metric('currency_controller_connected_nodes')).toBe(2);
  });
});
