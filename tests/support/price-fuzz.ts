/**
 * Seeded price updates that probe the controller's price rules (contract section 5), and
 * the model of what it must do with each: refuse it (and why), take it as the new latest,
 * or drop it as not newer. Values on the wire: prices any double can be, timestamps any
 * seconds/nanos the wire can carry.
 */
import type { Timestamp } from '../../services/gen/google/protobuf/timestamp';
import { timestampFromMs } from '../../services/shared/time';

export type Refusal = 'not_positive' | 'bad_timestamp' | 'future';
export type Outcome =
  | { kind: 'refused'; reasons: Refusal[] }
  | { kind: 'stored' }
  | { kind: 'superseded' }
  /** The frame as a whole does not decode (seconds beyond what a JS number holds exactly). */
  | { kind: 'malformed' }
  /** For a pair the sender does not stream: ignored, counted nowhere. */
  | { kind: 'ignored' };

export interface FuzzUpdate {
  currencyPair: string;
  price: number;
  priceUpdatedAt: Timestamp;
}

/** A price's timestamp as the controller reads it (sub-millisecond precision kept). */
export const msOfTs = (ts: Timestamp) => ts.seconds * 1000 + ts.nanos / 1e6;
/** ...and as a CLI prints it (whole milliseconds). */
export const isoOfTs = (ts: Timestamp) =>
  new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6)).toISOString();

const MAX_DATE_MS = 8.64e15;
const UNSAFE_SECONDS = 2 ** 60;

export class PriceModel {
  /** The latest stored update per pair, as the controller must hold it. */
  readonly latest = new Map<string, FuzzUpdate>();
  /** Every update the controller may store or forward: `pair|iso|price`, as a CLI shows it. */
  readonly acceptable = new Set<string>();
  /** The same, `pair|ms|price` with the controller's own ms (sub-millisecond). */
  readonly acceptableMs = new Set<string>();
  readonly counts = {
    stored: 0,
    superseded: 0,
    malformedFrames: 0,
    refused: 0,
    ignored: 0,
    /** Refused updates with exactly one thing wrong, by reason. */
    refusedOnly: { not_positive: 0, bad_timestamp: 0, future: 0 } as Record<Refusal, number>,
  };

  constructor(
    private readonly rnd: () => number,
    readonly streamed: string[],
    readonly maxSkewMs: number,
  ) {}

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  /** About half finite and positive, the rest every way a double can be wrong. */
  price(): number {
    const r = this.rnd;
    return this.pick([
      () => 7.8 * (1 + (r() - 0.5) / 100),
      () => 7.8 * (1 + (r() - 0.5) / 100),
      () => 7.8 * (1 + (r() - 0.5) / 100),
      () => 5e-324, // the smallest subnormal: finite and positive
      () => 2.2e-308 * r(),
      () => this.pick([1e308, Number.MAX_VALUE]),
      () => NaN,
      () => this.pick([Infinity, -Infinity]),
      () => this.pick([0, -0]),
      () => -r() * 100,
    ])();
  }

  /** A timestamp for `pair` at `nowMs` (the sender's clock, never ahead of the controller's). */
  timestamp(pair: string, nowMs: number): Timestamp {
    const r = this.rnd;
    const latest = this.latest.get(pair);
    const latestMs = latest ? msOfTs(latest.priceUpdatedAt) : undefined;
    return this.pick([
      // Newer than anything held: what an honest node sends.
      () => timestampFromMs(Math.max(nowMs, (latestMs ?? 0) + 0.001)),
      () => timestampFromMs(Math.max(nowMs, (latestMs ?? 0) + 0.001)),
      () => timestampFromMs(Math.max(nowMs, (latestMs ?? 0) + 0.001)),
      // Ahead, but within the skew allowed (well inside it: the controller reads later).
      () => timestampFromMs(nowMs + r() * Math.min(3000, this.maxSkewMs * 0.6)),
      // Far ahead: a minute to four months.
      () => timestampFromMs(nowMs + 60_000 + r() * 1e10),
      // Older than the latest, or exactly as old.
      () => timestampFromMs((latestMs ?? nowMs) - 1 - r() * 10_000),
      () => latest?.priceUpdatedAt ?? timestampFromMs(nowMs - 1),
      // Before 1970.
      () => ({ seconds: -1 - Math.floor(r() * 1e10), nanos: Math.floor(r() * 1e9) }),
      // After the last instant a Date can hold (seconds = 1e13 poisoned main once).
      () => ({ seconds: this.pick([1e13, 8.64e12 + 1 + Math.floor(r() * 1e6)]), nanos: 0 }),
      // Nanos out of range.
      () => ({
        seconds: Math.floor(nowMs / 1000),
        nanos: this.pick([-1, 1e9, 2 ** 31 - 1, -(2 ** 31)]),
      }),
      // Seconds no JS number holds exactly: the frame does not decode at all.
      () => ({ seconds: this.pick([UNSAFE_SECONDS, -UNSAFE_SECONDS]), nanos: 0 }),
    ])();
  }

  update(nowMs: number, pairs = this.streamed): FuzzUpdate {
    const currencyPair = this.pick(pairs);
    return {
      currencyPair,
      price: this.price(),
      priceUpdatedAt: this.timestamp(currencyPair, nowMs),
    };
  }

  /**
   * What the controller must do with one frame's updates, in order (intake is in order on
   * one stream); advances the model. `nowMs` is the sender's clock at sending.
   */
  apply(updates: FuzzUpdate[], nowMs: number): Outcome[] {
    if (updates.some((u) => Math.abs(u.priceUpdatedAt.seconds) > Number.MAX_SAFE_INTEGER)) {
      this.counts.malformedFrames++;
      return updates.map(() => ({ kind: 'malformed' }));
    }
    return updates.map((u) => this.applyOne(u, nowMs));
  }

  /** `u` is valid: the controller may store it and forward it. */
  accept(u: FuzzUpdate): void {
    this.acceptable.add(`${u.currencyPair}|${isoOfTs(u.priceUpdatedAt)}|${u.price}`);
    this.acceptableMs.add(`${u.currencyPair}|${msOfTs(u.priceUpdatedAt)}|${u.price}`);
  }

  private applyOne(u: FuzzUpdate, nowMs: number): Outcome {
    if (!this.streamed.includes(u.currencyPair)) {
      this.counts.ignored++;
      return { kind: 'ignored' };
    }
    const reasons: Refusal[] = [];
    if (!Number.isFinite(u.price) || u.price <= 0) reasons.push('not_positive');
    const { nanos } = u.priceUpdatedAt;
    const ms = msOfTs(u.priceUpdatedAt);
    if (nanos < 0 || nanos >= 1e9 || ms < 0 || ms > MAX_DATE_MS) reasons.push('bad_timestamp');
    // The controller reads the price no earlier than it was sent: `future` for sure only
    // when far ahead; the generator never makes one near the limit.
    else if (ms > nowMs + this.maxSkewMs) reasons.push('future');
    if (reasons.length > 0) {
      this.counts.refused++;
      if (reasons.length === 1) this.counts.refusedOnly[reasons[0]!]++;
      return { kind: 'refused', reasons };
    }
    this.accept(u);
    const cur = this.latest.get(u.currencyPair);
    if (cur && msOfTs(cur.priceUpdatedAt) >= ms) {
      this.counts.superseded++;
      return { kind: 'superseded' };
    }
    this.latest.set(u.currencyPair, u);
    this.counts.stored++;
    return { kind: 'stored' };
  }
}
