/**
 * NODE_UPSTREAM_MAX_RPS for both kinds, on the injected clock. The http kind spends tokens
 * from a bucket (bursts up to the rate, then spaced); the websocket kind spaces the
 * subscribe and unsubscribe messages of a connection evenly (feeds limit the messages a
 * client may send per second, and some ban a client that sends more).
 */
import type { Scheduler, TimerHandle } from '../../shared/scheduler';

/** A token bucket over `now()`: `ratePerS` tokens a second, at most ceil(ratePerS) held. */
export class TokenBucket {
  readonly burst: number;
  private tokens: number;
  private refilledAtMs: number;

  constructor(
    private readonly now: () => number,
    private readonly ratePerS: number,
  ) {
    this.burst = Math.max(1, Math.ceil(ratePerS));
    this.tokens = this.burst;
    this.refilledAtMs = now();
  }

  /** Adds the tokens earned since the last refill. */
  refill(): void {
    const now = this.now();
    if (now > this.refilledAtMs) {
      this.tokens = Math.min(
        this.burst,
        this.tokens + ((now - this.refilledAtMs) / 1000) * this.ratePerS,
      );
      this.refilledAtMs = now;
    }
  }

  /** Takes a token if one is held (as of the last refill). */
  tryTake(): boolean {
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Time until a token is held, as of the last refill; at least 1 ms. */
  waitMs(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerS));
  }
}

/**
 * The messages of one connection, at most `ratePerS` a second: one goes at once when its
 * turn has come, the others wait in order. `stop()` drops what waits and its timer.
 */
export class MessagePacer {
  private readonly spacingMs: number;
  private readonly outbox: string[] = [];
  private nextSendMs = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(
    private readonly scheduler: Scheduler,
    ratePerS: number,
    private readonly write: (message: string) => void,
  ) {
    this.spacingMs = 1000 / ratePerS;
  }

  send(message: string): void {
    if (this.stopped) return;
    if (
      this.outbox.length === 0 &&
      this.timer === undefined &&
      this.scheduler.now() >= this.nextSendMs
    )
      this.sendNow(message);
    else {
      this.outbox.push(message);
      this.drain();
    }
  }

  /** Whether `message` waits for its turn. */
  waiting(message: string): boolean {
    return this.outbox.includes(message);
  }

  /** Sends every waiting message now, out of turn (the connection ends right after). */
  flush(): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    for (const m of this.outbox.splice(0)) this.sendNow(m);
  }

  /** Drops the waiting messages; nothing is sent after it. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.outbox.length = 0;
  }

  private sendNow(message: string): void {
    this.nextSendMs = this.scheduler.now() + this.spacingMs;
    this.write(message);
  }

  private drain(): void {
    if (this.timer !== undefined || this.outbox.length === 0 || this.stopped) return;
    this.timer = this.scheduler.setTimeout(
      () => {
        this.timer = undefined;
        const message = this.outbox.shift();
        if (message === undefined || this.stopped) return;
        this.sendNow(message);
        this.drain();
      },
      Math.max(0, this.nextSendMs - this.scheduler.now()),
    );
  }
}
