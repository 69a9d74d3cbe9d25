/**
 * The controller's core, node side: node streams come in as links, register, stream
 * prices and leave; the assignment says who streams what, and every node whose set
 * changed is sent its full desired state. CLI streams are cli-service.ts's. The only
 * grpc-js here is the call handed to a link.
 *
 * Data flow of one price update: NodeLink 'data' -> onNodeFrame (UUID checked, unpacked)
 * -> PriceIntake.take (intake.checkPrice, streamer check, primary check, PriceStore.offer)
 * -> WatchFanout.deliver.
 */
import { NODE_SERVICE, PROGRAMS } from '../shared/protocol';
import type { StreamFromNode } from '../gen/protobuf/currency_nodes';
import { type Handlers, dispatch, pack, unpack } from '../shared/any';
import type { Logger } from '../shared/logger';
import type { Random, Scheduler } from '../shared/scheduler';
import { KEEPALIVE_TIME_MS } from '../shared/grpc-options';
import { SpanKind, injectContext, rpcAttributes, runIn, startCommandSpan } from '../shared/tracing';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  KEEPALIVE_PERMIT_METADATA_KEY,
  NODE_NAME_METADATA_KEY,
  type NodeServerCall,
  PRICE_BATCH_MESSAGE,
  STANDBY_MESSAGE_PREFIX,
} from '../shared/wire';
import { Assignment, type AssignmentChange } from './assignment';
import { CliService } from './cli-service';
import type { CliSession } from './cli-session';
import type { ControllerLimits } from './config';
import { desiredStateOf } from './desired-state';
import { WatchFanout } from './fanout';
import { ANY_UUID, type NodeAdmission, claimRefusal } from './identity';
import { checkAnnouncedPairs, checkNodeUuid } from './intake';
import { PriceIntake } from './price-intake';
import type { CloseReason } from './links/close-reasons';
import { type LinkHandlers, StreamLink } from './links/stream-link';
import type { ControllerMetrics } from './metrics';
import type { NodeView } from './node-list';
import { Observer } from './observer';
import { PriceStore } from './prices';
import { type NodeLink, NodeRegistry, type NodeSession } from './registry';
import { Router } from './router';
import { Upkeep } from './upkeep';

export type { NodeView } from './node-list';

const TRACER = PROGRAMS.controller;
/** Replies to commands a CLI routed to a node. */
const ROUTED_REPLIES: ReadonlySet<string> = new Set(['NodeStatusV1Reply', 'NodeShutdownV1Reply']);

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

type NodeCtx = { session: NodeSession; frame: StreamFromNode };

export class ControllerCore {
  readonly assignment: Assignment;
  readonly prices = new PriceStore();
  private readonly registry: NodeRegistry;
  private readonly router = new Router<CliSession>();
  private readonly fanout: WatchFanout;
  private readonly observer: Observer;
  private readonly cli: CliService;
  private readonly upkeep: Upkeep;
  /** Price intake; also takes the prices a standby follows from the leader. */
  readonly intake: PriceIntake;
  /** Leader election: only the leader takes node streams (undefined leader: not known). */
  private leading: boolean;
  private leaderIdentity?: string;
  /** A graceful stop began (closeNodes): CLI streams end with `shutdown` soon. */
  private stopping = false;
  private readonly headers: Record<string, string> = {
    [CONTROLLER_ACCEPTS_METADATA_KEY]: PRICE_BATCH_MESSAGE,
    [KEEPALIVE_PERMIT_METADATA_KEY]: String(KEEPALIVE_TIME_MS),
  };

  constructor(private readonly deps: CoreDeps) {
    this.leading = deps.leading ?? true;
    this.assignment = new Assignment(deps.streamsPerPair, deps.random);
    this.registry = new NodeRegistry(deps.limits.maxNodes);
    this.observer = new Observer(deps.metrics, deps.logger, this.assignment);
    this.fanout = new WatchFanout({
      scheduler: deps.scheduler,
      maxQueuedMessages: deps.limits.maxQueuedMessages,
      slowWatcherMs: deps.limits.slowWatcherMs,
      onDropped: () => this.observer.watchDropped(),
    });
    this.cli = new CliService({
      ...deps,
      registry: this.registry,
      router: this.router,
      fanout: this.fanout,
      observer: this.observer,
      assignment: this.assignment,
      prices: this.prices,
      viewOf: (s) => this.viewOf(s),
      kick: (uuid) => this.kick(uuid),
      onClisChanged: () => this.countConnections(),
      // A controller stopping gracefully answers as before until its CLI streams end with
      // `shutdown` (after the Lease is released): a standby following it must see that cue.
      standby: () => (this.leading || this.stopping ? undefined : this.standbyDetails()),
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
      pending: this.router.size(),
    };
  }

  private viewOf(s: NodeSession): NodeView {
    return {
      uuid: s.uuid!,
      name: s.name,
      peer: s.link.peer,
      connectedAtMs: s.connectedAtMs,
      knownPairs: this.assignment.knownPairsOf(s.uuid!),
      streamingPairs: this.assignment.streamingPairsOf(s.uuid!),
    };
  }

  // ------------------------------------------------------------------ streams

  attachCli(call: Parameters<CliService['attach']>[0]): void {
    this.cli.attach(call);
  }

  attachNode(call: NodeServerCall, admission: NodeAdmission = ANY_UUID): void {
    const { scheduler, limits } = this.deps;
    const link: NodeLink = new StreamLink(
      call,
      { scheduler, maxQueuedMessages: limits.maxQueuedMessages, headers: this.headers },
      this.nodeLinkHandlers,
    );
    const session: NodeSession = {
      link,
      peer: link.peer,
      name: (link.header(NODE_NAME_METADATA_KEY) ?? '').slice(0, 256),
      connectedAtMs: scheduler.now(),
      admission,
      registered: false,
    };
    link.owner = session;
    if (!this.leading) {
      link.close('not_leader', this.standbyDetails());
      return;
    }
    if (!this.registry.hasRoom()) {
      link.close(
        'max_nodes',
        `the controller holds its limit of ${limits.maxNodes} nodes (node streams, registered or not)`,
      );
      return;
    }
    this.registry.add(session);
    link.open();
    session.cancelRegisterTimeout = link.after(limits.registerTimeoutMs, () => {
      if (!session.registered)
        link.close(
          'register_timeout',
          `no NodeKnownCurrenciesV1Notify within ${limits.registerTimeoutMs} ms`,
        );
    });
    this.countConnections();
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
    for (const s of this.registry.all()) s.link.close('not_leader', this.standbyDetails());
    // Stopping: the watches end with `shutdown` instead, once the Lease is released, which
    // is the cue a following standby takes over on (Follower.onLeaderStopping).
    if (!this.stopping) this.cli.standbyNow(this.standbyDetails());
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
    for (const s of this.registry.all()) s.link.close('shutdown');
  }

  /** Ends every CLI stream (`shutdown`); a standby following our prices takes that as its cue. */
  closeClis(): void {
    this.cli.closeAll();
  }

  private onNodeFrame(session: NodeSession, frame: Frame<StreamFromNode>): void {
    const peer = session.link.peer;
    if (!frame.ok) {
      this.observer.malformed(
        'node',
        peer,
        `undecodable frame (${frame.bytes} bytes): ${frame.error}`,
      );
      return;
    }
    const f = frame.value;
    const id = checkNodeUuid(f, session.uuid);
    if (!id.ok) {
      this.observer.malformed('node', peer, id.problem);
      return;
    }
    if (session.uuid === undefined) {
      session.uuid = id.value;
      if (this.refusedClaim(session)) return;
    }
    if (f.fromUuid && this.router.has(f.fromUuid)) {
      this.cli.forwardReply(session, f);
      return;
    }
    const r = unpack(f.response);
    if (!f.fromUuid && r.ok && ROUTED_REPLIES.has(r.value.name)) {
      // A foreign node that does not echo from_uuid: its replies come in the order the
      // commands went out, so the oldest command waiting for it is the one answered.
      const oldest = this.router.oldestFor(session.uuid);
      if (oldest !== undefined) return this.cli.forwardReply(session, { ...f, fromUuid: oldest });
    }
    if (!r.ok) {
      if (r.reason === 'missing') return; // an empty frame carries nothing to act on
      if (r.reason === 'malformed') {
        this.observer.malformed('node', peer, `${r.typeUrl} payload does not decode: ${r.error}`);
        return;
      }
    } else if (dispatch(this.nodeHandlers, r.value, { session, frame: f })) return;
    this.observer.unknownCommand('node', f.response?.typeUrl, 'unknown command from node');
    session.link.send({
      command: pack('UnknownCommandV1Notify', { command: f.response }),
      traceContext: {},
    });
  }

  /** One set for every node stream: the link carries its session. */
  private readonly nodeLinkHandlers: LinkHandlers<StreamFromNode, NodeLink> = {
    onFrame: (link, frame) => this.onNodeFrame(link.owner, frame),
    onClosed: (link, reason) => this.onNodeClosed(link.owner, reason),
  };

  private readonly nodeHandlers: Handlers<NodeCtx> = {
    NodeKnownCurrenciesV1Notify: (m, { session }) => this.register(session, m.knownCurrencyPairs),
    NodePriceUpdateV1Notify: (m, { session, frame }) =>
      this.intake.take(session, [m], frame.traceContext),
    NodePriceUpdatesV1Notify: (m, { session, frame }) =>
      this.intake.take(session, m.updates, frame.traceContext),
    // Replies to our own commands (a foreign node may leave from_uuid empty), and late
    // replies to commands whose CLI has gone: nothing to forward.
    NodeStreamModifyStateV1Reply: () => {},
    NodeStatusV1Reply: () => {},
    NodeShutdownV1Reply: () => {},
    UnknownCommandV1Notify: (m, { session }) =>
      this.deps.logger.warn(
        { node_uuid: session.uuid, type_url: m.command?.typeUrl },
        'node did not understand a command',
      ),
  };

  /** Refuses (logs, counts, closes) a claim its credential does not allow; true if refused. */
  private refusedClaim(session: NodeSession): boolean {
    const uuid = session.uuid!;
    const holder = this.registry.get(uuid);
    const because = claimRefusal(
      uuid,
      session.admission,
      holder === session ? undefined : holder?.admission,
    );
    if (because === undefined) return false;
    session.admission.refuseClaim(uuid, because);
    session.link.close('uuid_not_allowed', `node UUID ${uuid} refused: ${because}`);
    return true;
  }

  private register(session: NodeSession, announced: string[]): void {
    const uuid = session.uuid!;
    const { limits } = this.deps;
    const { pairs, problems } = checkAnnouncedPairs(announced);
    if (problems.length > 0)
      this.observer.malformed(
        'node',
        session.link.peer,
        `node ${uuid}: ${problems[0]}`,
        problems.length,
      );
    if (pairs.size > limits.maxPairsPerNode) {
      session.link.close(
        'max_pairs',
        `announces ${pairs.size} pairs; the limit is ${limits.maxPairsPerNode}`,
      );
      return;
    }
    const fresh = [...pairs].filter((p) => !this.assignment.isKnown(p)).sort();
    const room = Math.max(0, limits.maxKnownPairs - this.assignment.knownPairCount());
    if (fresh.length > room) {
      const refused = fresh.slice(room);
      for (const p of refused) pairs.delete(p);
      this.observer.pairsRefused(session, refused, limits.maxKnownPairs);
    }
    let change: AssignmentChange;
    if (this.registry.isHolder(session)) {
      // A new set on the live stream: the node withdraws the pairs it left out (their
      // upstream failed) and offers again the ones it added (the upstream answers again).
      const before = this.assignment.knownPairsOf(uuid);
      const withdrawn = before.filter((p) => !pairs.has(p));
      const restored = [...pairs].filter((p) => !before.includes(p)).sort();
      change = this.assignment.updatePairs(uuid, pairs, 'withdrawn');
      this.observer.nodeChangedPairs(session, [...pairs], withdrawn, restored);
    } else {
      // The holder may have registered since this stream's first frame.
      if (this.refusedClaim(session)) return;
      const displaced = this.registry.register(session);
      if (displaced) {
        // The newer stream wins (a restarted node must be able to take over its half-dead
        // old connection); the displaced node is told why and backs off for 30 s.
        this.observer.nodeReplaced(session, displaced);
        displaced.link.close(
          'replaced',
          `replaced by a newer stream with the same node UUID ${uuid} from ${session.link.peer}`,
        );
        change = this.assignment.updatePairs(uuid, pairs, 'pairs_changed');
        for (const pair of this.assignment.streamingPairsOf(uuid)) this.upkeep.mark(uuid, pair);
      } else {
        change = this.assignment.addNode(uuid, pairs);
        this.observer.nodeRegistered(session, [...pairs]);
      }
    }
    change.changedNodes.add(uuid);
    this.apply(change);
    this.countConnections();
  }

  private onNodeClosed(session: NodeSession, reason: CloseReason): void {
    const holder = this.registry.remove(session);
    const uuid = session.uuid;
    this.observer.nodeClosed(session, reason, holder || reason === 'replaced');
    if (uuid !== undefined && (holder || reason === 'replaced'))
      this.cli.nodeGone(uuid, session.name, reason);
    if (holder)
      this.apply(this.assignment.removeNode(uuid!, reason === 'kicked' ? 'kicked' : 'node_left'));
    this.countConnections();
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
