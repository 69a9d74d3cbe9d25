/**
 * How many nodes carry each number of streams, kept as streams come and go, so that the
 * assignment knows the largest load at once. A node that joins takes pairs only from
 * nodes with at least two more streams than it; with the largest load known, a join into
 * an even fleet (every node at 0 or 1 streams: the common case, and every node of a fleet
 * re-registering after a controller restart) skips the scan of its pairs' streamers.
 */
export class NodeLoads {
  /** counts[load]: how many nodes carry `load` streams. */
  private readonly counts: number[] = [0];
  /** At least the largest load; lowered to it when asked (`max`). */
  private top = 0;

  /** A node joined (with no stream). */
  joined(): void {
    this.counts[0]!++;
  }

  /** A node carrying `load` streams left. */
  left(load: number): void {
    this.counts[load]!--;
  }

  /** A node went from `load` streams to one more. */
  added(load: number): void {
    this.counts[load]!--;
    this.counts[load + 1] = (this.counts[load + 1] ?? 0) + 1;
    if (load + 1 > this.top) this.top = load + 1;
  }

  /** A node went from `load` streams to one fewer. */
  removed(load: number): void {
    this.counts[load]!--;
    this.counts[load - 1]!++;
  }

  /** Every node left. */
  reset(): void {
    this.counts.length = 1;
    this.counts[0] = 0;
    this.top = 0;
  }

  /** The most streams any node carries (0 with no node). */
  max(): number {
    while (this.top > 0 && !this.counts[this.top]) this.top--;
    return this.top;
  }
}
