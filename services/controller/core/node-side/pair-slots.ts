/**
 * One record per pair, shared by the modules that each price update touches: the
 * assignment's streamers and primary (assignment.ts), the latest price and each streamer's
 * (prices.ts), each streamer's last progress (upkeep.ts) and the updates stored since the
 * last scrape (observer.ts). A price update looks its pair up once (the decoded pair string
 * is hashed once) and then only compares and writes fields: the streamer check is
 * `primary === uuid`, progress and count are writes in place, with no allocation.
 */
/** The latest price held for a pair (its primary streamer's). */
export interface LatestPrice {
  pair: string;
  price: number;
  updatedAtMs: number;
  nodeUuid: string;
}

/** When one streamer of a pair last sent a valid price (or was told to start); written in place. */
export interface Progress {
  readonly uuid: string;
  at: number;
}

/** The latest price one streamer sent for one pair, overwritten in place. */
export interface SeenPrice {
  price: number;
  updatedAtMs: number;
  /** When the controller received it (the deviation only counts recent ones). */
  receivedAtMs: number;
}

export class PairSlot {
  /** Its streamers in the order they were assigned (a Set keeps insertion order). */
  readonly streamers = new Set<string>();
  /** The primary streamer, the first of `streamers` (assignment.ts keeps them in step). */
  primary: string | undefined = undefined;
  /** The latest price stored: the store's own record, overwritten in place. */
  latest: LatestPrice | undefined = undefined;
  /** Streamer -> the latest price it sent (hot standbys only exist with 2+ streams per pair). */
  readonly seen = new Map<string, SeenPrice>();
  /** Streamer -> its progress. */
  readonly progress = new Map<string, Progress>();
  /** The progress record written last: the primary's, so its updates skip the map. */
  lastProgress: Progress | undefined = undefined;
  /** Updates stored and forwarded since the last scrape (added to the counter when read). */
  updates = 0;

  constructor(readonly pair: string) {}

  /** Whether `uuid` streams this pair: a comparison for the primary. */
  streams(uuid: string): boolean {
    return uuid === this.primary || this.streamers.has(uuid);
  }
}

export class PairSlots {
  private readonly slots = new Map<string, PairSlot>();

  get(pair: string): PairSlot | undefined {
    return this.slots.get(pair);
  }

  /** The pair's slot, created if it has none. */
  of(pair: string): PairSlot {
    let s = this.slots.get(pair);
    if (s === undefined) this.slots.set(pair, (s = new PairSlot(pair)));
    return s;
  }

  /** Forgets the pair's slot (the pair was forgotten; its pending count goes with its series). */
  delete(pair: string): void {
    this.slots.delete(pair);
  }

  values(): IterableIterator<PairSlot> {
    return this.slots.values();
  }
}
