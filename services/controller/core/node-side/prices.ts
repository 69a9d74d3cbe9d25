/**
 * The latest price the controller holds for each pair (its primary streamer's, stored and
 * forwarded), and the latest each streamer of a pair sent (primary and hot standbys: for a
 * standby's promotion and the deviation between a pair's streamers). Both live in the
 * pair's slot (pair-slots.ts), shared with the assignment, upkeep and the update count.
 */
import { type LatestPrice, type PairSlot, PairSlots } from './pair-slots';

export type { LatestPrice } from './pair-slots';

export class PriceStore {
  constructor(private readonly slots: PairSlots = new PairSlots()) {}

  /**
   * Keeps the update only if it is strictly newer than what is stored; returns whether it
   * was kept. An older or equally old price is neither stored nor forwarded, so watchers
   * and the next streamer never step back in time. `p` itself is not kept: each pair's
   * record is the store's own and is overwritten in place (no allocation per stored
   * update), and `get` and `all` hand out copies of it.
   */
  offer(p: LatestPrice): boolean {
    return this.offerIn(this.slots.of(p.pair), p.price, p.updatedAtMs, p.nodeUuid);
  }

  /** `offer`, for the pair of `slot` (already looked up: the price intake's hot path). */
  offerIn(slot: PairSlot, price: number, updatedAtMs: number, nodeUuid: string): boolean {
    const cur = slot.latest;
    if (cur === undefined) {
      slot.latest = { pair: slot.pair, price, updatedAtMs, nodeUuid };
      return true;
    }
    if (cur.updatedAtMs >= updatedAtMs) return false;
    cur.price = price;
    cur.updatedAtMs = updatedAtMs;
    cur.nodeUuid = nodeUuid;
    return true;
  }

  /** Forgets the pair: its latest price and every streamer's. */
  delete(pair: string): void {
    const slot = this.slots.get(pair);
    if (slot === undefined) return;
    slot.latest = undefined;
    slot.seen.clear();
  }

  /**
   * `uuid`, a streamer of `pair`, sent this valid price (kept if not older than its own
   * latest; received now either way).
   */
  note(pair: string, uuid: string, price: number, updatedAtMs: number, nowMs: number): void {
    this.noteIn(this.slots.of(pair), uuid, price, updatedAtMs, nowMs);
  }

  /** `note`, for the pair of `slot` (already looked up). */
  noteIn(slot: PairSlot, uuid: string, price: number, updatedAtMs: number, nowMs: number): void {
    const s = slot.seen.get(uuid);
    if (!s) slot.seen.set(uuid, { price, updatedAtMs, receivedAtMs: nowMs });
    else {
      if (updatedAtMs >= s.updatedAtMs) {
        s.price = price;
        s.updatedAtMs = updatedAtMs;
      }
      s.receivedAtMs = nowMs;
    }
  }

  /** `uuid` stopped streaming `pair`: its latest price of the pair no longer counts. */
  dropStreamer(pair: string, uuid: string): void {
    this.slots.get(pair)?.seen.delete(uuid);
  }

  /** Every streamer left at once: only each pair's latest price is kept. */
  forgetAllStreamers(): void {
    for (const slot of this.slots.values()) slot.seen.clear();
  }

  /** The latest price `uuid` sent for `pair` while streaming it, if any. */
  seenFrom(pair: string, uuid: string): LatestPrice | undefined {
    const s = this.slots.get(pair)?.seen.get(uuid);
    return s && { pair, price: s.price, updatedAtMs: s.updatedAtMs, nodeUuid: uuid };
  }

  /**
   * How far apart the pair's streamers are: (max - min) / min over the latest price of
   * each streamer received within `windowMs` of `nowMs`; 0 with fewer than two.
   */
  deviation(pair: string, nowMs: number, windowMs: number): number {
    let n = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const s of this.slots.get(pair)?.seen.values() ?? []) {
      if (nowMs - s.receivedAtMs >= windowMs) continue;
      n++;
      if (s.price < min) min = s.price;
      if (s.price > max) max = s.price;
    }
    return n < 2 ? 0 : (max - min) / min;
  }

  get(pair: string): LatestPrice | undefined {
    const cur = this.slots.get(pair)?.latest;
    return cur && copyOf(cur);
  }

  all(): LatestPrice[] {
    const out: LatestPrice[] = [];
    for (const slot of this.slots.values()) if (slot.latest) out.push(copyOf(slot.latest));
    return out.sort((a, b) => a.pair.localeCompare(b.pair));
  }
}

function copyOf(p: LatestPrice): LatestPrice {
  return { pair: p.pair, price: p.price, updatedAtMs: p.updatedAtMs, nodeUuid: p.nodeUuid };
}
