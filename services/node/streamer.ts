/**
 * The pairs a node streams: one timer per pair, quotes taken from the upstream
 * (upstream/), and the updates that fall due in one event-loop turn handed over together
 * so they can travel as one frame.
 *
 * Pull upstreams (simulated, http) are read once per NODE_PRICE_INTERVAL_MS per pair, the
 * first read at once; each valid answer is sent. A push upstream (websocket) sends each new
 * price at once, and the latest again after an interval without a new one. A price is sent
 * only as the upstream gave it, never invented.
 */
import type { Logger } from '../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../shared/scheduler';
import type { IntervalRange } from './config';
import type { Quote } from './upstream/types';

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
  /**
   * One update in a frame of its own; `traced` ones get a span, a child of `parent` (the
   * carrier of the upstream read that gave the price) when there is one.
   */
  sendOne(update: PriceUpdate, traced: boolean, parent?: Record<string, string>): void;
  sendBatch(updates: PriceUpdate[]): void;
  dropped(count: number): void;
}

/** How the streamer reads a pair: `pull` sources are read every interval, answering through offer(). */
export interface QuoteSource {
  pull: boolean;
  read(pair: string): void;
}

export interface StreamerDeps {
  scheduler: Scheduler;
  random: Random;
  /** The upstream, as the streamer reads it (price-supply.ts builds it from NODE_UPSTREAM). */
  source: QuoteSource;
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
  /** Push sources: the latest quote, and whether it was sent since the last tick. */
  latest?: Quote;
  fresh: boolean;
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
      fresh: false,
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

  /**
   * One interval: a pull source is read (its answer comes back through offer()); a push
   * source's latest price is sent again if no new one came since the last tick.
   */
  private tick(pair: string, s: PairStream): void {
    s.timer = undefined;
    if (!this.deps.sink.ready()) return;
    s.timer = this.deps.scheduler.setTimeout(() => this.tick(pair, s), this.interval());
    if (this.deps.source.pull) this.deps.source.read(pair);
    else if (s.latest && !s.fresh) this.send(pair, s.latest);
    s.fresh = false;
  }

  /** A valid quote from the upstream for `pair`; sent if the pair streams. */
  offer(pair: string, quote: Quote, parent?: Record<string, string>): void {
    const s = this.streams.get(pair);
    if (!s || !this.deps.sink.ready()) return;
    const { scheduler, log } = this.deps;
    // Our own clock's stamps: none at or before the newest stamp known for the pair (a
    // controller's stamp ahead of our clock would only be refused as older).
    if (quote.ownClock && quote.atMs <= s.floorMs) {
      if (!s.waitingLogged && s.floorMs - quote.atMs > 0) {
        s.waitingLogged = true;
        log.warn(
          { pair, ahead_ms: s.floorMs - quote.atMs + 1 },
          "the newest price known for this pair is dated ahead of this node's clock; sending none until the clock passes it",
        );
      }
      // Read again as soon as the clock has passed it, if that is before the next tick.
      if (this.deps.source.pull && s.timer) {
        const waitMs = s.floorMs - scheduler.now() + 1;
        if (waitMs < this.deps.intervalMs.minMs) {
          scheduler.clearTimeout(s.timer);
          s.timer = scheduler.setTimeout(() => this.tick(pair, s), Math.max(1, waitMs));
        }
      }
      return;
    }
    if (quote.ownClock) s.floorMs = quote.atMs;
    if (!this.deps.source.pull) {
      s.latest = quote;
      s.fresh = true;
    }
    this.send(pair, quote, parent);
  }

  private send(pair: string, quote: Quote, parent?: Record<string, string>): void {
    this.lastPrices.set(pair, { price: quote.price, updatedAtMs: quote.atMs });
    this.emit({ currencyPair: pair, price: quote.price, updatedAtMs: quote.atMs }, parent);
  }

  private emit(update: PriceUpdate, parent?: Record<string, string>): void {
    const { sink, random, spanSampleRatio } = this.deps;
    if (sink.backedUp()) {
      sink.dropped(1);
      return;
    }
    // A sampled share of updates carries a span, continued by the controller; those
    // travel alone, so that the span covers exactly one update.
    const traced = parent !== undefined || (spanSampleRatio > 0 && random() < spanSampleRatio);
    if (traced || !sink.takesBatches()) {
      sink.sendOne(update, traced, parent);
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
