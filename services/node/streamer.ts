/**
 * The pairs a node streams: one timer per pair, prices read from the market feed and
 * stamped with the node's own clock, and the updates that fall due in one event-loop turn
 * handed over together so they can travel as one frame.
 */
import type { Logger } from '../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../shared/scheduler';
import type { IntervalRange } from './config';
import type { MarketFeed } from './prices';

export interface PriceUpdate {
  currencyPair: string;
  price: number;
  updatedAtMs: number;
}

/** Where updates go: the controller link (see node.ts). */
export interface PriceSink {
  /** A registered stream exists; nothing is produced otherwise. */
  ready(): boolean;
  /** The stream is backed up: this turn's updates are dropped (the next supersede them). */
  backedUp(): boolean;
  /** The controller takes several updates in one frame. */
  takesBatches(): boolean;
  /** One update in a frame of its own; `traced` ones get a span. */
  sendOne(update: PriceUpdate, traced: boolean): void;
  sendBatch(updates: PriceUpdate[]): void;
  dropped(count: number): void;
}

export interface StreamerDeps {
  scheduler: Scheduler;
  random: Random;
  market: MarketFeed;
  intervalMs: IntervalRange;
  /** Share of updates that travel alone with a span (0..1). */
  spanSampleRatio: number;
  sink: PriceSink;
  log: Logger;
}

interface PairStream {
  timer?: TimerHandle;
  /** No price is sent stamped at or before this (the newest stamp known for the pair). */
  floorMs: number;
  waitingLogged: boolean;
}

export class PairStreamer {
  /** Last price per pair this node sent, kept across streams (status replies show it). */
  readonly lastPrices = new Map<string, { price: number; updatedAtMs: number }>();
  private readonly streams = new Map<string, PairStream>();
  private readonly batch = new Map<string, PriceUpdate>();
  private batchFlush: TimerHandle | undefined;

  constructor(private readonly deps: StreamerDeps) {}

  pairs(): string[] {
    return [...this.streams.keys()].sort();
  }

  isStreaming(pair: string): boolean {
    return this.streams.has(pair);
  }

  /**
   * Starts `pair` with a first price at once. `controllerLatestMs` is the stamp of the
   * newest price the controller holds for it: prices are stamped with this node's own
   * clock, never ahead of it, and a price stamped at or before the controller's latest
   * would only be refused as older, so while the controller's stamp is ahead of our clock
   * (clock skew, or a poisoned price from an older controller) the node sends nothing for
   * that pair until its clock has passed it.
   */
  start(pair: string, controllerLatestMs: number | undefined): void {
    if (this.streams.has(pair)) return;
    const own = this.lastPrices.get(pair)?.updatedAtMs ?? 0;
    const s: PairStream = {
      floorMs: Math.max(own, controllerLatestMs ?? 0),
      waitingLogged: false,
    };
    this.streams.set(pair, s);
    this.deps.log.info({ pair }, 'streaming started');
    this.tick(pair, s);
  }

  stop(pair: string): void {
    const s = this.streams.get(pair);
    if (!s) return;
    if (s.timer) this.deps.scheduler.clearTimeout(s.timer);
    this.streams.delete(pair);
    this.deps.log.info({ pair }, 'streaming stopped');
  }

  stopAll(): void {
    this.batch.clear();
    if (this.batchFlush) this.deps.scheduler.clearImmediate(this.batchFlush);
    this.batchFlush = undefined;
    for (const pair of [...this.streams.keys()]) this.stop(pair);
  }

  private interval(): number {
    const { minMs, maxMs } = this.deps.intervalMs;
    return minMs + Math.floor(this.deps.random() * (maxMs - minMs + 1));
  }

  private tick(pair: string, s: PairStream): void {
    const { scheduler, sink, log } = this.deps;
    s.timer = undefined;
    if (!sink.ready()) return;
    const now = scheduler.now();
    let next = this.interval();
    const price = now > s.floorMs ? this.deps.market.latest(pair) : undefined;
    if (now <= s.floorMs) {
      if (!s.waitingLogged) {
        s.waitingLogged = true;
        log.warn(
          { pair, ahead_ms: s.floorMs - now + 1 },
          "the newest price known for this pair is dated ahead of this node's clock; sending none until the clock passes it",
        );
      }
      next = Math.min(next, s.floorMs - now + 1);
    } else if (price !== undefined) {
      s.floorMs = now;
      this.lastPrices.set(pair, { price, updatedAtMs: now });
      this.emit({ currencyPair: pair, price, updatedAtMs: now });
    }
    s.timer = scheduler.setTimeout(() => this.tick(pair, s), next);
  }

  private emit(update: PriceUpdate): void {
    const { sink, random, spanSampleRatio } = this.deps;
    if (sink.backedUp()) {
      sink.dropped(1);
      return;
    }
    // A sampled share of updates carries a span, continued by the controller; those
    // travel alone, so that the span covers exactly one update.
    const traced = spanSampleRatio > 0 && random() < spanSampleRatio;
    if (traced || !sink.takesBatches()) {
      sink.sendOne(update, traced);
      return;
    }
    this.batch.set(update.currencyPair, update);
    this.batchFlush ??= this.deps.scheduler.setImmediate(() => this.flush());
  }

  /**
   * Updates that fell due in this event-loop turn go together: one frame instead of many
   * is most of the cost of a price update, on both sides.
   */
  private flush(): void {
    this.batchFlush = undefined;
    const { sink } = this.deps;
    // Pairs stopped since their update was queued are not sent.
    const updates = [...this.batch.values()].filter((u) => this.streams.has(u.currencyPair));
    this.batch.clear();
    if (updates.length === 0 || !sink.ready()) return;
    if (sink.backedUp()) sink.dropped(updates.length);
    else if (updates.length === 1) sink.sendOne(updates[0]!, false);
    else sink.sendBatch(updates);
  }
}
