/**
 * When the http kind may send a request: the token bucket of NODE_UPSTREAM_MAX_RPS
 * (./pacing.ts) across all pairs, a FIFO queue of reads that found no token (at most one
 * per pair: a read already waiting stands for a later one), and the pause a Retry-After
 * asks for (429, 503, 418), during which every read fails at once.
 */
import type { Scheduler, TimerHandle } from '../../shared/scheduler';
import { TokenBucket } from './pacing';

/** The longest pause a Retry-After can ask for. */
export const MAX_PAUSE_MS = 10 * 60 * 1000;

/**
 * Retry-After as a wait in ms from `nowMs`: delta seconds or an HTTP date; undefined if
 * absent or unreadable, 0 if already past.
 */
export function retryAfterMs(
  value: string | string[] | undefined,
  nowMs: number,
): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/** Milliseconds as seconds with one decimal, rounded up (a pause of 1 ms is 0.1 s, not 0.0). */
export function seconds(ms: number): string {
  return (Math.ceil(ms / 100) / 10).toFixed(1);
}

export interface ReadLimiterDeps {
  scheduler: Scheduler;
  maxRps: number;
  /** Sends the request of a read that got its token. */
  start(pair: string): void;
  /** A read refused by a pause; never called from inside read(). */
  refuse(pair: string, detail: string): void;
}

export class ReadLimiter {
  private readonly bucket: TokenBucket;
  /** Reads waiting for a token, oldest first; at most one per pair. */
  private readonly queue: string[] = [];
  private drainTimer: TimerHandle | undefined;
  /** Retry-After: no request before this time (ms since the epoch). */
  private pausedUntilMs = 0;
  private pauseStatus = 0;
  private closed = false;

  constructor(private readonly deps: ReadLimiterDeps) {
    this.bucket = new TokenBucket(() => deps.scheduler.now(), deps.maxRps);
  }

  /** A read of `pair`: started now, queued for a token, dropped (same pair), or refused. */
  read(pair: string): void {
    if (this.closed) return;
    const left = this.pauseLeftMs();
    if (left > 0) {
      this.deps.refuse(pair, this.pausedDetail(left));
      return;
    }
    // Same-pair rule: a read already waiting for this pair stands for this one too.
    if (this.queue.includes(pair)) return;
    this.bucket.refill();
    if (this.queue.length === 0 && this.bucket.tryTake()) {
      this.deps.start(pair);
      return;
    }
    this.queue.push(pair);
    this.scheduleDrain();
  }

  /** Forgets a waiting read of `pair` (unfollowed). */
  drop(pair: string): void {
    const at = this.queue.indexOf(pair);
    if (at >= 0) this.queue.splice(at, 1);
  }

  /**
   * An answer `status` with this Retry-After header: every request waits out the pause
   * (at most MAX_PAUSE_MS). Returns what the failure's detail says of it ('' if none).
   */
  retryAfter(status: number, header: string | string[] | undefined): string {
    const now = this.deps.scheduler.now();
    const waitMs = retryAfterMs(header, now);
    if (waitMs === undefined || waitMs <= 0) return '';
    const until = now + Math.min(waitMs, MAX_PAUSE_MS);
    if (until > this.pausedUntilMs) {
      this.pausedUntilMs = until;
      this.pauseStatus = status;
    }
    return `; requests paused for ${seconds(Math.min(waitMs, MAX_PAUSE_MS))} s (Retry-After)`;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    if (this.drainTimer !== undefined) this.deps.scheduler.clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
  }

  private pauseLeftMs(): number {
    return Math.max(0, this.pausedUntilMs - this.deps.scheduler.now());
  }

  private pausedDetail(left: number): string {
    return `the upstream answered ${this.pauseStatus} with Retry-After; requests are paused for another ${seconds(left)} s`;
  }

  private scheduleDrain(): void {
    if (this.drainTimer !== undefined || this.queue.length === 0 || this.closed) return;
    this.drainTimer = this.deps.scheduler.setTimeout(() => this.drain(), this.bucket.waitMs());
  }

  private drain(): void {
    this.drainTimer = undefined;
    if (this.closed) return;
    const left = this.pauseLeftMs();
    if (left > 0) {
      // Paused since these reads were queued: they fail like reads asked for now.
      for (const pair of this.queue.splice(0)) this.deps.refuse(pair, this.pausedDetail(left));
      return;
    }
    this.bucket.refill();
    // Bounded: each pass takes one queued read (the queue holds at most one per pair).
    while (this.queue.length > 0 && this.bucket.tryTake()) this.deps.start(this.queue.shift()!);
    this.scheduleDrain();
  }
}
