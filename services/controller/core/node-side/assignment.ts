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
 *
 * One market per pair: of a pair's streamers, the one assigned first is its _primary_ (its
 * prices are the ones stored and forwarded); the others are hot standbys, in the order they
 * were assigned. When the primary stops streaming the pair (it left, withdrew the pair, was
 * moved away or demoted as stale), the next standby is primary in the same step; every
 * change of a pair's primary is reported in `AssignmentChange.primaryChanges`.
 */
import type { Random } from '../../../shared/scheduler';
import {
  type AssignmentChange,
  type PairSetReason,
  type ReassignReason,
  emptyChange,
} from './assignment-change';
import { NodeLoads } from './node-loads';
import { PairSlots } from './pair-slots';

interface NodeState {
  readonly uuid: string;
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
  /**
   * Each pair's capable nodes, in the order they announced it. Their states, not their
   * UUIDs: at the maxima (20,000 nodes x 1,000 pairs) these sets hold 20 M entries, and an
   * object is added faster than a string, and carries its load for `fill`.
   */
  private readonly capable = new Map<string, Set<NodeState>>();
  /**
   * Each pair's streamers in the order they were assigned and its primary (the first of
   * them), in the pair's slot: a price update reaches them, its latest price, its progress
   * and its count with one lookup (pair-slots.ts).
   */
  readonly slots: PairSlots;
  /** Pairs with at least one streamer, kept as streamers come and go (read per change). */
  private streamed = 0;
  /** Every pair any node has announced since the controller started. */
  private readonly known = new Set<string>();
  /** How many nodes carry each number of streams (node-loads.ts), for the largest load. */
  private readonly loads = new NodeLoads();

  constructor(
    readonly streamsPerPair: number,
    private readonly random: Random,
    slots: PairSlots = new PairSlots(),
  ) {
    this.slots = slots;
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
    return this.slots.get(pair)?.streams(uuid) ?? false;
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
    return this.slots.get(pair)?.streamers.size ?? 0;
  }

  /** The pair's streamers, primary first, then the standbys in the order they were assigned. */
  streamersOf(pair: string): string[] {
    return [...(this.slots.get(pair)?.streamers ?? [])];
  }

  /** The streamer whose prices of `pair` are stored and forwarded; undefined with none. */
  primaryOf(pair: string): string | undefined {
    return this.slots.get(pair)?.primary;
  }

  /** Whether `uuid` is the primary streamer of `pair` (O(1), per price update). */
  isPrimary(uuid: string, pair: string): boolean {
    return this.slots.get(pair)?.primary === uuid;
  }

  /**
   * Known pairs, sorted, each with its streamers (primary first, as streamersOf) and how
   * many connected nodes can stream it.
   */
  pairs(): PairView[] {
    return this.knownPairs().map((pair) => ({
      pair,
      streamers: this.streamersOf(pair),
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
    const node: NodeState = { uuid, known: new Set(pairs), streaming: new Set() };
    this.nodes.set(uuid, node);
    this.loads.joined();
    for (const pair of node.known) {
      this.known.add(pair);
      setOf(this.capable, pair).add(node);
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
    this.loads.left(node.streaming.size);
    for (const pair of node.known) this.capable.get(pair)?.delete(node);
    for (const pair of node.streaming) {
      this.dropStreamer(pair, uuid, change, reason);
      const before = change.reassignments.length;
      this.fill(pair, change, reason);
      const took = change.reassignments.slice(before);
      if (took.length === 0) change.reassignments.push({ pair, from: uuid, reason });
      for (const r of took) r.from = uuid;
    }
    return change;
  }

  /**
   * Every node left at once: the controller stops, or stops leading, and ends every node
   * stream. No pair moves, since no node stays to take it, and nothing is reported as a
   * change: each pair keeps its latest price and stays known with no streamer, as after
   * each node had left in turn. Returns the pairs that had streamers.
   */
  removeAllNodes(): string[] {
    const had: string[] = [];
    for (const slot of this.slots.values()) {
      if (slot.streamers.size === 0) continue;
      had.push(slot.pair);
      slot.streamers.clear();
      slot.primary = undefined;
    }
    this.nodes.clear();
    this.capable.clear();
    this.loads.reset();
    this.streamed = 0;
    return had;
  }

  /**
   * A connected node announced a different pair set. A streamed pair it dropped moves at
   * once to another capable node (`reason`: `withdrawn` when the node withdrew it on its
   * live stream, `pairs_changed` when a newer stream of the node announced another set);
   * with none, the pair keeps its other streamers, or none. A pair it (re)announces makes
   * it capable again and is streamed by it if the pair is short of streamers.
   */
  updatePairs(
    uuid: string,
    pairs: Iterable<string>,
    reason: PairSetReason = 'pairs_changed',
  ): AssignmentChange {
    const change = emptyChange();
    const node = this.nodes.get(uuid);
    if (!node) return change;
    const next = new Set(pairs);
    const dropped = [...node.known].filter((p) => !next.has(p));
    const added = [...next].filter((p) => !node.known.has(p));
    for (const pair of dropped) {
      node.known.delete(pair);
      this.capable.get(pair)?.delete(node);
      if (this.streamOff(node, pair)) {
        this.dropStreamer(pair, uuid, change, reason);
        change.changedNodes.add(uuid);
        const before = change.reassignments.length;
        this.fill(pair, change, reason);
        const took = change.reassignments.slice(before);
        if (took.length === 0) change.reassignments.push({ pair, from: uuid, reason });
        for (const r of took) r.from = uuid;
      }
    }
    for (const pair of added) {
      node.known.add(pair);
      this.known.add(pair);
      setOf(this.capable, pair).add(node);
      this.fill(pair, change, undefined);
    }
    this.rebalanceToward(uuid, change);
    return change;
  }

  /**
   * A streamer of `pair` went quiet: the pair moves to another capable node that is not
   * streaming it, if there is one (least loaded, random among equals); a quiet primary's
   * next standby is primary at once. With no such node, a quiet primary makes way for the
   * first standby that `live` says still sends prices (it becomes the last standby, and
   * keeps streaming); otherwise nothing changes, since a quiet streamer is still the only
   * one that may recover.
   */
  demote(
    uuid: string,
    pair: string,
    live: (uuid: string) => boolean = () => true,
  ): AssignmentChange {
    const change = emptyChange();
    const node = this.nodes.get(uuid);
    const streaming = this.slots.get(pair)?.streamers;
    if (!node || !streaming?.has(uuid)) return change;
    const others = [...(this.capable.get(pair) ?? [])].filter((n) => !streaming.has(n.uuid));
    if (others.length === 0) {
      if (this.isPrimary(uuid, pair)) this.handOver(pair, streaming, live, change);
      return change;
    }
    this.streamOff(node, pair);
    this.dropStreamer(pair, uuid, change, 'stale');
    change.changedNodes.add(uuid);
    // Left out of this round's pick, so the quiet node cannot be handed the pair back.
    this.capable.get(pair)!.delete(node);
    this.fill(pair, change, 'stale');
    this.capable.get(pair)!.add(node);
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
    if (this.streamerCount(pair) > 0) this.streamed--;
    // Its latest price, progress and pending count go with it (its series are removed).
    this.slots.delete(pair);
    return true;
  }

  private load(uuid: string): number {
    return this.nodes.get(uuid)?.streaming.size ?? 0;
  }

  /** `node` streams `pair` now (its load counted). */
  private streamOn(node: NodeState, pair: string): void {
    if (node.streaming.has(pair)) return;
    this.loads.added(node.streaming.size);
    node.streaming.add(pair);
  }

  /** `node` no longer streams `pair` (its load counted); false if it did not. */
  private streamOff(node: NodeState, pair: string): boolean {
    if (!node.streaming.delete(pair)) return false;
    this.loads.removed(node.streaming.size + 1);
    return true;
  }

  private start(uuid: string, pair: string, change: AssignmentChange): void {
    this.streamOn(this.nodes.get(uuid)!, pair);
    const streaming = this.slots.of(pair).streamers;
    if (!streaming.has(uuid)) {
      if (streaming.size === 0) this.streamed++;
      // Added last: a standby, unless the pair had no streamer.
      streaming.add(uuid);
      if (streaming.size === 1) this.primaryIs(pair, uuid, change, undefined);
    }
    change.changedNodes.add(uuid);
  }

  private dropStreamer(
    pair: string,
    uuid: string,
    change: AssignmentChange,
    reason: ReassignReason,
  ): void {
    const slot = this.slots.get(pair);
    if (!slot?.streamers.delete(uuid)) return;
    if (slot.streamers.size === 0) this.streamed--;
    if (slot.primary === uuid)
      this.primaryIs(pair, slot.streamers.values().next().value, change, reason);
  }

  /**
   * The quiet primary of `pair` goes to the back of its streamers, behind the first standby
   * that still sends prices, which is primary now; no standby is live: nothing changes.
   */
  private handOver(
    pair: string,
    streaming: Set<string>,
    live: (uuid: string) => boolean,
    change: AssignmentChange,
  ): void {
    const quiet = this.slots.get(pair)!.primary!;
    let next: string | undefined;
    for (const u of streaming) {
      if (u !== quiet && live(u)) {
        next = u;
        break;
      }
    }
    if (next === undefined) return;
    // The quiet primary, and any quiet standby ahead of `next`, go to the back, in order.
    for (const u of [...streaming]) {
      if (u === next) break;
      streaming.delete(u);
      streaming.add(u);
    }
    this.primaryIs(pair, next, change, 'stale');
  }

  /** Records `to` (or none) as the primary of `pair`, and the change if it is one. */
  private primaryIs(
    pair: string,
    to: string | undefined,
    change: AssignmentChange,
    reason: ReassignReason | undefined,
  ): void {
    const slot = this.slots.of(pair);
    const from = slot.primary;
    if (from === to) return;
    slot.primary = to;
    const earlier = change.primaryChanges.get(pair);
    if (!earlier)
      change.primaryChanges.set(pair, from === undefined ? { from, to } : { from, to, reason });
    else if (earlier.from === to) change.primaryChanges.delete(pair);
    else earlier.to = to;
  }

  /** Tops `pair` up to its target, least loaded first, random among equals. */
  private fill(pair: string, change: AssignmentChange, reason: ReassignReason | undefined): void {
    const streaming = this.slots.of(pair).streamers;
    while (streaming.size < this.streamsPerPair) {
      let minLoad = Infinity;
      let candidates: NodeState[] = [];
      for (const node of this.capable.get(pair) ?? []) {
        if (streaming.has(node.uuid)) continue;
        const load = node.streaming.size;
        if (load < minLoad) {
          minLoad = load;
          candidates = [node];
        } else if (load === minLoad) {
          candidates.push(node);
        }
      }
      if (candidates.length === 0) return;
      const chosen = candidates[Math.floor(this.random() * candidates.length)]!;
      this.start(chosen.uuid, pair, change);
      if (reason) change.reassignments.push({ pair, to: chosen.uuid, reason });
    }
  }

  /** Moves pairs to `uuid` from streamers that carry at least two more streams than it. */
  private rebalanceToward(uuid: string, change: AssignmentChange): void {
    const node = this.nodes.get(uuid)!;
    // Each move lowers the spread between donor and taker, so this ends; the bound is a guard.
    for (let guard = node.known.size; guard > 0; guard--) {
      // No node carries two more streams than this one: nothing to scan for.
      if (this.loads.max() < node.streaming.size + 2) return;
      let best: { pair: string; donor: string; load: number } | undefined;
      for (const pair of node.known) {
        if (node.streaming.has(pair)) continue;
        for (const donor of this.slots.get(pair)?.streamers ?? []) {
          const load = this.load(donor);
          if (load >= node.streaming.size + 2 && (!best || load > best.load)) {
            best = { pair, donor, load };
          }
        }
      }
      if (!best) return;
      this.streamOff(this.nodes.get(best.donor)!, best.pair);
      this.dropStreamer(best.pair, best.donor, change, 'rebalanced');
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

function setOf<K, V>(map: Map<K, Set<V>>, key: K): Set<V> {
  let s = map.get(key);
  if (!s) {
    s = new Set();
    map.set(key, s);
  }
  return s;
}
