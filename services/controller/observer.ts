/**
 * Metrics and log lines derived from the core's domain events, in one place: the core
 * says what happened, this decides how it is counted and told, so a log line and its
 * metric can never disagree.
 */
import type { LabelValues } from 'prom-client';
import type { Logger } from '../shared/logger';
import { type Span, SpanStatusCode, traceExemplar } from '../shared/tracing';
import type { Assignment, AssignmentChange } from './assignment';
import type { PriceRefusal } from './intake';
import { CLOSE_RULES, type CloseReason } from './links/close-reasons';
import type { ControllerMetrics } from './metrics';

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

  nodeChangedPairs(n: NodeFacts, pairs: string[]): void {
    this.log.info({ node_uuid: n.uuid, pairs }, 'node changed its pairs');
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

  /** Counts what moved, logs failovers, and refreshes the gauges of the touched pairs. */
  changeApplied(change: AssignmentChange): void {
    const m = this.metrics;
    for (const r of change.reassignments) {
      if (r.to === undefined) {
        this.log.warn(
          { pair: r.pair, from: r.from, reason: r.reason },
          'pair lost a streamer and no capable node can take it',
        );
        continue;
      }
      m.reassignments.inc({ reason: r.reason });
      if (r.from !== undefined && ['node_left', 'kicked', 'stale'].includes(r.reason)) {
        m.failovers.inc({ pair: r.pair });
        if (r.reason === 'stale') m.staleStreams.inc({ pair: r.pair });
        this.log.info(
          { pair: r.pair, from: r.from, to: r.to, reason: r.reason },
          'pair failed over',
        );
      }
    }
    const touched = new Set<string>();
    for (const r of change.reassignments) touched.add(r.pair);
    for (const uuid of change.changedNodes)
      for (const pair of this.assignment.knownPairsOf(uuid)) touched.add(pair);
    this.refreshPairs(touched);
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

  connections(nodes: number, clis: number): void {
    this.metrics.connectedNodes.set(nodes);
    this.metrics.connectedClis.set(clis);
  }

  pairForgotten(pair: string, idleMs: number): void {
    const m = this.metrics;
    m.pairsForgotten.inc();
    for (const metric of [m.pairStreamers, m.failovers, m.staleStreams, m.priceUpdates])
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

  pricesAccepted(pair: string): void {
    this.metrics.countPriceUpdates(pair);
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
