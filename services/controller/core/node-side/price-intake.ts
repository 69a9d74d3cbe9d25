/**
 * Price intake: every update a node sends is checked (intake.checkPrice), taken only from
 * a node that streams its pair, and proves that streamer alive (even when it is not newer
 * than the latest held). One market per pair: only the pair's primary streamer's updates
 * are stored, if newer than the latest held, and sent to the watchers; a hot standby's
 * (CONTROLLER_STREAMS_PER_PAIR of 2 or more) are only kept as its latest price, for the
 * deviation gauge and for its promotion (`promoted`). A sampled update carries the node's
 * span context, continued here.
 */
import { NODE_SERVICE, PROGRAMS } from '../../../shared/protocol';
import type { MessageOf } from '../../../shared/any';
import type { Scheduler } from '../../../shared/scheduler';
import { timestampFromMs } from '../../../shared/time';
import { SpanKind, rpcAttributes, runIn, startCommandSpan } from '../../../shared/tracing';
import type { Assignment } from './assignment';
import type { ControllerLimits } from '../../config';
import type { WatchFanout } from '../cli-side/fanout';
import { type PriceRefusal, checkPrice } from '../intake';
import type { Observer } from '../observer';
import type { PriceStore } from './prices';
import type { NodeRegistry, NodeSession } from './registry';
import type { Upkeep } from './upkeep';

const TRACER = PROGRAMS.controller;

type PriceUpdate = MessageOf<'NodePriceUpdateV1Notify'>;

export interface PriceIntakeDeps {
  scheduler: Scheduler;
  limits: ControllerLimits;
  assignment: Assignment;
  /** Kept in the assignment's pair slots (`new PriceStore(assignment.slots)`). */
  prices: PriceStore;
  registry: NodeRegistry;
  fanout: WatchFanout;
  observer: Observer;
  upkeep: Upkeep;
}

export class PriceIntake {
  /** Whether pairs may have standbys (CONTROLLER_STREAMS_PER_PAIR >= 2); else every streamer is primary. */
  private readonly standbys: boolean;

  constructor(private readonly deps: PriceIntakeDeps) {
    this.standbys = deps.assignment.streamsPerPair > 1;
  }

  /**
   * `uuid` is the primary streamer of `pair` now: the latest price it sent as a standby
   * is offered at once (stored and sent to watchers if newer than the latest held), so the
   * handover has no gap.
   */
  promoted(pair: string, uuid: string): void {
    const d = this.deps;
    const p = d.prices.seenFrom(pair, uuid);
    if (!p || !d.prices.offer(p)) return;
    d.observer.pricesAccepted(d.assignment.slots.of(pair));
    d.fanout.deliver(uuid, pair, p.price, p.updatedAtMs);
  }

  /** One frame's updates (one, or a NodePriceUpdatesV1Notify batch). */
  take(session: NodeSession, updates: PriceUpdate[], traceContext: Record<string, string>): void {
    if (isEmpty(traceContext)) return this.takeAll(session, updates);
    const name = updates.length === 1 ? 'NodePriceUpdateV1Notify' : 'NodePriceUpdatesV1Notify';
    const { span, ctx } = startCommandSpan(
      TRACER,
      updates.length === 1 ? 'controller price update' : 'controller price updates',
      SpanKind.CONSUMER,
      traceContext,
      {
        ...rpcAttributes(NODE_SERVICE, name),
        'currency.updates': updates.length,
        'currency.node_uuid': session.uuid,
      },
    );
    runIn(ctx, () => this.takeAll(session, updates));
    span.end();
  }

  /**
   * A price the leader took, followed by this standby (warm standby): checked like any
   * price and kept if newer (not forwarded), so the first StreamStart after a takeover
   * carries it.
   */
  takeFollowed(p: { pair: string; price: number; updatedAtMs: number; nodeUuid: string }): void {
    const m = {
      currencyPair: p.pair,
      price: p.price,
      priceUpdatedAt: timestampFromMs(p.updatedAtMs),
    };
    if (checkPrice(m, this.deps.scheduler.now(), this.deps.limits.maxPriceSkewMs).ok)
      this.deps.prices.offer(p);
  }

  /**
   * Each update is taken exactly as a single NodePriceUpdateV1Notify would be: from a node
   * not streaming its pair it is ignored (in flight when the pair moved); a refused one is
   * counted and skipped, and the rest still count. A valid one marks its streamer alive
   * whether or not it is stored.
   */
  private takeAll(session: NodeSession, updates: PriceUpdate[]): void {
    const d = this.deps;
    const uuid = session.uuid!;
    if (!d.registry.isHolder(session)) return;
    const now = d.scheduler.now();
    const slots = d.assignment.slots;
    // Allocated only for a frame that has a refused update (the hot path has none).
    let refused: { reason: PriceRefusal; problem: string }[] | undefined;
    for (const m of updates) {
      // The pair's one lookup: streamers, progress, latest price and count are its fields.
      const slot = slots.get(m.currencyPair);
      if (slot === undefined || !slot.streams(uuid)) continue;
      const c = checkPrice(m, now, d.limits.maxPriceSkewMs);
      if (!c.ok) {
        (refused ??= []).push(c);
        continue;
      }
      const at = c.updatedAtMs;
      d.upkeep.markIn(slot, uuid, now);
      if (this.standbys) {
        d.prices.noteIn(slot, uuid, m.price, at, now);
        if (slot.primary !== uuid) continue;
      }
      if (!d.prices.offerIn(slot, m.price, at, uuid)) {
        d.observer.priceSuperseded();
        continue;
      }
      d.observer.pricesAccepted(slot);
      d.fanout.deliver(uuid, slot.pair, m.price, at);
    }
    if (refused) d.observer.pricesRefused(session, refused, updates.length);
  }
}

/** Whether a frame carries no trace context (most do not), without allocating its keys. */
function isEmpty(traceContext: Record<string, string>): boolean {
  for (const key in traceContext) if (Object.hasOwn(traceContext, key)) return false;
  return true;
}
