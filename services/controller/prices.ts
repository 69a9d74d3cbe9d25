/**
 * The latest price the controller holds for each pair (its primary streamer's, stored and
 * forwarded), and the latest each streamer of a pair sent (primary and hot standbys: for a
 * standby's promotion and the deviation between a pair's streamers).
 */
export interface LatestPrice {
  pair: string;
  price: number;
  updatedAtMs: number;
  nodeUuid: string;
}

/** The latest price one streamer sent for one pair, overwritten in place (no allocation per update). */
interface SeenPrice {
  price: number;
  updatedAtMs: number;
  /** When the controller received it (the deviation only counts recent ones). */
  receivedAtMs: number;
}

export class PriceStore {
  private readonly latest = new Map<string, LatestPrice>();
  /** pair -> streamer -> its latest price (standbys only exist with CONTROLLER_STREAMS_PER_PAIR >= 2). */
  private readonly seen = new Map<string, Map<string, SeenPrice>>();

  /**
   * Keeps the update only if it is strictly newer than what is stored; returns whether it
   * was kept. An older or equally old price is neither stored nor forwarded, so watchers
   * and the next streamer never step back in time. `p` itself is not kept: each pair's
   * record is the store's own and is overwritten in place (one map lookup and no
   * allocation per stored update), and `get` and `all` hand out copies of it.
   */
  offer(p: LatestPrice): boolean {
    const cur = this.latest.get(p.pair);
    if (cur === undefined) {
      this.latest.set(p.pair, copyOf(p));
      return true;
    }
    if (cur.updatedAtMs >= p.updatedAtMs) return false;
    cur.price = p.price;
    cur.updatedAtMs = p.updatedAtMs;
    cur.nodeUuid = p.nodeUuid;
    return true;
  }

  /** Forgets the pair: its latest price and every streamer's. */
  delete(pair: string): void {
    this.latest.delete(pair);
    this.seen.delete(pair);
  }

  /**
   * `uuid`, a streamer of `pair`, sent this valid price (kept if not older than its own
   * latest; received now either way).
   */
  note(pair: string, uuid: string, price: number, updatedAtMs: number, nowMs: number): void {
    let byNode = this.seen.get(pair);
    if (!byNode) this.seen.set(pair, (byNode = new Map()));
    const s = byNode.get(uuid);
    if (!s) byNode.set(uuid, { price, updatedAtMs, receivedAtMs: nowMs });
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
    this.seen.get(pair)?.delete(uuid);
  }

  /** The latest price `uuid` sent for `pair` while streaming it, if any. */
  seenFrom(pair: string, uuid: string): LatestPrice | undefined {
    const s = this.seen.get(pair)?.get(uuid);
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
    for (const s of this.seen.get(pair)?.values() ?? []) {
      if (nowMs - s.receivedAtMs >= windowMs) continue;
      n++;
      if (s.price < min) min = s.price;
      if (s.price > max) max = s.price;
    }
    return n < 2 ? 0 : (max - min) / min;
  }

  get(pair: string): LatestPrice | undefined {
    const cur = this.latest.get(pair);
    return cur && copyOf(cur);
  }

  all(): LatestPrice[] {
    return [...this.latest.values()].map(copyOf).sort((a, b) => a.pair.localeCompare(b.pair));
  }
}

function copyOf(p: LatestPrice): LatestPrice {
  return { pair: p.pair, price: p.price, updatedAtMs: p.updatedAtMs, nodeUuid: p.nodeUuid };
}
