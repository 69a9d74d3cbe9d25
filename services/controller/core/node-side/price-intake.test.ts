/**
 * PriceIntake (price-intake.ts) with the real assignment, price store and registry, and
 * recording fakes for the fanout, the observer and upkeep: which updates are taken,
 * stored, forwarded, counted, and which only prove their streamer alive.
 */
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { MessageOf } from '../../../shared/any';
import { seededRandom } from '../../../shared/scheduler';
import { timestampFromMs } from '../../../shared/time';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { Assignment } from './assignment';
import { loadControllerConfig } from '../../config';
import type { WatchFanout } from '../cli-side/fanout';
import { ANY_UUID } from '../../identity';
import type { PriceRefusal } from '../intake';
import type { Observer } from '../observer';
import type { PairSlot } from './pair-slots';
import { PriceIntake } from './price-intake';
import { PriceStore } from './prices';
import { type NodeLink, NodeRegistry, type NodeSession } from './registry';
import type { Upkeep } from './upkeep';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const SKEW_MS = 2000;

type Update = MessageOf<'NodePriceUpdateV1Notify'>;

function setup(streamsPerPair = 1) {
  const scheduler = fakeScheduler();
  const assignment = new Assignment(streamsPerPair, seededRandom(1));
  const prices = new PriceStore(assignment.slots);
  const registry = new NodeRegistry(100);
  const delivered: { node: string; pair: string; price: number; at: number }[] = [];
  const accepted: string[] = [];
  let superseded = 0;
  const refused: { node?: string; reasons: PriceRefusal[]; total: number }[] = [];
  const marks: { node: string; pair: string; at: number | undefined }[] = [];
  const fanout = {
    deliver: (node: string, pair: string, price: number, at: number) =>
      delivered.push({ node, pair, price, at }),
  } as unknown as WatchFanout;
  const observer = {
    pricesAccepted: (slot: PairSlot) => accepted.push(slot.pair),
    priceSuperseded: () => superseded++,
    pricesRefused: (
      n: NodeSession,
      r: { reason: PriceRefusal; problem: string }[],
      total: number,
    ) => refused.push({ node: n.uuid, reasons: r.map((x) => x.reason), total }),
  } as unknown as Observer;
  const upkeep = {
    markIn: (slot: PairSlot, node: string, at: number) => marks.push({ node, pair: slot.pair, at }),
  } as unknown as Upkeep;
  const intake = new PriceIntake({
    scheduler,
    limits: { ...loadControllerConfig({}).limits, maxPriceSkewMs: SKEW_MS },
    assignment,
    prices,
    registry,
    fanout,
    observer,
    upkeep,
  });
  /** A registered node stream holding `uuid`, whose node announced `pairs`. */
  const node = (uuid: string, pairs: string[]): NodeSession => {
    const s: NodeSession = {
      link: {} as NodeLink,
      peer: 'ipv4:127.0.0.1:40000',
      name: '',
      connectedAtMs: scheduler.now(),
      admission: ANY_UUID,
      uuid,
      registered: false,
    };
    registry.add(s);
    registry.register(s);
    assignment.addNode(uuid, pairs);
    return s;
  };
  const update = (pair: string, price: number, atMs?: number): Update => ({
    currencyPair: pair,
    price,
    priceUpdatedAt: atMs === undefined ? undefined : timestampFromMs(atMs),
  });
  return {
    scheduler,
    assignment,
    prices,
    registry,
    intake,
    node,
    update,
    delivered,
    accepted,
    refused,
    marks,
    superseded: () => superseded,
  };
}

describe("a primary streamer's prices", () => {
  test('a newer price is stored, counted and sent to the watchers with its node and time', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    const at = t.scheduler.now() - 100;
    t.intake.take(a, [t.update('BTC_USD', 65000, at)], {});
    expect(t.prices.get('BTC_USD')).toEqual({
      pair: 'BTC_USD',
      price: 65000,
      updatedAtMs: at,
      nodeUuid: A,
    });
    expect(t.accepted).toEqual(['BTC_USD']);
    expect(t.delivered).toEqual([{ node: A, pair: 'BTC_USD', price: 65000, at }]);
  });

  test('an update without a timestamp is dated now', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    t.intake.take(a, [t.update('BTC_USD', 1)], {});
    expect(t.prices.get('BTC_USD')?.updatedAtMs).toBe(t.scheduler.now());
  });

  test('a price not newer than the one held is neither stored nor forwarded, but counted as superseded', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    const at = t.scheduler.now();
    t.intake.take(a, [t.update('BTC_USD', 10, at)], {});
    t.intake.take(a, [t.update('BTC_USD', 11, at)], {}); // equally old
    t.intake.take(a, [t.update('BTC_USD', 12, at - 1)], {}); // older
    expect(t.prices.get('BTC_USD')?.price).toBe(10);
    expect(t.delivered.map((d) => d.price)).toEqual([10]);
    expect(t.superseded()).toBe(2);
  });

  test('every valid update proves its streamer alive, stored or not', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    const at = t.scheduler.now();
    t.intake.take(a, [t.update('BTC_USD', 10, at)], {});
    t.scheduler.advance(500);
    t.intake.take(a, [t.update('BTC_USD', 9, at)], {}); // superseded
    expect(t.marks).toEqual([
      { node: A, pair: 'BTC_USD', at },
      { node: A, pair: 'BTC_USD', at: at + 500 },
    ]);
  });

  test('with one streamer per pair, no per-streamer prices are kept (every streamer is primary)', () => {
    const t = setup(1);
    const a = t.node(A, ['BTC_USD']);
    t.intake.take(a, [t.update('BTC_USD', 10)], {});
    expect(t.prices.seenFrom('BTC_USD', A)).toBeUndefined();
  });
});

describe('updates that are not taken', () => {
  test("a stream that no longer holds its node's UUID (replaced) has its updates ignored entirely", () => {
    const t = setup();
    const old = t.node(A, ['BTC_USD']);
    const replacement: NodeSession = { ...old, registered: false };
    t.registry.add(replacement);
    t.registry.register(replacement);
    t.intake.take(old, [t.update('BTC_USD', 10), t.update('BTC_USD', -1)], {});
    expect(t.prices.get('BTC_USD')).toBeUndefined();
    expect(t.marks).toEqual([]);
    expect(t.refused).toEqual([]);
    t.intake.take(replacement, [t.update('BTC_USD', 10)], {});
    expect(t.prices.get('BTC_USD')?.price).toBe(10);
  });

  test('an update for a pair its node does not stream (in flight when the pair moved) is ignored, even an invalid one', () => {
    const t = setup();
    t.node(A, ['ETH_USD']);
    const b = t.node(B, ['ETH_USD']); // capable, but A streams the pair
    expect(t.assignment.isStreaming(B, 'ETH_USD')).toBe(false);
    t.intake.take(b, [t.update('ETH_USD', 10), t.update('ETH_USD', 0)], {});
    expect(t.prices.get('ETH_USD')).toBeUndefined();
    expect(t.marks).toEqual([]);
    expect(t.refused).toEqual([]);
    expect(t.superseded()).toBe(0);
  });

  test('refused updates are counted with their reasons once per frame, and the rest of the frame still counts', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD', 'EUR_USD']);
    const now = t.scheduler.now();
    t.intake.take(
      a,
      [
        t.update('BTC_USD', 0),
        t.update('BTC_USD', Number.NaN),
        { currencyPair: 'BTC_USD', price: 1, priceUpdatedAt: { seconds: 1, nanos: 1e9 } },
        t.update('BTC_USD', 1, now + SKEW_MS + 1),
        t.update('EUR_USD', 1.08, now + SKEW_MS), // exactly the allowed skew: taken
      ],
      {},
    );
    expect(t.refused).toEqual([
      { node: A, reasons: ['not_positive', 'not_positive', 'bad_timestamp', 'future'], total: 5 },
    ]);
    expect(t.prices.get('BTC_USD')).toBeUndefined();
    expect(t.prices.get('EUR_USD')?.price).toBe(1.08);
    // A refused update proves nothing about its streamer.
    expect(t.marks.map((m) => m.pair)).toEqual(['EUR_USD']);
  });

  test('a frame with nothing refused reports no refusal', () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    t.intake.take(a, [t.update('BTC_USD', 1), t.update('BTC_USD', 2)], {});
    expect(t.refused).toEqual([]);
  });
});

describe('hot standbys (two or more streamers per pair)', () => {
  function twoStreamers() {
    const t = setup(2);
    const a = t.node(A, ['BTC_USD']);
    const b = t.node(B, ['BTC_USD']);
    expect(t.assignment.primaryOf('BTC_USD')).toBe(A);
    expect(t.assignment.isStreaming(B, 'BTC_USD')).toBe(true);
    return { ...t, a, b };
  }

  test("a standby's price is kept as its latest and proves it alive, but is not stored or forwarded", () => {
    const t = twoStreamers();
    const at = t.scheduler.now();
    t.intake.take(t.b, [t.update('BTC_USD', 99, at)], {});
    expect(t.prices.seenFrom('BTC_USD', B)).toMatchObject({ price: 99, updatedAtMs: at });
    expect(t.marks).toEqual([{ node: B, pair: 'BTC_USD', at }]);
    expect(t.prices.get('BTC_USD')).toBeUndefined();
    expect(t.delivered).toEqual([]);
    expect(t.accepted).toEqual([]);
    expect(t.superseded()).toBe(0);
  });

  test("the primary's price is kept as its latest too, and stored and forwarded (one market per pair)", () => {
    const t = twoStreamers();
    t.intake.take(t.a, [t.update('BTC_USD', 100)], {});
    t.intake.take(t.b, [t.update('BTC_USD', 101)], {});
    expect(t.prices.seenFrom('BTC_USD', A)?.price).toBe(100);
    expect(t.prices.get('BTC_USD')).toMatchObject({ price: 100, nodeUuid: A });
    expect(t.delivered.map((d) => d.node)).toEqual([A]);
  });

  test('a promoted standby has its latest price offered at once, so the handover has no gap', () => {
    const t = twoStreamers();
    const now = t.scheduler.now();
    t.intake.take(t.a, [t.update('BTC_USD', 100, now - 10)], {});
    t.intake.take(t.b, [t.update('BTC_USD', 101, now)], {});
    t.intake.promoted('BTC_USD', B);
    expect(t.prices.get('BTC_USD')).toMatchObject({ price: 101, nodeUuid: B, updatedAtMs: now });
    expect(t.delivered.map((d) => [d.node, d.price])).toEqual([
      [A, 100],
      [B, 101],
    ]);
    expect(t.accepted).toEqual(['BTC_USD', 'BTC_USD']);
  });

  test("a promoted standby's price older than the one held is not offered", () => {
    const t = twoStreamers();
    const now = t.scheduler.now();
    t.intake.take(t.b, [t.update('BTC_USD', 101, now - 10)], {});
    t.intake.take(t.a, [t.update('BTC_USD', 100, now)], {});
    t.intake.promoted('BTC_USD', B);
    expect(t.prices.get('BTC_USD')).toMatchObject({ price: 100, nodeUuid: A });
    expect(t.delivered).toHaveLength(1);
  });

  test('a promoted streamer that sent nothing yet offers nothing', () => {
    const t = twoStreamers();
    t.intake.promoted('BTC_USD', B);
    expect(t.prices.get('BTC_USD')).toBeUndefined();
    expect(t.delivered).toEqual([]);
  });
});

describe('prices followed from the leader (warm standby)', () => {
  test('a valid, newer price is kept, without being forwarded or counted', () => {
    const t = setup();
    const at = t.scheduler.now();
    t.intake.takeFollowed({ pair: 'BTC_USD', price: 5, updatedAtMs: at, nodeUuid: A });
    expect(t.prices.get('BTC_USD')).toEqual({
      pair: 'BTC_USD',
      price: 5,
      updatedAtMs: at,
      nodeUuid: A,
    });
    expect(t.delivered).toEqual([]);
    expect(t.accepted).toEqual([]);
  });

  test('an invalid or older followed price is not kept', () => {
    const t = setup();
    const now = t.scheduler.now();
    t.intake.takeFollowed({ pair: 'BTC_USD', price: 5, updatedAtMs: now, nodeUuid: A });
    t.intake.takeFollowed({ pair: 'BTC_USD', price: 6, updatedAtMs: now - 1, nodeUuid: A });
    t.intake.takeFollowed({ pair: 'BTC_USD', price: 0, updatedAtMs: now + 1, nodeUuid: A });
    t.intake.takeFollowed({
      pair: 'BTC_USD',
      price: 7,
      updatedAtMs: now + SKEW_MS + 1,
      nodeUuid: A,
    });
    expect(t.prices.get('BTC_USD')?.price).toBe(5);
    expect(t.refused).toEqual([]);
  });
});

describe('a sampled update (a frame carrying a trace context)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(async () => {
    trace.disable();
    propagation.disable();
    await provider.shutdown();
  });

  test("is taken exactly as an untraced one, under a consumer span that continues the node's trace", () => {
    const t = setup();
    const a = t.node(A, ['BTC_USD']);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    t.intake.take(a, [t.update('BTC_USD', 3), t.update('BTC_USD', -3)], {
      traceparent: `00-${traceId}-${parentId}-01`,
    });
    expect(t.prices.get('BTC_USD')?.price).toBe(3);
    expect(t.refused).toEqual([{ node: A, reasons: ['not_positive'], total: 2 }]);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual(['controller price updates']);
    expect(spans[0]!.spanContext().traceId).toBe(traceId);
    expect(spans[0]!.parentSpanContext?.spanId).toBe(parentId);
    expect(spans[0]!.attributes).toMatchObject({
      'rpc.method': 'NodePriceUpdatesV1Notify',
      'currency.updates': 2,
      'currency.node_uuid': A,
    });
  });
});
