/**
 * Where a node's prices come from and which pairs it can offer: the upstream
 * (upstream/index.ts picks it by NODE_UPSTREAM), the per-pair upstream health that
 * withdraws a pair whose upstream fails and brings it back (upstream/health.ts), and the
 * streamer that sends the prices (streamer.ts). node.ts asks it to start and stop pairs
 * and announces `knownPairs()`; it says when that set changes.
 */
import { PROGRAMS } from '../shared/protocol';
import type { Logger } from '../shared/logger';
import type { Random, Scheduler } from '../shared/scheduler';
import {
  SpanKind,
  SpanStatusCode,
  type Span,
  carrierOf,
  startCommandSpan,
} from '../shared/tracing';
import type { NodeConfig } from './config';
import type { NodeMetrics } from './metrics';
import { type MarketFeed, simulatedMarket } from './prices';
import { PairStreamer, type PriceSink } from './streamer';
import type { UpstreamConfig } from './upstream/config';
import { loadUpstreamConfig } from './upstream/config';
import { UpstreamHealth } from './upstream/health';
import { createUpstream } from './upstream/index';
import type { Quote, ReadOutcome, Upstream, UpstreamEvents } from './upstream/types';

const TRACER = PROGRAMS.node;
/** A failure of one pair with one outcome is logged at warn at most this often. */
const FAILURE_LOG_EVERY_MS = 60_000;

export interface PriceSupplyDeps {
  config: NodeConfig;
  scheduler: Scheduler;
  random: Random;
  log: Logger;
  metrics: NodeMetrics;
  /** The simulated upstream's market (tests pass their own); default: the built-in one. */
  market?: MarketFeed;
  sink: PriceSink;
  /** Tests: an upstream of their own instead of the one NODE_UPSTREAM names. */
  upstream?: (events: UpstreamEvents) => Upstream;
  /** The set of pairs this node can offer changed: announce it. */
  onKnownChanged(pairs: string[]): void;
}

/** The default upstream, for a config built in code without one: what an empty environment gives. */
const SIMULATED: UpstreamConfig = loadUpstreamConfig({}, []);

export class PriceSupply {
  readonly streamer: PairStreamer;
  readonly upstream: Upstream;
  private readonly health: UpstreamHealth;
  /** Sampled reads in flight, per pair: their span, continued by the price update. */
  private readonly readSpans = new Map<string, Span>();
  private readonly failureLoggedAt = new Map<string, number>();

  constructor(private readonly deps: PriceSupplyDeps) {
    const { config, scheduler, random, log, metrics } = deps;
    const upstreamConfig = config.upstream ?? SIMULATED;
    const events: UpstreamEvents = {
      quote: (pair, q) => this.onQuote(pair, q),
      failure: (pair, outcome, detail) => this.onFailure(pair, outcome, detail),
      latency: (s) => metrics.upstreamLatency.observe(s),
    };
    this.upstream = deps.upstream
      ? deps.upstream(events)
      : createUpstream(upstreamConfig, events, {
          scheduler,
          random,
          log: log.child({ upstream: upstreamConfig.kind }),
          market: deps.market ?? simulatedMarket(),
        });
    const read = this.upstream.read?.bind(this.upstream);
    this.health = new UpstreamHealth({
      scheduler,
      failAfterMs: upstreamConfig.failAfterMs,
      onWithdraw: (pair, quietMs) => this.withdrawn(pair, quietMs),
      onRestore: (pair, withdrawnMs) => this.restored(pair, withdrawnMs),
      probe: read,
      waiting: this.upstream.waiting?.bind(this.upstream),
    });
    this.streamer = new PairStreamer({
      scheduler,
      random,
      source: { pull: read !== undefined, read: (pair) => this.read(pair) },
      intervalMs: config.priceIntervalMs,
      spanSampleRatio: config.priceSpanSampleRatio,
      sink: deps.sink,
      log,
    });
    metrics.upstreamWithdrawn.set(0);
  }

  /** The pairs this node offers now: its configured pairs less the withdrawn ones. */
  knownPairs(): string[] {
    return this.deps.config.pairs.filter((p) => !this.health.isWithdrawn(p));
  }

  isWithdrawn(pair: string): boolean {
    return this.health.isWithdrawn(pair);
  }

  pairs(): string[] {
    return this.streamer.pairs();
  }

  /** Starts streaming `pair`; false if it is withdrawn (the controller's view is behind). */
  start(pair: string, controllerLatestMs: number | undefined): boolean {
    if (this.health.isWithdrawn(pair)) return false;
    if (this.streamer.isStreaming(pair)) return true;
    this.upstream.follow(pair);
    this.health.streaming(pair);
    this.streamer.start(pair, controllerLatestMs);
    return true;
  }

  stop(pair: string): void {
    this.streamer.stop(pair);
    this.health.stopped(pair);
    this.endSpan(pair);
    if (!this.health.isWithdrawn(pair)) this.upstream.unfollow(pair);
  }

  stopAll(): void {
    for (const pair of this.streamer.pairs()) this.stop(pair);
    this.streamer.stopAll();
  }

  async close(): Promise<void> {
    this.stopAll();
    this.health.close();
    await this.upstream.close();
  }

  // ---------------------------------------------------------------- upstream events

  /**
   * One read of a pull upstream, with a span of its own (real upstreams: at most
   * NODE_UPSTREAM_MAX_RPS a second, so every read is traced; the OpenTelemetry sampler
   * decides what is kept). The price update that carries its price is the span's child.
   */
  private read(pair: string): void {
    const { config } = this.deps;
    if (this.upstream.kind !== 'simulated' && !this.readSpans.has(pair)) {
      const { span } = startCommandSpan(TRACER, 'node upstream read', SpanKind.CLIENT, undefined, {
        'currency.pair': pair,
        'currency.node_uuid': config.uuid,
        'currency.upstream': this.upstream.kind,
      });
      this.readSpans.set(pair, span);
    }
    this.upstream.read!(pair);
  }

  private onQuote(pair: string, q: Quote): void {
    const { metrics, scheduler } = this.deps;
    metrics.upstreamRequests.inc({ outcome: 'ok' });
    metrics.upstreamPriceAge.set(
      { pair },
      q.ownClock ? 0 : Math.max(0, scheduler.now() - q.atMs) / 1000,
    );
    this.health.good(pair);
    // Only a recorded span (tracing on, sampled) makes the update travel alone with a span.
    const span = this.readSpans.get(pair);
    const parent = span?.isRecording() ? carrierOf(span) : undefined;
    this.endSpan(pair, 'ok');
    this.streamer.offer(pair, q, parent);
  }

  private onFailure(pair: string, outcome: Exclude<ReadOutcome, 'ok'>, detail: string): void {
    const { metrics, scheduler, log } = this.deps;
    metrics.upstreamRequests.inc({ outcome });
    this.health.bad(pair);
    this.endSpan(pair, outcome, detail);
    const key = `${pair} ${outcome}`;
    const now = scheduler.now();
    const last = this.failureLoggedAt.get(key);
    if (last === undefined || now - last >= FAILURE_LOG_EVERY_MS) {
      this.failureLoggedAt.set(key, now);
      log.warn({ pair, outcome, detail }, 'upstream gave no price');
    } else {
      log.debug({ pair, outcome, detail }, 'upstream gave no price');
    }
  }

  private endSpan(pair: string, outcome?: ReadOutcome, detail?: string): Span | undefined {
    const span = this.readSpans.get(pair);
    if (!span) return undefined;
    this.readSpans.delete(pair);
    if (outcome !== undefined) span.setAttribute('currency.upstream.outcome', outcome);
    if (outcome !== undefined && outcome !== 'ok')
      span.setStatus({ code: SpanStatusCode.ERROR, message: detail ?? outcome });
    span.end();
    return span;
  }

  // ---------------------------------------------------------------- withdrawal

  private withdrawn(pair: string, quietMs: number): void {
    const { metrics, log, config } = this.deps;
    this.streamer.stop(pair);
    this.endSpan(pair);
    metrics.upstreamWithdrawn.set(config.pairs.length - this.knownPairs().length);
    metrics.upstreamWithdrawals.inc({ pair });
    log.warn(
      { pair, quiet_ms: quietMs },
      'upstream gave no valid price for NODE_UPSTREAM_FAIL_AFTER_MS: pair withdrawn (another node takes it)',
    );
    this.deps.onKnownChanged(this.knownPairs());
  }

  private restored(pair: string, withdrawnMs: number): void {
    const { metrics, log, config } = this.deps;
    if (!this.streamer.isStreaming(pair)) this.upstream.unfollow(pair);
    metrics.upstreamWithdrawn.set(config.pairs.length - this.knownPairs().length);
    log.info({ pair, withdrawn_ms: withdrawnMs }, 'upstream answers again: pair offered again');
    this.deps.onKnownChanged(this.knownPairs());
  }
}
