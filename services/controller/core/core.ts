/**
 * The controller's core: it composes the node side (node-side/node-streams.ts: node
 * streams come in as links, register, stream prices and leave), the CLI side
 * (cli-side/cli-service.ts, which sees the core only as a CoreView) and the routing
 * between them (routing/command-routing.ts), and applies the node side's changes: the
 * assignment says who streams what, and every node whose set changed is sent its full
 * desired state. It also holds leadership and upkeep's actions (quiet streamers,
 * forgotten pairs).
 *
 * Data flow of one price update: NodeLink 'data' -> NodeStreams.onNodeFrame (UUID checked,
 * unpacked, routes.nodeFrameRoute: a price) -> PriceIntake.take (streamer check,
 * intake.checkPrice, primary check, PriceStore.offer, all on the pair's slot) ->
 * WatchFanout.deliver. A node's reply to a CLI's command: NodeStreams.onNodeFrame ->
 * CommandRouting.takeReply -> the CLI's stream.
 */
import { NODE_SERVICE, PROGRAMS } from '../../shared/protocol';
import { pack } from '../../shared/any';
import type { Logger } from '../../shared/logger';
import type { Random, Scheduler } from '../../shared/scheduler';
import {
  SpanKind,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../../shared/tracing';
import { type NodeServerCall, STANDBY_MESSAGE_PREFIX } from '../../shared/wire';
import { Assignment } from './node-side/assignment';
import type { AssignmentChange } from './node-side/assignment-change';
import { CliService } from './cli-side/cli-service';
import type { CoreView } from './core-view';
import type { ControllerLimits } from '../config';
import { desiredStateOf } from './node-side/desired-state';
import { WatchFanout } from './cli-side/fanout';
import { ANY_UUID, type NodeAdmission } from '../identity';
import { PriceIntake } from './node-side/price-intake';
import type { ControllerMetrics } from '../metrics';
import type { NodeView } from './node-side/node-list';
import { NodeStreams } from './node-side/node-streams';
import { Observer } from './observer';
import { PriceStore } from './node-side/prices';
import { NodeRegistry, type NodeSession } from './node-side/registry';
import { CommandRouting } from './routing/command-routing';
import { Upkeep } from './node-side/upkeep';

export type { NodeView } from './node-side/node-list';

const TRACER = PROGRAMS.controller;

export interface CoreDeps {
  scheduler: Scheduler;
  random: Random;
  logger: Logger;
  metrics: ControllerMetrics;
  appVersion: string;
  streamsPerPair: number;
  newId: () => string;
  limits: ControllerLimits;
  /** Whether this controller starts as the leader (false under leader election). */
  leading?: boolean;
}

export class ControllerCore implements CoreView {
  readonly assignment: Assignment;
  /** The latest prices, in the assignment's pair slots (one lookup per price update). */
  readonly prices: PriceStore;
  private readonly registry: NodeRegistry;
  private readonly routing: CommandRouting;
  private readonly fanout: WatchFanout;
  private readonly observer: Observer;
  private readonly cli: CliService;
  private readonly upkeep: Upkeep;
  /** Price intake; also takes the prices a standby follows from the leader. */
  readonly intake: PriceIntake;
  private readonly nodeStreams: NodeStreams;
  /** Leader election: only the leader takes node streams (undefined leader: not known). */
  private leading: boolean;
  private leaderIdentity?: string;
  /** A graceful stop began (closeNodes): CLI streams end with `shutdown` soon. */
  private stopping = false;

  constructor(private readonly deps: CoreDeps) {
    this.leading = deps.leading ?? true;
    this.assignment = new Assignment(deps.streamsPerPair, deps.random);
    this.prices = new PriceStore(this.assignment.slots);
    this.registry = new NodeRegistry(deps.limits.maxNodes);
    this.observer = new Observer(deps.metrics, deps.logger, this.assignment);
    this.fanout = new WatchFanout({
      scheduler: deps.scheduler,
      maxQueuedMessages: deps.limits.maxQueuedMessages,
      slowWatcherMs: deps.limits.slowWatcherMs,
      onDropped: () => this.observer.watchDropped(),
    });
    this.routing = new CommandRouting({
      scheduler: deps.scheduler,
      newId: deps.newId,
      maxPendingPerCli: deps.limits.maxPendingPerCli,
      nodes: this.registry,
      observer: this.observer,
    });
    this.cli = new CliService({
      ...deps,
      core: this,
      routing: this.routing,
      fanout: this.fanout,
      observer: this.observer,
      registry: this.registry,
      assignment: this.assignment,
      prices: this.prices,
    });
    deps.metrics.streamsPerPair.set(deps.streamsPerPair);
    deps.metrics.info.set({ version: deps.appVersion }, 1);
    this.observer.refreshPairs([]);
    this.countConnections();
    this.upkeep = new Upkeep(deps.scheduler, this.assignment, deps.limits, {
      quiet: (uuid, pair, quietMs) => this.quiet(uuid, pair, quietMs),
      forget: (pair, idleMs) => this.forget(pair, idleMs),
    });
    this.observer.readAtScrape((pair) =>
      this.prices.deviation(pair, deps.scheduler.now(), deps.limits.staleStreamMs),
    );
    this.intake = new PriceIntake({
      ...deps,
      assignment: this.assignment,
      prices: this.prices,
      registry: this.registry,
      fanout: this.fanout,
      observer: this.observer,
      upkeep: this.upkeep,
    });
    this.nodeStreams = new NodeStreams(
      {
        ...deps,
        registry: this.registry,
        assignment: this.assignment,
        observer: this.observer,
        routing: this.routing,
        intake: this.intake,
        upkeep: this.upkeep,
      },
      {
        leading: () => this.leading,
        standbyDetails: () => this.standbyDetails(),
        apply: (change) => this.apply(change),
        countConnections: () => this.countConnections(),
      },
    );
  }

  // ------------------------------------------------------------------ queries

  /** Registered nodes, by name then UUID. */
  connectedNodes(): NodeView[] {
    return this.registry.registered().map((s) => this.viewOf(s));
  }

  openStreamCount(): { nodes: number; clis: number; pending: number } {
    return {
      nodes: this.registry.openCount(),
      clis: this.cli.openCount(),
      pending: this.routing.pendingCount(),
    };
  }

  // ------------------------------------------------------------------ CoreView (the CLI side's)

  viewOf(s: NodeSession, { withPairs = true }: { withPairs?: boolean } = {}): NodeView {
    return {
      uuid: s.uuid!,
      name: s.name,
      peer: s.link.peer,
      connectedAtMs: s.connectedAtMs,
      knownPairs: withPairs ? this.assignment.knownPairsOf(s.uuid!) : [],
      streamingPairs: withPairs ? this.assignment.streamingPairsOf(s.uuid!) : [],
    };
  }

  // ------------------------------------------------------------------ streams

  attachCli(call: Parameters<CliService['attach']>[0]): void {
    this.cli.attach(call);
  }

  attachNode(call: NodeServerCall, admission: NodeAdmission = ANY_UUID): void {
    this.nodeStreams.attach(call, admission);
  }

  /**
   * Leader election said this controller leads, or no longer does. A standby (or a leader
   * that could not renew: fencing) holds no node stream: every one is ended at once with
   * UNAVAILABLE naming the leader, and new ones are refused, so nodes go to the leader.
   * CLI commands that need the leader are refused the same way, and open watches are told.
   */
  setLeading(leading: boolean, leaderIdentity?: string): void {
    this.leading = leading;
    this.leaderIdentity = leaderIdentity;
    if (leading) return;
    this.endNodeStreams('not_leader', this.standbyDetails());
    // Stopping: the watches end with `shutdown` instead, once the Lease is released, which
    // is the cue a following standby takes over on (Follower.onLeaderStopping).
    if (!this.stopping) this.cli.standbyNow(this.standbyDetails());
  }

  standbyReason(): string | undefined {
    // A controller stopping gracefully answers as before until its CLI streams end with
    // `shutdown` (after the Lease is released): a standby following it must see that cue.
    return this.leading || this.stopping ? undefined : this.standbyDetails();
  }

  clisChanged(): void {
    this.countConnections();
  }

  private standbyDetails(): string {
    return `${STANDBY_MESSAGE_PREFIX}; the leader is ${this.leaderIdentity ?? 'not known yet'}`;
  }

  /** Disconnects a node (it reconnects by itself); its pairs move at once. */
  kick(uuid: string): boolean {
    const s = this.registry.get(uuid);
    if (!s) return false;
    s.link.close('kicked', 'kicked by an operator');
    return true;
  }

  /** Ends every stream: nodes see a clean end and reconnect to the next controller. */
  closeAll(): void {
    this.closeNodes();
    this.cli.closeAll();
  }

  /** Ends every node stream (`shutdown`) and stops upkeep: this controller assigns no more. */
  closeNodes(): void {
    this.stopping = true;
    this.upkeep.stop();
    this.endNodeStreams('shutdown');
  }

  /**
   * Ends every node stream at once (this controller stops, or stops leading). Each node is
   * told and counted, but no pair moves among nodes that are all going, and no node is sent
   * a desired state: the assignment drops them all in one pass. (Moving each leaving node's
   * pairs to the next node about to leave took seconds at fleet scale, before the Lease
   * could go back, and counted every move as a failover.) What remains is what remained
   * after the nodes had left one by one: every pair known, none streamed, latest prices kept.
   */
  private endNodeStreams(reason: 'shutdown' | 'not_leader', details?: string): void {
    this.nodeStreams.endAll(reason, details);
    const pairs = this.assignment.removeAllNodes();
    this.upkeep.forgetAllProgress();
    this.prices.forgetAllStreamers();
    this.observer.refreshPairs(pairs);
  }

  /** Ends every CLI stream (`shutdown`); a standby following our prices takes that as its cue. */
  closeClis(): void {
    this.cli.closeAll();
  }

  // ------------------------------------------------------------------ assignment

  /**
   * Sends every changed node its full desired state, hands each pair whose primary changed
   * to its new primary (with the latest price it sent as a standby), and records what moved.
   */
  private apply(change: AssignmentChange): void {
    for (const r of change.reassignments) {
      if (r.from === undefined) continue;
      // r.from streams r.pair no more: if it is given the pair again it starts afresh.
      this.upkeep.unmark(r.from, r.pair);
      this.prices.dropStreamer(r.pair, r.from);
    }
    for (const uuid of change.changedNodes) {
      this.registry.entryChanged(uuid);
      for (const pair of this.assignment.streamingPairsOf(uuid)) this.upkeep.markIfNew(uuid, pair);
      this.sendDesiredState(uuid);
    }
    for (const [pair, p] of change.primaryChanges)
      if (p.to !== undefined) this.intake.promoted(pair, p.to);
    this.observer.changeApplied(change);
  }

  private sendDesiredState(uuid: string): void {
    const session = this.registry.get(uuid);
    if (!session) return;
    const states = desiredStateOf(this.assignment, this.prices, uuid);
    const streaming = this.assignment.streamingPairsOf(uuid);
    const { span, ctx } = startCommandSpan(
      TRACER,
      'controller assign',
      SpanKind.PRODUCER,
      undefined,
      {
        ...rpcAttributes(NODE_SERVICE, 'NodeStreamModifyStateV1Req'),
        'currency.node_uuid': uuid,
        'currency.pairs': streaming,
      },
    );
    runIn(ctx, () => {
      this.deps.logger.debug({ node_uuid: uuid, streaming }, 'sending desired stream state');
      // A request id of our own, so a peer that echoes from_uuid (as the original
      // controller expects of every reply) has one to echo.
      session.link.send({
        fromUuid: this.deps.newId(),
        command: pack('NodeStreamModifyStateV1Req', { streamStates: states }),
        traceContext: injectContext(ctx),
      });
    });
    span.end();
  }

  // ------------------------------------------------------------------ upkeep

  /**
   * A quiet streamer loses `pair` to another capable node, if there is one; else a quiet
   * primary makes way for a standby that still sends prices, and keeps streaming (true only
   * if the pair moved away from it).
   */
  private quiet(uuid: string, pair: string, quietMs: number): boolean {
    const now = this.deps.scheduler.now();
    const change = this.assignment.demote(uuid, pair, (u) => this.upkeep.isLive(u, pair, now));
    if (change.reassignments.length > 0) {
      this.deps.logger.warn(
        { pair, node_uuid: uuid, quiet_ms: quietMs },
        'streamer sent no price; the pair moves to another node',
      );
      this.apply(change);
      return true;
    }
    if (change.primaryChanges.size > 0) {
      this.deps.logger.warn(
        { pair, node_uuid: uuid, quiet_ms: quietMs },
        'primary streamer sent no price; a standby is primary now (no other node can take the pair)',
      );
      this.apply(change);
    }
    return false; // it still streams the pair: watched on
  }

  private forget(pair: string, idleMs: number): void {
    if (!this.assignment.forgetPair(pair)) return;
    this.prices.delete(pair);
    this.observer.pairForgotten(pair, idleMs);
  }

  private countConnections(): void {
    this.observer.connections(this.registry.registeredCount(), this.cli.openCount());
  }
}
