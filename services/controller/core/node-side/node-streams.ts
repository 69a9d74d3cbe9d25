/**
 * The node streams: each comes in as a link, registers (its UUID claimed, its pairs
 * announced), streams prices and replies, and leaves. Its pair set goes to the assignment
 * and every change to the core (`NodeStreamsHost.apply`), which sends the changed nodes
 * their desired state; prices go to the price intake, replies to CLI commands to the
 * routing.
 */
import type { StreamFromNode } from '../../../gen/protobuf/currency_nodes';
import { type Handlers, dispatch, pack, unpack } from '../../../shared/any';
import type { Logger } from '../../../shared/logger';
import type { Scheduler } from '../../../shared/scheduler';
import { KEEPALIVE_TIME_MS } from '../../../shared/grpc-options';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  KEEPALIVE_PERMIT_METADATA_KEY,
  NODE_NAME_METADATA_KEY,
  type NodeServerCall,
  PRICE_BATCH_MESSAGE,
} from '../../../shared/wire';
import type { ControllerLimits } from '../../config';
import { ANY_UUID, type NodeAdmission, claimRefusal } from '../../identity';
import { checkAnnouncedPairs, checkNodeUuid } from '../intake';
import { CLOSE_RULES, type CloseReason } from '../links/close-reasons';
import { type LinkHandlers, StreamLink } from '../links/stream-link';
import type { Observer } from '../observer';
import type { CommandRouting } from '../routing/command-routing';
import { nodeFrameRoute } from '../routing/routes';
import type { Assignment } from './assignment';
import type { AssignmentChange } from './assignment-change';
import type { PriceIntake } from './price-intake';
import type { NodeLink, NodeRegistry, NodeSession } from './registry';
import type { Upkeep } from './upkeep';

type NodeCtx = { session: NodeSession; frame: StreamFromNode };

/** What the node streams need of the core that owns them. */
export interface NodeStreamsHost {
  /** Whether this controller leads (only the leader takes node streams). */
  leading(): boolean;
  /** Why a standby refuses: names the leader. */
  standbyDetails(): string;
  /** Sends the changed nodes their desired state and records what moved. */
  apply(change: AssignmentChange): void;
  countConnections(): void;
}

export interface NodeStreamsDeps {
  scheduler: Scheduler;
  logger: Logger;
  limits: ControllerLimits;
  registry: NodeRegistry;
  assignment: Assignment;
  observer: Observer;
  routing: CommandRouting;
  intake: PriceIntake;
  upkeep: Upkeep;
}

export class NodeStreams {
  private readonly registry: NodeRegistry;
  private readonly assignment: Assignment;
  private readonly observer: Observer;
  private readonly routing: CommandRouting;
  private readonly intake: PriceIntake;
  private readonly upkeep: Upkeep;
  private readonly headers: Record<string, string> = {
    [CONTROLLER_ACCEPTS_METADATA_KEY]: PRICE_BATCH_MESSAGE,
    [KEEPALIVE_PERMIT_METADATA_KEY]: String(KEEPALIVE_TIME_MS),
  };

  constructor(
    private readonly deps: NodeStreamsDeps,
    private readonly host: NodeStreamsHost,
  ) {
    this.registry = deps.registry;
    this.assignment = deps.assignment;
    this.observer = deps.observer;
    this.routing = deps.routing;
    this.intake = deps.intake;
    this.upkeep = deps.upkeep;
  }

  attach(call: NodeServerCall, admission: NodeAdmission = ANY_UUID): void {
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
    if (!this.host.leading()) {
      link.close('not_leader', this.host.standbyDetails());
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
    this.host.countConnections();
  }

  /**
   * Ends every node stream with `reason`: each node is told and counted, and commands
   * waiting for it are answered, but its pairs are not moved to the others, which are
   * going too (the reason's `endsEveryStream` rule; the caller drops every node from the
   * assignment afterwards).
   */
  endAll(reason: 'shutdown' | 'not_leader', details?: string): void {
    for (const s of this.registry.all()) s.link.close(reason, details);
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
    const r = unpack(f.response);
    // One look-up by type: a price goes straight to its handler; anything else may answer
    // a CLI's command (by from_uuid, or in order from a node that does not echo it).
    const route = nodeFrameRoute(r.ok ? r.value.name : undefined);
    if (route !== 'price' && this.routing.takeReply(session, f, route)) return;
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
    this.host.apply(change);
    this.host.countConnections();
  }

  private onNodeClosed(session: NodeSession, reason: CloseReason): void {
    const holder = this.registry.remove(session);
    const uuid = session.uuid;
    this.observer.nodeClosed(session, reason, holder || reason === 'replaced');
    if (uuid !== undefined && (holder || reason === 'replaced'))
      this.routing.nodeGone(uuid, session.name, reason);
    if (holder && !CLOSE_RULES[reason].endsEveryStream)
      this.host.apply(
        this.assignment.removeNode(uuid!, reason === 'kicked' ? 'kicked' : 'node_left'),
      );
    this.host.countConnections();
  }
}
