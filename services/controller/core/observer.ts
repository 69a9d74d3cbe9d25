/**
 * Metrics and log lines derived from the core's domain events, in one place: the core
 * says what happened, this decides how it is counted and told, so a log line and its
 * metric can never disagree.
 */
import type { LabelValues } from 'prom-client';
import type { Logger } from '../../shared/logger';
import { type Span, SpanStatusCode, traceExemplar } from '../../shared/tracing';
import type { Assignment } from './node-side/assignment';
import type { AssignmentChange } from './node-side/assignment-change';
import type { PairSlot } from './node-side/pair-slots';
import type { PriceRefusal } from './intake';
import { CLOSE_RULES, type CloseReason } from './links/close-reasons';
import type { ControllerMetrics } from '../metrics';

/** Reasons a pair moves because its streamer failed it: each move is a failover. */
const FAILOVER_REASONS: ReadonlySet<string> = new Set([
  'node_left',
  'kicked',
  'withdrawn',
  'stale',
]);

export interface NodeFacts {
  uuid?: string;
  name: string;
  peer: string;
}

export class Observer {
  /** Pairs whose per-pair counters have been created at 0 (until the pair is forgotten). */
  private readonly seriesFromZero = new Set<string>();

  constructor(
    private readonly metrics: ControllerMetrics,
    private readonly log: Logger,
    private readonly assignment: Assignment,
  ) {}

  nodeRegistered(n: NodeFacts, pairs: string[]): void {
    this.log.info({ node_uuid: n.uuid, node_name: n.name, peer: n.peer, pairs }, 'node registered');
  }

  /**
   * A registered node sent another NodeKnownCurrenciesV1Notify on its live stream: pairs it
   * no longer offers (its upstream for them failed) are withdrawn, pairs it offers again
   * (the upstream answers) are restored.
   */
  nodeChangedPairs(
    n: NodeFacts,
    pairs: string[],
    withdrawn: string[] = [],
    restored: string[] = [],
  ): void {
    this.log.info({ node_uuid: n.uuid, pairs, withdrawn, restored }, 'node changed its pairs');
  }

  nodeReplaced(n: NodeFacts, old: NodeFacts): void {
    this.log.warn(
      { node_uuid: n.uuid, peer: n.peer, old_peer: old.peer, node_name: n.name },
      'a newer stream claimed a connected node UUID; the old stream is closed (two nodes sharing one NODE_UUID settle after the displaced one backs off 30 s)',
    );
  }

  /**
   * A node stream ended: one log line and one count, with the same reason. A stream that
   * ends on its own before registering (a node probing for keepalive permission, a port
   * scan) was never a node: logged at debug, not counted; a refusal always counts.
   */
  nodeClosed(n: NodeFacts, reason: CloseReason, registered: boolean, details?: string): void {
    const rule = CLOSE_RULES[reason];
    const fields = {
      node_uuid: n.uuid,
      node_name: n.name,
      peer: n.peer,
      reason: rule.disconnect,
      ...(rule.disconnect !== reason ? { cause: reason } : {}),
      ...(details ? { details } : {}),
    };
    if (!registered && !rule.refusal && rule.disconnect !== 'rejected') {
      this.log.debug(fields, 'node stream ended before registering');
      return;
    }
    this.metrics.nodeDisconnects.inc({ reason: rule.disconnect });
    if (rule.refusal) this.metrics.rejected.inc({ reason });
    if (rule.disconnect === 'rejected' || reason === 'slow_consumer')
      this.log.warn(fields, 'node stream refused');
    else this.log.info(fields, 'node disconnected');
  }

  cliRefused(peer: string, reason: CloseReason, details: string): void {
    if (CLOSE_RULES[reason].refusal) this.metrics.rejected.inc({ reason });
    this.log.warn({ peer, reason }, `CLI stream refused: ${details}`);
  }

  pendingRefused(): void {
    this.metrics.rejected.inc({ reason: 'max_pending' });
  }

  /** Counts what moved, logs failovers and handovers, and refreshes the touched pairs' gauges. */
  changeApplied(change: AssignmentChange): void {
    const m = this.metrics;
    /** Pairs whose failover this change counted already (a move, then its promoted standby). */
    const failedOver = new Set<string>();
    for (const r of change.reassignments) {
      if (r.to === undefined) {
        const left = this.assignment.streamerCount(r.pair);
        this.log.warn(
          { pair: r.pair, from: r.from, reason: r.reason, streamers: left },
          left === 0
            ? 'pair lost its last streamer and no other capable node can take it: the pair is unstreamed'
            : 'pair lost a streamer and no other capable node can take it',
        );
        continue;
      }
      m.reassignments.inc({ reason: r.reason });
      if (r.from !== undefined && FAILOVER_REASONS.has(r.reason)) {
        this.failedOver(r.pair, r.from, r.to, r.reason);
        failedOver.add(r.pair);
      }
    }
    for (const [pair, p] of change.primaryChanges) {
      if (p.from === undefined || p.to === undefined) continue;
      this.log.info(
        { pair, from: p.from, to: p.to, reason: p.reason },
        'standby streamer promoted to primary',
      );
      // The pair's prices come from its standby now, though no stream moved to a node (no
      // spare node, or a quiet primary made way): a failover all the same.
      if (p.reason !== undefined && FAILOVER_REASONS.has(p.reason) && !failedOver.has(pair))
        this.failedOver(pair, p.from, p.to, p.reason);
    }
    const touched = new Set<string>();
    for (const r of change.reassignments) touched.add(r.pair);
    for (const uuid of change.changedNodes)
      for (const pair of this.assignment.knownPairsOf(uuid)) touched.add(pair);
    this.refreshPairs(touched);
  }

  /** One failover of `pair` (a move, or a standby taking over), counted and logged. */
  private failedOver(pair: string, from: string, to: string, reason: string): void {
    this.metrics.failovers.inc({ pair });
    if (reason === 'stale') this.metrics.staleStreams.inc({ pair });
    this.log.info({ pair, from, to, reason }, 'pair failed over');
  }

  /** Totals always; per-pair series for `pairs` (a pair's series exist from 0). */
  refreshPairs(pairs: Iterable<string>): void {
    const m = this.metrics;
    const a = this.assignment;
    const known = a.knownPairCount();
    const streamed = a.streamedPairCount();
    m.pairsKnown.set(known);
    m.pairsStreamed.set(streamed);
    m.pairsUnstreamed.set(known - streamed);
    for (const pair of pairs) {
      if (!a.isKnown(pair)) continue;
      m.pairStreamers.set({ pair }, a.streamerCount(pair));
      if (this.seriesFromZero.has(pair)) continue;
      m.failovers.inc({ pair }, 0);
      m.staleStreams.inc({ pair }, 0);
      m.priceUpdates.inc({ pair }, 0);
      this.seriesFromZero.add(pair);
    }
  }

  /**
   * The per-pair gauges read at each scrape, for every known pair:
   * currency_controller_pair_capable_nodes, and currency_controller_price_deviation_ratio
   * (`deviation` of the pair: 0 with fewer than two streamers' recent prices); and the
   * price updates each pair's slot counted since the last scrape (pricesAccepted).
   */
  readAtScrape(deviation: (pair: string) => number): void {
    const a = this.assignment;
    this.metrics.readAtScrapeFrom({
      updates: (add) => {
        for (const slot of a.slots.values()) {
          if (slot.updates === 0) continue;
          add(slot.pair, slot.updates);
          slot.updates = 0;
        }
      },
      capable: (set) => {
        for (const pair of a.knownPairs()) set(pair, a.capableCount(pair));
      },
      deviation: (set) => {
        for (const pair of a.knownPairs()) set(pair, deviation(pair));
      },
    });
  }

  connections(nodes: number, clis: number): void {
    this.metrics.connectedNodes.set(nodes);
    this.metrics.connectedClis.set(clis);
  }

  pairForgotten(pair: string, idleMs: number): void {
    const m = this.metrics;
    m.pairsForgotten.inc();
    for (const metric of [
      m.pairStreamers,
      m.failovers,
      m.staleStreams,
      m.priceUpdates,
      m.priceDeviation,
      m.pairCapableNodes,
    ])
      metric.remove({ pair });
    this.seriesFromZero.delete(pair);
    this.log.info({ pair, idle_ms: idleMs }, 'pair forgotten: no capable node');
    this.refreshPairs([]);
  }

  pairsRefused(n: NodeFacts, refused: string[], limit: number): void {
    this.metrics.pairsRefused.inc(refused.length);
    this.log.warn(
      { node_uuid: n.uuid, refused: refused.slice(0, 10), count: refused.length, limit },
      'pairs refused: the controller holds CONTROLLER_MAX_KNOWN_PAIRS',
    );
  }

  /** A price update of the slot's pair was stored: counted in place, added at the next scrape. */
  pricesAccepted(slot: PairSlot): void {
    slot.updates++;
  }

  priceSuperseded(): void {
    this.metrics.pricesSuperseded.inc();
  }

  /** Refused prices of one frame: counted each, logged once per frame. */
  pricesRefused(
    n: NodeFacts,
    refused: { reason: PriceRefusal; problem: string }[],
    total: number,
  ): void {
    if (refused.length === 0) return;
    for (const r of refused) this.metrics.pricesRefused.inc({ reason: r.reason });
    this.log.warn(
      {
        node_uuid: n.uuid,
        peer: n.peer,
        problem: refused[0]!.problem,
        refused: refused.length,
        updates: total,
      },
      'price updates refused',
    );
  }

  malformed(peer: 'node' | 'cli', from: string, problem: string, count = 1): void {
    this.metrics.malformedFrames.inc({ peer }, count);
    this.log.warn({ peer_kind: peer, peer: from, problem }, 'malformed frame');
  }

  unknownCommand(peer: 'node' | 'cli', typeUrl: string | undefined, why: string): void {
    this.metrics.unknownCommands.inc({ peer });
    this.log.warn({ peer_kind: peer, type_url: typeUrl }, why);
  }

  watchDropped(): void {
    this.metrics.watchUpdatesDropped.inc();
  }

  commandFinished(
    command: string,
    outcome: string,
    seconds: number,
    span: Span,
    error?: string,
  ): void {
    this.metrics.commands.inc({ command, outcome });
    // Observed before the span ends, with its trace id as the exemplar (OpenMetrics scrapes
    // carry it; Grafana links the latency sample to the trace).
    const exemplar = traceExemplar(span);
    this.metrics.commandDuration.observe({
      labels: { command },
      value: Math.max(0, seconds),
      // prom-client types exemplar labels as the metric's own label names; ours are others.
      ...(exemplar ? { exemplarLabels: exemplar as LabelValues<string> } : {}),
    });
    span.setAttribute('currency.outcome', outcome);
    if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end();
  }
}
