/**
 * CLI commands in flight to nodes: one request id per target node, so that a reply finds
 * its CLI stream, and so that when a node goes, every command still waiting for it is
 * failed at once instead of being left to the CLI's timeout.
 */
import type { Span } from '../../../shared/tracing';

/** One CLI command routed to one or more nodes. */
export interface RoutedCommand<Cli> {
  readonly command: string;
  readonly startedAtMs: number;
  readonly cli: Cli;
  readonly streamId: string;
  readonly span: Span;
  readonly outstanding: Set<string>;
  answered: number;
  failed: number;
}

export interface PendingReply<Cli> {
  readonly requestId: string;
  readonly nodeUuid: string;
  readonly routed: RoutedCommand<Cli>;
}

export class Router<Cli> {
  private readonly pending = new Map<string, PendingReply<Cli>>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly byCli = new Map<Cli, Set<string>>();

  size(): number {
    return this.pending.size;
  }

  pendingOf(cli: Cli): number {
    return this.byCli.get(cli)?.size ?? 0;
  }

  add(requestId: string, nodeUuid: string, routed: RoutedCommand<Cli>): void {
    const p = { requestId, nodeUuid, routed };
    this.pending.set(requestId, p);
    setOf(this.byNode, nodeUuid).add(requestId);
    setOf(this.byCli, routed.cli).add(requestId);
  }

  /** The pending reply `requestId` names, if `nodeUuid` is the node it was sent to. */
  take(requestId: string, nodeUuid: string): PendingReply<Cli> | 'wrong_node' | undefined {
    const p = this.pending.get(requestId);
    if (!p) return undefined;
    if (p.nodeUuid !== nodeUuid) return 'wrong_node';
    this.forget(p);
    p.routed.outstanding.delete(nodeUuid);
    return p;
  }

  /** The oldest request still waiting for `nodeUuid` (requests are kept in sending order). */
  oldestFor(nodeUuid: string): string | undefined {
    return this.byNode.get(nodeUuid)?.values().next().value;
  }

  /** Every command still waiting for `nodeUuid`, taken out (the node has gone). */
  nodeGone(nodeUuid: string): PendingReply<Cli>[] {
    const ids = this.byNode.get(nodeUuid);
    if (!ids) return [];
    const gone = [...ids].map((id) => this.pending.get(id)!);
    for (const p of gone) {
      this.forget(p);
      p.routed.outstanding.delete(nodeUuid);
    }
    return gone;
  }

  /** The unfinished commands of a CLI stream that has gone, taken out. */
  cliGone(cli: Cli): Set<RoutedCommand<Cli>> {
    const unfinished = new Set<RoutedCommand<Cli>>();
    for (const id of this.byCli.get(cli) ?? []) {
      const p = this.pending.get(id)!;
      unfinished.add(p.routed);
      this.forget(p);
    }
    return unfinished;
  }

  private forget(p: PendingReply<Cli>): void {
    this.pending.delete(p.requestId);
    dropFrom(this.byNode, p.nodeUuid, p.requestId);
    dropFrom(this.byCli, p.routed.cli, p.requestId);
  }
}

function setOf<K>(map: Map<K, Set<string>>, key: K): Set<string> {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Set()));
  return s;
}

function dropFrom<K>(map: Map<K, Set<string>>, key: K, id: string): void {
  const s = map.get(key);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) map.delete(key);
}
