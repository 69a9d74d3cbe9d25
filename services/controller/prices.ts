/** The latest price the controller has seen for each pair, and which node sent it. */
export interface LatestPrice {
  pair: string;
  price: number;
  updatedAtMs: number;
  nodeUuid: string;
}

export class PriceStore {
  private readonly latest = new Map<string, LatestPrice>();

  /**
   * Keeps the update only if it is strictly newer than what is stored; returns whether it
   * was kept. An older or equally old price is neither stored nor forwarded, so watchers
   * and the next streamer never step back in time.
   */
  offer(p: LatestPrice): boolean {
    const cur = this.latest.get(p.pair);
    if (cur && cur.updatedAtMs >= p.updatedAtMs) return false;
    this.latest.set(p.pair, p);
    return true;
  }

  delete(pair: string): void {
    this.latest.delete(pair);
  }

  get(pair: string): LatestPrice | undefined {
    return this.latest.get(pair);
  }

  all(): LatestPrice[] {
    return [...this.latest.values()].sort((a, b) => a.pair.localeCompare(b.pair));
  }
}
