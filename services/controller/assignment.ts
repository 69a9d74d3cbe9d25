/**
 * Which node streams which pair. Pure state and rules, no I/O: the controller feeds it
 * node arrivals, departures and pair announcements, and sends every node whose set
 * changed its full desired state.
 *
 * Rules (contract section 5): every known pair has `streamsPerPair` streamers, or every
 * capable node if fewer are connected; a new streamer is picked at random among the
 * capable nodes that carry the fewest streams; a pair whose streamer leaves moves at once.
 * A node that joins takes over pairs from nodes that carry at least two more streams than
 * it does, so load evens out as a group scales up.
 */
import type { Random } from '../shared/scheduler';

export type ReassignReason = 'node_left' | 'kicked' | 'rebalanced' | 'pairs_changed' | 'stale';

/** A pair gained a streamer (`to`), lost one (`from`), or both (a move). */
export interface Reassignment {
  pair: string;
  from?: string;
  to?: string;
  reason: ReassignReason;
}

export interface AssignmentChange {
  /** Nodes (still connected) whose streaming set changed: send each its full state. */
  changedNodes: Set<string>;
  /** Streams taken over because their node went away, or moved for balance. */
  reassignments: Reassignment[];
}

interface NodeState {
  known: Set<string>;
  streaming: Set<string>;
}

export interface PairView {
  pair: string;
  streamers: string[];
  capableNodes: number;
}

export class Assignment {
  private readonly nodes = new Map<string, NodeState>();
  private readonly capable = new Map<string, Set<string>>();
  private readonly streamers = new Map<string, Set<string>>();
  /** Pairs with at least one streamer, kept as streamers come and go (read per change). */
  private streamed = 0;
  /** Every pair any node has announced since the controller started. */
  private readonly known = new Set<string>();

  constructor(
    readonly streamsPerPair: number,
    private readonly random: Random,
  ) {
    if (!Number.isInteger(streamsPerPair) || streamsPerPair < 1) {
      throw new RangeError('streamsPerPair must be a whole number >= 1');
    }
  }

  hasNode(uuid: string): boolean {
    return this.nodes.has(uuid);
  }

  nodeCount(): number {
    return this.nodes.size;
  }

  knownPairs(): string[] {
    return [...this.known].sort();
  }

  knownPairsOf(uuid: string): string[] {
    return [...(this.nodes.get(uuid)?.known ?? [])].sort();
  }

  streamingPairsOf(uuid: string): string[] {
    return [...(this.nodes.get(uuid)?.streaming ?? [])].sort();
  }

  isStreaming(uuid: string, pair: string): boolean {
    return this.nodes.get(uuid)?.streaming.has(pair) ?? false;
  }

  /** How many pairs are known (O(1), for gauges). */
  isKnown(pair: string): boolean {
    return this.known.has(pair);
  }

  knownPairCount(): number {
    return this.known.size;
  }

  /** How many nodes stream `pair` (O(1), for gauges). */
  streamerCount(pair: string): number {
    return this.streamers.get(pair)?.size ?? 0;
  }

  streamersOf(pair: string): string[] {
    return [...(this.streamers.get(pair) ?? [])];
  }

  /** Known pairs, sorted, each with its streamers and how many connected nodes can stream it. */
  pairs(): PairView[] {
    return this.knownPairs().map((pair) => ({
      pair,
      streamers: this.streamersOf(pair).sort(),
      capableNodes: this.capable.get(pair)?.size ?? 0,
    }));
  }

  /** Pairs with at least one streamer. */
  streamedPairCount(): number {
    return this.streamed;
  }

  /** A node registered (or announced a new pair set, if already known). */
  addNode(uuid: string, pairs: Iterable<string>): AssignmentChange {
    if (this.nodes.has(uuid)) return this.updatePairs(uuid, pairs);
    const change = emptyChange();
    const node: NodeState = { known: new Set(pairs), streaming: new Set() };
    this.nodes.set(uuid, node);
    for (const pair of node.known) {
      this.known.add(pair);
      setOf(this.capable, pair).add(uuid);
    }
    for (const pair of node.known) this.fill(pair, change, undefined);
    this.rebalanceToward(uuid, change);
    return change;
  }

  /** A node left; `reason` says why (its stream ended or was lost, or it was kicked). */
  removeNode(uuid: string, reason: 'node_left' | 'kicked'): AssignmentChange {
    const change = emptyChange();
    const node = this.nodes.get(uuid);
    if (!node) return change;
    this.nodes.delete(uuid);
    for (const pair of node.known) this.capable.get(pair)?.delete(uuid);
    for (const pair of node.streaming) {
      this.dropStreamer(pair, uuid);
      const before = change.reassignments.length;
      this.fill(pair, change, reason);
      const took = change.reassignments.slice(before);
      if (took.length === 0) change.reassignments.push({ pair, from: uuid, reason });
      for (const r of took) r.from = uuid;
    }
    return change;
  }

  /** A connected node announced a different pair set. */
  updatePairs(uuid: string, pairs: Iterable<string>): AssignmentChange {
    const change = emptyChange();
    const node = this.nodes.get(uuid);
    if (!node) return change;
    const next = new Set(pairs);
    const dropped = [...node.known].filter((p) => !next.has(p));
    const added = [...next].filter((p) => !node.known.has(p));
    for (const pair of dropped) {
      node.known.delete(pair);
      this.capable.get(pair)?.delete(uuid);
      if (node.streaming.delete(pair)) {
        this.dropStreamer(pair, uuid);
        change.changedNodes.add(uuid);
        const before = change.reassignments.length;
        this.fill(pair, change, 'pairs_changed');
        const took = change.reassignments.slice(before);
        if (took.length === 0)
          change.reassignments.push({ pair, from: uuid, reason: 'pairs_changed' });
        for (const r of took) r.from = uuid;
      }
    }
    for (const pair of added) {
      node.known.add(pair);
      this.known.add(pair);
      setOf(this.capable, pair).add(uuid);
      this.fill(pair, change, undefined);
    }
    this.rebalanceToward(uuid, change);
    return change;
  }

  /**
   * A streamer of `pair` went quiet: the pair moves to another capable node that is not
   * streaming it, if there is one (least loaded, random among equals); otherwise nothing
   * changes, since a quiet streamer is still the only one that may recover.
   */
  demote(uuid: string, pair: string): AssignmentChange {
    const change = emptyChange();
    const node = this.nodes.get(uuid);
    const streaming = this.streamers.get(pair);
    if (!node || !streaming?.has(uuid)) return change;
    const others = [...(this.capable.get(pair) ?? [])].filter((u) => !streaming.has(u));
    if (others.length === 0) return change;
    node.streaming.delete(pair);
    this.dropStreamer(pair, uuid);
    change.changedNodes.add(uuid);
    // Left out of this round's pick, so the quiet node cannot be handed the pair back.
    this.capable.get(pair)!.delete(uuid);
    this.fill(pair, change, 'stale');
    this.capable.get(pair)!.add(uuid);
    for (const r of change.reassignments) r.from = uuid;
    return change;
  }

  /** Nodes that announced `pair`. */
  capableCount(pair: string): number {
    return this.capable.get(pair)?.size ?? 0;
  }

  /** Drops a known pair that no node can stream any more; false if one still can. */
  forgetPair(pair: string): boolean {
    if (!this.known.has(pair) || this.capableCount(pair) > 0) return false;
    this.known.delete(pair);
    this.capable.delete(pair);
    if ((this.streamers.get(pair)?.size ?? 0) > 0) this.streamed--;
    this.streamers.delete(pair);
    return true;
  }

  private load(uuid: string): number {
    return this.nodes.get(uuid)?.streaming.size ?? 0;
  }

  private start(uuid: string, pair: string, change: AssignmentChange): void {
    this.nodes.get(uuid)!.streaming.add(pair);
    const streaming = setOf(this.streamers, pair);
    if (!streaming.has(uuid)) {
      if (streaming.size === 0) this.streamed++;
      streaming.add(uuid);
    }
    change.changedNodes.add(uuid);
  }

  private dropStreamer(pair: string, uuid: string): void {
    const streaming = this.streamers.get(pair);
    if (streaming?.delete(uuid) && streaming.size === 0) this.streamed--;
  }

  /** Tops `pair` up to its target, least loaded first, random among equals. */
  private fill(pair: string, change: AssignmentChange, reason: ReassignReason | undefined): void {
    const streaming = setOf(this.streamers, pair);
    while (streaming.size < this.streamsPerPair) {
      let minLoad = Infinity;
      let candidates: string[] = [];
      for (const uuid of this.capable.get(pair) ?? []) {
        if (streaming.has(uuid)) continue;
        const load = this.load(uuid);
        if (load < minLoad) {
          minLoad = load;
          candidates = [uuid];
        } else if (load === minLoad) {
          candidates.push(uuid);
        }
      }
      if (candidates.length === 0) return;
      const chosen = candidates[Math.floor(this.random() * candidates.length)]!;
      this.start(chosen, pair, change);
      if (reason) change.reassignments.push({ pair, to: chosen, reason });
    }
  }

  /** Moves pairs to `uuid` from streamers that carry at least two more streams than it. */
  private rebalanceToward(uuid: string, change: AssignmentChange): void {
    const node = this.nodes.get(uuid)!;
    // Each move lowers the spread between donor and taker, so this ends; the bound is a guard.
    for (let guard = node.known.size; guard > 0; guard--) {
      let best: { pair: string; donor: string; load: number } | undefined;
      for (const pair of node.known) {
        if (node.streaming.has(pair)) continue;
        for (const donor of this.streamers.get(pair) ?? []) {
          const load = this.load(donor);
          if (load >= node.streaming.size + 2 && (!best || load > best.load)) {
            best = { pair, donor, load };
          }
        }
      }
      if (!best) return;
      this.nodes.get(best.donor)!.streaming.delete(best.pair);
      this.dropStreamer(best.pair, best.donor);
      change.changedNodes.add(best.donor);
      this.start(uuid, best.pair, change);
      change.reassignments.push({
        pair: best.pair,
        from: best.donor,
        to: uuid,
        reason: 'rebalanced',
      });
    }
  }
}

function emptyChange(): AssignmentChange {
  return { changedNodes: new Set(), reassignments: [] };
}

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let s = map.get(key);
  if (!s) {
    s = new Set();
    map.set(key, s);
  }
  return s;
}
