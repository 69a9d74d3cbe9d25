/**
 * The controller's state and routing: node sessions, CLI sessions, the assignment of
 * pairs to nodes, the latest prices, and the commands in flight between CLIs and nodes.
 * Transport-agnostic apart from the grpc-js call objects it writes to.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type CurrencyStreamStateV1,
  type StreamFromCli,
  type StreamFromNode,
  type StreamToCli,
} from '../gen/protobuf/currency_nodes';
import {
  type Handlers,
  type MessageName,
  type MessageOf,
  type Unpacked,
  dispatch,
  commandNameOf,
  pack,
  typeUrlOf,
  unpack,
} from '../shared/any';
import type { Scheduler, Random } from '../shared/scheduler';
import { PAIR_PATTERN } from '../shared/config';
import type { Logger } from '../shared/logger';
import { msFromTimestamp, timestampFromMs } from '../shared/time';
import {
  type Span,
  SpanKind,
  SpanStatusCode,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../shared/tracing';
import {
  type CliServerCall,
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  type NodeServerCall,
  PRICE_BATCH_MESSAGE,
  bufferOf,
  isUuid,
} from '../shared/wire';
import { Assignment, type AssignmentChange } from './assignment';
import type { ControllerMetrics } from './metrics';
import { type NodeView, compareNodes, encodeListNodesReply, encodeNodeInfo } from './node-list';
import { PriceStore } from './prices';

export type { NodeView } from './node-list';

const TRACER = 'currency-controller';
const CLI_SERVICE = 'protobuf.CliCmdStream';
const NODE_SERVICE = 'protobuf.NodeCmdStream';

/** Commands a CLI may send through the controller to nodes. */
const NODE_COMMANDS: ReadonlySet<MessageName> = new Set<MessageName>([
  'NodeStatusV1Req',
  'NodeShutdownV1Req',
]);

export type DisconnectReason = 'closed' | 'lost' | 'kicked' | 'replaced' | 'shutdown' | 'rejected';

interface NodeSession {
  readonly call: NodeServerCall;
  readonly peer: string;
  readonly name: string;
  readonly connectedAtMs: number;
  uuid?: string;
  registered: boolean;
  closed: boolean;
  /** This node's encoded `controller nodes` entry; dropped whenever its pairs change. */
  listEntry?: Uint8Array;
}

interface CliSession {
  readonly call: CliServerCall;
  readonly peer: string;
  closed: boolean;
  /** stream_id -> the watch on it. */
  readonly watches: Map<string, Watch>;
  /** stream_id -> updates of batched watches waiting for the end of this event-loop turn. */
  readonly batches: Map<string, PairPrice[]>;
  readonly pendingIds: Set<string>;
  /** When a watch update was last written (or the session opened), for the slow-consumer rule. */
  lastWatchWriteMs: number;
}

interface Watch {
  /** Pairs watched (null: all pairs). */
  readonly pairs: Set<string> | null;
  /** V2: updates go out as ControllerPriceUpdatesV1Notify, one per event-loop turn. */
  readonly batched: boolean;
}

type PairPrice = MessageOf<'ControllerPriceUpdatesV1Notify'>['prices'][number];

/** Most updates in one ControllerPriceUpdatesV1Notify (about 80 bytes each). */
const MAX_WATCH_BATCH = 1000;
/**
 * Batches a watch stream may have queued before its watches lose updates: each batch is
 * a whole event-loop turn of updates, so a stream this far behind is not reading.
 */
const WATCH_BATCH_QUEUE_LIMIT = 16;

/** One CLI command routed to one or more nodes. */
interface RoutedCommand {
  readonly command: string;
  readonly startedAtMs: number;
  readonly cli: CliSession;
  readonly streamId: string;
  readonly span: Span;
  readonly outstanding: Set<string>;
  answered: number;
}

interface PendingReply {
  readonly nodeUuid: string;
  readonly routed: RoutedCommand;
}

/** Bounds on what peers can make the controller hold (CONTROLLER_MAX_* variables). */
export interface HubLimits {
  maxNodes: number;
  maxPairsPerNode: number;
  maxCliStreams: number;
  /** Commands a CLI stream may have waiting for node replies at once. */
  maxPendingPerCli: number;
  /** Messages queued for a peer that is not reading before it is disconnected. */
  maxQueuedMessages: number;
  /** How long a watcher may go without taking a single update before it is disconnected. */
  slowWatcherMs: number;
}

export const DEFAULT_LIMITS: HubLimits = {
  maxNodes: 20_000,
  maxPairsPerNode: 1000,
  maxCliStreams: 1000,
  maxPendingPerCli: 1000,
  maxQueuedMessages: 1000,
  slowWatcherMs: 10_000,
};

export interface HubDeps {
  clock: Scheduler;
  random: Random;
  logger: Logger;
  metrics: ControllerMetrics;
  appVersion: string;
  streamsPerPair: number;
  newId: () => string;
  limits?: HubLimits;
}

type CliCtx = { cli: CliSession; frame: StreamFromCli; span: Span; startedAtMs: number };
type NodeCtx = { session: NodeSession; frame: StreamFromNode };
type PriceUpdate = MessageOf<'NodePriceUpdateV1Notify'>;

/** Response headers of every node stream: the optional messages this controller takes. */
function acceptsMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(CONTROLLER_ACCEPTS_METADATA_KEY, PRICE_BATCH_MESSAGE);
  return md;
}

export class Hub {
  readonly assignment: Assignment;
  readonly prices = new PriceStore();
  private readonly nodes = new Map<string, NodeSession>();
  private readonly nodeSessions = new Set<NodeSession>();
  private readonly cliSessions = new Set<CliSession>();
  private readonly pending = new Map<string, PendingReply>();
  private readonly log: Logger;
  private readonly limits: HubLimits;
  /** Registered nodes in `controller nodes` order; rebuilt after a join or a leave. */
  private sortedNodes?: NodeSession[];
  /** The last `controller nodes` reply; dropped by anything that changes what it shows. */
  private listNodesReply?: Any;
  /** Watch updates a CLI stream may have queued before its watches start losing updates. */
  private readonly watchQueueLimit: number;
  /** CLI streams with batched watch updates to send at the end of this event-loop turn. */
  private readonly batchesDue = new Set<CliSession>();
  private batchFlush?: NodeJS.Immediate;

  constructor(private readonly deps: HubDeps) {
    this.limits = deps.limits ?? DEFAULT_LIMITS;
    // Half the disconnect limit, so that a burst of updates is queued rather than dropped
    // and a watch stream is never disconnected by its own updates.
    this.watchQueueLimit = Math.max(16, Math.floor(this.limits.maxQueuedMessages / 2));
    this.assignment = new Assignment(deps.streamsPerPair, deps.random);
    this.log = deps.logger;
    deps.metrics.streamsPerPair.set(deps.streamsPerPair);
    deps.metrics.info.set({ version: deps.appVersion }, 1);
    this.refreshGauges();
  }

  // ------------------------------------------------------------------ queries

  /** Registered nodes, by name then UUID. */
  connectedNodes(): NodeView[] {
    return this.registeredSorted().map((s) => this.viewOf(s));
  }

  private viewOf(s: NodeSession): NodeView {
    return {
      uuid: s.uuid!,
      name: s.name,
      peer: s.peer,
      connectedAtMs: s.connectedAtMs,
      knownPairs: this.assignment.knownPairsOf(s.uuid!),
      streamingPairs: this.assignment.streamingPairsOf(s.uuid!),
    };
  }

  private registeredSorted(): NodeSession[] {
    this.sortedNodes ??= [...this.nodes.values()].sort((a, b) =>
      compareNodes({ name: a.name, uuid: a.uuid! }, { name: b.name, uuid: b.uuid! }),
    );
    return this.sortedNodes;
  }

  /**
   * The packed ControllerListNodesV1Reply. Kept until a node joins, leaves or changes
   * pairs, and rebuilt from per-node entries that are themselves kept, so that listing
   * 10,000 nodes costs little CPU on a controller that is busy with them.
   */
  private listNodesAny(): Any {
    if (!this.listNodesReply) {
      const entries = this.registeredSorted().map((s) => {
        s.listEntry ??= encodeNodeInfo(this.viewOf(s));
        return { uuid: s.uuid!, info: s.listEntry };
      });
      this.listNodesReply = {
        typeUrl: typeUrlOf('ControllerListNodesV1Reply'),
        value: bufferOf(encodeListNodesReply(entries)),
      };
    }
    return this.listNodesReply;
  }

  /** A node joined, left or was replaced: the order and the reply are rebuilt on demand. */
  private nodesChanged(): void {
    this.sortedNodes = undefined;
    this.listNodesReply = undefined;
  }

  openStreamCount(): { nodes: number; clis: number; pending: number } {
    return {
      nodes: this.nodeSessions.size,
      clis: this.cliSessions.size,
      pending: this.pending.size,
    };
  }

  // ------------------------------------------------------------------ node streams

  attachNode(call: NodeServerCall): void {
    const nameMeta = call.metadata.get('x-currency-node-name')[0];
    const session: NodeSession = {
      call,
      peer: call.getPeer(),
      name: typeof nameMeta === 'string' ? nameMeta.slice(0, 256) : '',
      connectedAtMs: this.deps.clock.now(),
      registered: false,
      closed: false,
    };
    this.nodeSessions.add(session);
    try {
      call.sendMetadata(acceptsMetadata());
    } catch (err) {
      this.log.debug({ err, peer: session.peer }, 'could not send response headers');
    }
    call.on('data', (frame: Frame<StreamFromNode>) => this.onNodeFrame(session, frame));
    call.on('end', () => this.closeNode(session, 'closed'));
    call.on('cancelled', () => this.closeNode(session, 'lost'));
    call.on('error', () => this.closeNode(session, 'lost'));
    call.on('close', () => this.closeNode(session, 'lost'));
  }

  /** Disconnects a node (it reconnects by itself); its pairs move at once. */
  kick(uuid: string): boolean {
    const session = this.nodes.get(uuid);
    if (!session) return false;
    this.closeNode(session, 'kicked', {
      code: grpc.status.UNAVAILABLE,
      details: 'kicked by an operator',
    });
    return true;
  }

  private onNodeFrame(session: NodeSession, frame: Frame<StreamFromNode>): void {
    if (session.closed) return;
    if (!frame.ok) {
      this.malformed(
        'node',
        session.peer,
        `undecodable frame (${frame.bytes} bytes): ${frame.error}`,
      );
      return;
    }
    const f = frame.value;
    if (!isUuid(f.nodeUuid)) {
      this.malformed('node', session.peer, `node_uuid "${f.nodeUuid.slice(0, 64)}" is not a UUID`);
      return;
    }
    const uuid = f.nodeUuid.toLowerCase();
    if (session.uuid === undefined) session.uuid = uuid;
    else if (session.uuid !== uuid) {
      this.malformed(
        'node',
        session.peer,
        `node_uuid changed from ${session.uuid} to ${uuid} on one stream`,
      );
      return;
    }
    if (f.fromUuid && this.pending.has(f.fromUuid)) {
      this.forwardReply(session, f);
      return;
    }
    const r = unpack(f.response);
    if (!r.ok) {
      if (r.reason === 'missing') return; // an empty frame carries nothing to act on
      if (r.reason === 'malformed') {
        this.malformed('node', session.peer, `${r.typeUrl} payload does not decode: ${r.error}`);
        return;
      }
      this.answerUnknownToNode(session, f.response!);
      return;
    }
    if (!dispatch(this.nodeHandlers, r.value, { session, frame: f })) {
      this.answerUnknownToNode(session, f.response!);
    }
  }

  private readonly nodeHandlers: Handlers<NodeCtx> = {
    NodeKnownCurrenciesV1Notify: (m, { session }) => this.register(session, m.knownCurrencyPairs),
    NodePriceUpdateV1Notify: (m, { session, frame }) => {
      if (Object.keys(frame.traceContext).length === 0) return this.onSinglePrice(session, m);
      // A sampled update: continue the node's span.
      const { span, ctx } = startCommandSpan(
        TRACER,
        'controller price update',
        SpanKind.CONSUMER,
        frame.traceContext,
        {
          ...rpcAttributes(NODE_SERVICE, 'NodePriceUpdateV1Notify'),
          'currency.pair': m.currencyPair,
          'currency.node_uuid': session.uuid,
        },
      );
      runIn(ctx, () => this.onSinglePrice(session, m));
      span.end();
    },
    NodePriceUpdatesV1Notify: (m, { session, frame }) => {
      if (Object.keys(frame.traceContext).length === 0)
        return this.onPriceBatch(session, m.updates);
      const { span, ctx } = startCommandSpan(
        TRACER,
        'controller price updates',
        SpanKind.CONSUMER,
        frame.traceContext,
        {
          ...rpcAttributes(NODE_SERVICE, 'NodePriceUpdatesV1Notify'),
          'currency.updates': m.updates.length,
          'currency.node_uuid': session.uuid,
        },
      );
      runIn(ctx, () => this.onPriceBatch(session, m.updates));
      span.end();
    },
    NodeStreamModifyStateV1Reply: () => {},
    // Late replies to commands whose CLI has gone: nothing to forward.
    NodeStatusV1Reply: () => {},
    NodeShutdownV1Reply: () => {},
    UnknownCommandV1Notify: (m, { session }) =>
      this.log.warn(
        { node_uuid: session.uuid, type_url: m.command?.typeUrl },
        'node did not understand a command',
      ),
  };

  private answerUnknownToNode(session: NodeSession, command: Any): void {
    this.deps.metrics.unknownCommands.inc({ peer: 'node' });
    this.log.warn(
      { node_uuid: session.uuid, type_url: command.typeUrl },
      'unknown command from node',
    );
    this.writeNode(session, {
      command: pack('UnknownCommandV1Notify', { command }),
      traceContext: {},
    });
  }

  private register(session: NodeSession, announced: string[]): void {
    const uuid = session.uuid!;
    const pairs = new Set<string>();
    for (const p of announced) {
      if (PAIR_PATTERN.test(p)) pairs.add(p);
      else
        this.malformed(
          'node',
          session.peer,
          `node ${uuid} announced invalid pair "${p.slice(0, 32)}"`,
        );
    }
    if (pairs.size > this.limits.maxPairsPerNode) {
      this.reject(
        session,
        'max_pairs',
        `announces ${pairs.size} pairs; the limit is ${this.limits.maxPairsPerNode}`,
      );
      return;
    }
    const existing = this.nodes.get(uuid);
    if (!existing && this.nodes.size >= this.limits.maxNodes) {
      this.reject(
        session,
        'max_nodes',
        `the controller holds its limit of ${this.limits.maxNodes} nodes`,
      );
      return;
    }
    let change: AssignmentChange;
    if (existing && existing !== session) {
      // The same node came back on a new stream before the old one was noticed gone:
      // the new stream takes over the node's place, pairs and all.
      this.closeSessionOnly(existing, 'replaced', {
        code: grpc.status.ABORTED,
        details: 'replaced by a newer stream with the same node UUID',
      });
      this.nodes.set(uuid, session);
      session.registered = true;
      change = this.assignment.updatePairs(uuid, pairs);
      this.log.info({ node_uuid: uuid, peer: session.peer }, 'node stream replaced by a newer one');
    } else if (existing === session) {
      change = this.assignment.updatePairs(uuid, pairs);
      this.log.info({ node_uuid: uuid, pairs: [...pairs] }, 'node changed its pairs');
    } else {
      this.nodes.set(uuid, session);
      session.registered = true;
      change = this.assignment.addNode(uuid, pairs);
      this.log.info(
        { node_uuid: uuid, node_name: session.name, peer: session.peer, pairs: [...pairs] },
        'node registered',
      );
    }
    change.changedNodes.add(uuid);
    this.nodesChanged();
    this.apply(change);
  }

  private onSinglePrice(session: NodeSession, m: PriceUpdate): void {
    const problem = this.onPrice(session, m);
    if (problem === 'accepted') this.deps.metrics.countPriceUpdates(m.currencyPair);
    else if (problem !== 'ignored') this.malformed('node', session.peer, problem);
  }

  /**
   * Each update of a batch is taken exactly as a single NodePriceUpdateV1Notify would be;
   * a malformed one is counted and skipped, and the rest of the batch still counts.
   */
  private onPriceBatch(session: NodeSession, updates: PriceUpdate[]): void {
    let malformed = 0;
    let firstProblem = '';
    for (const m of updates) {
      const outcome = this.onPrice(session, m);
      if (outcome === 'accepted') {
        this.deps.metrics.countPriceUpdates(m.currencyPair);
      } else if (outcome !== 'ignored') {
        malformed++;
        firstProblem ||= outcome;
      }
    }
    if (malformed > 0) {
      this.deps.metrics.malformedFrames.inc({ peer: 'node' }, malformed);
      this.log.warn(
        {
          peer_kind: 'node',
          peer: session.peer,
          problem: firstProblem,
          malformed_updates: malformed,
          updates: updates.length,
        },
        'malformed updates in a price batch',
      );
    }
  }

  /** Takes one price update; says what became of it (a problem when it is malformed). */
  private onPrice(session: NodeSession, m: PriceUpdate): 'accepted' | 'ignored' | string {
    const uuid = session.uuid!;
    if (!session.registered || !this.assignment.isStreaming(uuid, m.currencyPair)) {
      // In flight when the pair moved away, or never asked for: not the pair's price source.
      this.log.debug(
        { node_uuid: uuid, pair: m.currencyPair },
        'price from a node not streaming that pair ignored',
      );
      return 'ignored';
    }
    if (!Number.isFinite(m.price)) return `price ${m.price} for ${m.currencyPair} is not a number`;
    const updatedAtMs = msFromTimestamp(m.priceUpdatedAt) ?? this.deps.clock.now();
    this.prices.offer({ pair: m.currencyPair, price: m.price, updatedAtMs, nodeUuid: uuid });
    this.deliverToWatchers(uuid, m, updatedAtMs);
    return 'accepted';
  }

  private deliverToWatchers(nodeUuid: string, m: PriceUpdate, updatedAtMs: number): void {
    if (this.cliSessions.size === 0) return;
    let response: Any | undefined;
    let entry: PairPrice | undefined;
    for (const cli of this.cliSessions) {
      for (const [streamId, watch] of cli.watches) {
        if (watch.pairs && !watch.pairs.has(m.currencyPair)) continue;
        const queued = cli.call.writableLength;
        if (watch.batched ? queued >= WATCH_BATCH_QUEUE_LIMIT : queued >= this.watchQueueLimit) {
          // A watcher that does not keep up loses updates rather than growing our memory;
          // one that has stopped reading altogether is disconnected.
          this.deps.metrics.watchUpdatesDropped.inc();
          if (this.deps.clock.now() - cli.lastWatchWriteMs > this.limits.slowWatcherMs) {
            this.dropSlowCli(cli);
          }
          continue;
        }
        cli.lastWatchWriteMs = this.deps.clock.now();
        if (watch.batched) {
          entry ??= {
            currencyPair: m.currencyPair,
            price: m.price,
            priceUpdatedAt: m.priceUpdatedAt ?? timestampFromMs(updatedAtMs),
            nodeUuid,
          };
          this.queueWatchBatch(cli, streamId, entry);
          continue;
        }
        response ??= pack('NodePriceUpdateV1Notify', m);
        this.writeCli(cli, { streamId, nodeUuid, response, traceContext: {} });
      }
    }
  }

  /**
   * Batched watches: the updates of one event-loop turn go out together at its end, so a
   * burst of updates costs the watch stream one frame instead of one frame each.
   */
  private queueWatchBatch(cli: CliSession, streamId: string, entry: PairPrice): void {
    let batch = cli.batches.get(streamId);
    if (!batch) cli.batches.set(streamId, (batch = []));
    batch.push(entry);
    if (batch.length >= MAX_WATCH_BATCH) {
      cli.batches.delete(streamId);
      this.writeWatchBatch(cli, streamId, batch);
      return;
    }
    this.batchesDue.add(cli);
    this.batchFlush ??= setImmediate(() => this.flushWatchBatches());
  }

  private flushWatchBatches(): void {
    this.batchFlush = undefined;
    for (const cli of this.batchesDue) {
      for (const [streamId, batch] of cli.batches) this.writeWatchBatch(cli, streamId, batch);
      cli.batches.clear();
    }
    this.batchesDue.clear();
  }

  private writeWatchBatch(cli: CliSession, streamId: string, prices: PairPrice[]): void {
    this.writeCli(cli, {
      streamId,
      response: pack('ControllerPriceUpdatesV1Notify', { prices }),
      traceContext: {},
    });
  }

  /** Ends a node's stream and, if it was the registered one, moves its pairs away. */
  private closeNode(
    session: NodeSession,
    reason: DisconnectReason,
    status?: grpc.StatusObject | Partial<grpc.StatusObject>,
  ): void {
    if (session.closed) return;
    this.closeSessionOnly(session, reason, status);
    const uuid = session.uuid;
    if (uuid === undefined || this.nodes.get(uuid) !== session) return;
    this.nodes.delete(uuid);
    this.nodesChanged();
    const change = this.assignment.removeNode(uuid, reason === 'kicked' ? 'kicked' : 'node_left');
    this.log.info({ node_uuid: uuid, node_name: session.name, reason }, 'node disconnected');
    this.apply(change);
  }

  private closeSessionOnly(
    session: NodeSession,
    reason: DisconnectReason,
    status?: Partial<grpc.StatusObject>,
  ): void {
    session.closed = true;
    this.nodeSessions.delete(session);
    if (reason === 'closed') {
      // 'end' arrives both when a node half-closes cleanly and when its connection drops;
      // a drop shows as 'cancelled' a moment later. The pairs move at once either way;
      // only the metric's reason waits to tell the two apart.
      const metric = this.deps.metrics.nodeDisconnects;
      setTimeout(
        () => metric.inc({ reason: session.call.cancelled ? 'lost' : 'closed' }),
        100,
      ).unref();
    } else {
      this.deps.metrics.nodeDisconnects.inc({ reason });
    }
    endCall(session.call, status);
  }

  /** Sends every changed node its full desired state and records what moved. */
  private apply(change: AssignmentChange): void {
    const m = this.deps.metrics;
    for (const r of change.reassignments) {
      if (r.to === undefined) {
        this.log.warn(
          { pair: r.pair, from: r.from, reason: r.reason },
          'pair lost a streamer and no capable node can take it',
        );
        continue;
      }
      m.reassignments.inc({ reason: r.reason });
      if (r.from !== undefined && (r.reason === 'node_left' || r.reason === 'kicked')) {
        m.failovers.inc({ pair: r.pair });
        this.log.info(
          { pair: r.pair, from: r.from, to: r.to, reason: r.reason },
          'pair failed over',
        );
      }
    }
    for (const uuid of change.changedNodes) {
      const session = this.nodes.get(uuid);
      if (session) session.listEntry = undefined;
      this.sendDesiredState(uuid);
    }
    if (change.changedNodes.size > 0) this.listNodesReply = undefined;
    // Only the pairs this change can have touched: those that moved, and those of the
    // nodes whose set changed. So a node joining or leaving costs the same however many
    // pairs and nodes there are (refreshing every pair made 10,000 joins quadratic).
    const touched = new Set<string>();
    for (const r of change.reassignments) touched.add(r.pair);
    for (const uuid of change.changedNodes) {
      for (const pair of this.assignment.knownPairsOf(uuid)) touched.add(pair);
    }
    this.refreshGauges(touched);
  }

  private sendDesiredState(uuid: string): void {
    const session = this.nodes.get(uuid);
    if (!session) return;
    const states: CurrencyStreamStateV1[] = this.assignment.knownPairsOf(uuid).map((pair) => {
      if (!this.assignment.isStreaming(uuid, pair))
        return { currencyPair: pair, streamState: StreamState.StreamStop };
      const latest = this.prices.get(pair);
      return {
        currencyPair: pair,
        streamState: StreamState.StreamStart,
        latestPrice: latest?.price,
        latestPriceUpdatedAt: latest ? timestampFromMs(latest.updatedAtMs) : undefined,
      };
    });
    const streaming = states
      .filter((s) => s.streamState === StreamState.StreamStart)
      .map((s) => s.currencyPair);
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
      this.log.debug({ node_uuid: uuid, streaming }, 'sending desired stream state');
      this.writeNode(session, {
        command: pack('NodeStreamModifyStateV1Req', { streamStates: states }),
        traceContext: injectContext(ctx),
      });
    });
    span.end();
  }

  /** Totals always; per-pair series for `pairs` (every known pair when not given). */
  private refreshGauges(pairs?: Iterable<string>): void {
    const m = this.deps.metrics;
    const known = this.assignment.knownPairCount();
    const streamed = this.assignment.streamedPairCount();
    m.connectedNodes.set(this.nodes.size);
    m.connectedClis.set(this.cliSessions.size);
    m.pairsKnown.set(known);
    m.pairsStreamed.set(streamed);
    m.pairsUnstreamed.set(known - streamed);
    for (const pair of pairs ?? this.assignment.knownPairs()) {
      m.pairStreamers.set({ pair }, this.assignment.streamerCount(pair));
      // Series exist from 0 so that Prometheus sees the first failover or update of a pair.
      m.failovers.inc({ pair }, 0);
      m.priceUpdates.inc({ pair }, 0);
    }
  }

  // ------------------------------------------------------------------ CLI streams

  attachCli(call: CliServerCall): void {
    const cli: CliSession = {
      call,
      peer: call.getPeer(),
      closed: false,
      watches: new Map(),
      batches: new Map(),
      pendingIds: new Set(),
      lastWatchWriteMs: this.deps.clock.now(),
    };
    if (this.cliSessions.size >= this.limits.maxCliStreams) {
      this.deps.metrics.rejected.inc({ reason: 'max_clis' });
      this.log.warn(
        { peer: cli.peer, limit: this.limits.maxCliStreams },
        'CLI stream refused: too many open',
      );
      endCall(call, {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `the controller holds its limit of ${this.limits.maxCliStreams} CLI streams`,
      });
      return;
    }
    this.cliSessions.add(cli);
    this.refreshGauges([]);
    call.on('data', (frame: Frame<StreamFromCli>) => this.onCliFrame(cli, frame));
    call.on('end', () => this.closeCli(cli));
    call.on('cancelled', () => this.closeCli(cli));
    call.on('error', () => this.closeCli(cli));
    call.on('close', () => this.closeCli(cli));
  }

  private onCliFrame(cli: CliSession, frame: Frame<StreamFromCli>): void {
    if (cli.closed) return;
    if (!frame.ok) {
      this.malformed('cli', cli.peer, `undecodable frame (${frame.bytes} bytes): ${frame.error}`);
      return;
    }
    const f = frame.value;
    const problem = checkCliFrame(f);
    if (problem) {
      this.malformed('cli', cli.peer, problem);
      this.sendCliError(cli, f.streamId, grpc.status.INVALID_ARGUMENT, problem);
      return;
    }
    const r = unpack(f.command);
    const commandName = commandNameOf(f.command);
    const startedAtMs = this.deps.clock.now();
    const { span, ctx } = startCommandSpan(
      TRACER,
      `controller ${commandName}`,
      SpanKind.SERVER,
      f.traceContext,
      {
        ...rpcAttributes(CLI_SERVICE, commandName),
        'currency.cli_uuid': f.cliUuid,
        'currency.stream_id': f.streamId,
      },
    );
    runIn(ctx, () => {
      if (!r.ok) {
        if (r.reason === 'unknown-type') {
          this.deps.metrics.unknownCommands.inc({ peer: 'cli' });
          this.answerUnknownToCli(cli, f, 'unknown command type');
        } else {
          this.malformed('cli', cli.peer, `command ${r.typeUrl || '(missing)'}: ${r.reason}`);
          this.sendCliError(
            cli,
            f.streamId,
            grpc.status.INVALID_ARGUMENT,
            `command is ${r.reason}`,
          );
        }
        this.finishCommand(commandName, 'unknown', startedAtMs, span, 'unknown command');
        return;
      }
      this.log.info(
        { command: commandName, stream_id: f.streamId, cli_uuid: f.cliUuid },
        'command received',
      );
      const ctxArg: CliCtx = { cli, frame: f, span, startedAtMs };
      if (dispatch(this.cliHandlers, r.value, ctxArg)) {
        this.finishCommand(commandName, 'ok', startedAtMs, span);
      } else if (NODE_COMMANDS.has(r.value.name)) {
        this.routeToNodes(ctxArg, r.value);
      } else {
        this.deps.metrics.unknownCommands.inc({ peer: 'cli' });
        this.answerUnknownToCli(cli, f, 'not a command the controller takes from a CLI');
        this.finishCommand(commandName, 'unknown', startedAtMs, span, 'unknown command');
      }
    });
  }

  private answerUnknownToCli(cli: CliSession, f: StreamFromCli, why: string): void {
    this.log.warn({ type_url: f.command?.typeUrl, stream_id: f.streamId }, why);
    this.replyCli(cli, f, pack('UnknownCommandV1Notify', { command: f.command }));
  }

  private finishCommand(
    command: string,
    outcome: string,
    startedAtMs: number,
    span: Span,
    error?: string,
  ): void {
    const m = this.deps.metrics;
    m.commands.inc({ command, outcome });
    m.commandDuration.observe({ command }, Math.max(0, this.deps.clock.now() - startedAtMs) / 1000);
    span.setAttribute('currency.outcome', outcome);
    if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end();
  }

  private readonly cliHandlers: Handlers<CliCtx> = {
    ControllerListNodesV1Req: (_m, { cli, frame }) =>
      this.replyCli(cli, frame, this.listNodesAny()),
    ControllerKickNodesV1Req: (m, { cli, frame }) => {
      const kicked: string[] = [];
      const unknown: string[] = [];
      for (const raw of new Set(m.nodeUuids)) {
        const uuid = raw.toLowerCase();
        if (isUuid(uuid) && this.kick(uuid)) kicked.push(uuid);
        else unknown.push(raw);
      }
      this.log.info({ kicked, unknown }, 'kick');
      this.replyCli(
        cli,
        frame,
        pack('ControllerKickNodesV1Reply', { kickedNodeUuids: kicked, unknownNodeUuids: unknown }),
      );
    },
    ControllerAppVersionV1Req: (_m, { cli, frame }) =>
      this.replyCli(
        cli,
        frame,
        pack('ControllerAppVersionV1Reply', { controllerAppVersion: this.deps.appVersion }),
      ),
    ControllerStreamsV1Req: (_m, { cli, frame }) =>
      this.replyCli(
        cli,
        frame,
        pack('ControllerStreamsV1Reply', {
          pairs: this.assignment.pairs().map((p) => ({
            currencyPair: p.pair,
            nodeUuids: p.streamers,
            capableNodes: p.capableNodes,
            desiredStreams: this.assignment.streamsPerPair,
          })),
        }),
      ),
    ControllerPricesV1Req: (_m, { cli, frame }) =>
      this.replyCli(
        cli,
        frame,
        pack('ControllerPricesV1Reply', {
          prices: this.prices.all().map((p) => ({
            currencyPair: p.pair,
            price: p.price,
            priceUpdatedAt: timestampFromMs(p.updatedAtMs),
            nodeUuid: p.nodeUuid,
          })),
        }),
      ),
    ControllerWatchPricesV1Req: (m, c) => this.watch(m.currencyPairs, false, c),
    ControllerWatchPricesV2Req: (m, c) => this.watch(m.currencyPairs, true, c),
  };

  private watch(currencyPairs: string[], batched: boolean, { cli, frame }: CliCtx): void {
    const pairs = currencyPairs.length > 0 ? new Set(currencyPairs) : null;
    cli.watches.set(frame.streamId, { pairs, batched });
    this.replyCli(
      cli,
      frame,
      pack('ControllerWatchPricesV1Reply', {
        currencyPairs: pairs ? [...pairs].sort() : this.assignment.knownPairs(),
      }),
    );
  }

  private routeToNodes(c: CliCtx, command: Unpacked): void {
    const { cli, frame, span, startedAtMs } = c;
    const targets: string[] = [];
    const unknown: string[] = [];
    if (frame.nodeUuids.length === 0) {
      for (const s of this.registeredSorted()) targets.push(s.uuid!);
    } else {
      for (const raw of new Set(frame.nodeUuids)) {
        const uuid = raw.toLowerCase();
        if (this.nodes.has(uuid)) targets.push(uuid);
        else unknown.push(raw);
      }
    }
    if (cli.pendingIds.size + targets.length > this.limits.maxPendingPerCli) {
      this.deps.metrics.rejected.inc({ reason: 'max_pending' });
      this.sendCliError(
        cli,
        frame.streamId,
        grpc.status.RESOURCE_EXHAUSTED,
        `too many commands waiting for replies on this stream (limit ${this.limits.maxPendingPerCli})`,
      );
      this.finishCommand(command.name, 'error', startedAtMs, span, 'too many pending commands');
      return;
    }
    span.setAttribute('currency.target_nodes', targets.length);
    this.replyCli(
      cli,
      frame,
      pack('CliResponseCountV1Notify', {
        expectedResponses: targets.length,
        nodeUuids: targets,
        unknownNodeUuids: unknown,
      }),
    );
    if (targets.length === 0) {
      this.finishCommand(command.name, unknown.length > 0 ? 'error' : 'ok', startedAtMs, span);
      return;
    }
    const routed: RoutedCommand = {
      command: command.name,
      startedAtMs,
      cli,
      streamId: frame.streamId,
      span,
      outstanding: new Set(targets),
      answered: 0,
    };
    const traceContext = injectContext();
    for (const uuid of targets) {
      const requestId = this.deps.newId();
      this.pending.set(requestId, { nodeUuid: uuid, routed });
      cli.pendingIds.add(requestId);
      this.writeNode(this.nodes.get(uuid)!, {
        fromUuid: requestId,
        command: frame.command,
        traceContext,
      });
    }
  }

  private forwardReply(session: NodeSession, f: StreamFromNode): void {
    const requestId = f.fromUuid!;
    const p = this.pending.get(requestId)!;
    if (p.nodeUuid !== session.uuid) {
      this.malformed(
        'node',
        session.peer,
        `node ${session.uuid} answered a command sent to ${p.nodeUuid}`,
      );
      return;
    }
    this.pending.delete(requestId);
    const routed = p.routed;
    routed.cli.pendingIds.delete(requestId);
    routed.outstanding.delete(p.nodeUuid);
    routed.answered++;
    this.writeCli(routed.cli, {
      streamId: routed.streamId,
      nodeUuid: p.nodeUuid,
      response: f.response,
      traceContext: f.traceContext,
    });
    if (routed.outstanding.size === 0)
      this.finishCommand(routed.command, 'ok', routed.startedAtMs, routed.span);
  }

  private closeCli(cli: CliSession): void {
    if (cli.closed) return;
    cli.closed = true;
    this.cliSessions.delete(cli);
    const unfinished = new Set<RoutedCommand>();
    for (const id of cli.pendingIds) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (p) unfinished.add(p.routed);
    }
    cli.pendingIds.clear();
    cli.watches.clear();
    cli.batches.clear();
    this.batchesDue.delete(cli);
    for (const r of unfinished) {
      const outcome = r.answered > 0 ? 'partial' : 'timeout';
      this.finishCommand(
        r.command,
        outcome,
        r.startedAtMs,
        r.span,
        `no reply from ${[...r.outstanding].join(', ')}`,
      );
    }
    endCall(cli.call);
    this.refreshGauges([]);
  }

  private replyCli(cli: CliSession, f: StreamFromCli, response: Any): void {
    this.writeCli(cli, { streamId: f.streamId, response, traceContext: injectContext() });
  }

  private sendCliError(
    cli: CliSession,
    streamId: string,
    code: grpc.status,
    message: string,
  ): void {
    this.writeCli(cli, {
      streamId,
      response: pack('CliErrorV1Notify', { code, message }),
      traceContext: {},
    });
  }

  // ------------------------------------------------------------------ shutdown & helpers

  /** Ends every stream: nodes see a clean end and reconnect to the next controller. */
  closeAll(): void {
    for (const s of [...this.nodeSessions]) this.closeNode(s, 'shutdown');
    for (const c of [...this.cliSessions]) this.closeCli(c);
    if (this.batchFlush) clearImmediate(this.batchFlush);
    this.batchFlush = undefined;
  }

  private writeNode(session: NodeSession, msg: Parameters<NodeServerCall['write']>[0]): void {
    if (session.closed) return;
    if (session.call.writableLength >= this.limits.maxQueuedMessages) {
      this.deps.metrics.rejected.inc({ reason: 'slow_consumer' });
      this.log.warn(
        { node_uuid: session.uuid, queued: session.call.writableLength },
        'node not reading; disconnecting it',
      );
      this.closeNode(session, 'lost', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `not reading: ${session.call.writableLength} messages queued`,
      });
      return;
    }
    try {
      session.call.write(msg);
    } catch (err) {
      this.log.warn({ err, node_uuid: session.uuid }, 'write to node failed');
    }
  }

  private writeCli(cli: CliSession, msg: StreamToCli): void {
    if (cli.closed) return;
    if (cli.call.writableLength >= this.limits.maxQueuedMessages) {
      this.dropSlowCli(cli);
      return;
    }
    try {
      cli.call.write(msg);
    } catch (err) {
      this.log.warn({ err }, 'write to CLI failed');
    }
  }

  private dropSlowCli(cli: CliSession): void {
    this.deps.metrics.rejected.inc({ reason: 'slow_consumer' });
    this.log.warn(
      { peer: cli.peer, queued: cli.call.writableLength },
      'CLI not reading; disconnecting it',
    );
    endCall(cli.call, { code: grpc.status.RESOURCE_EXHAUSTED, details: 'not reading its stream' });
    this.closeCli(cli);
  }

  /** Refuses a node's registration: ends its stream with RESOURCE_EXHAUSTED, counted by reason. */
  private reject(session: NodeSession, reason: 'max_nodes' | 'max_pairs', why: string): void {
    this.deps.metrics.rejected.inc({ reason });
    this.log.warn({ node_uuid: session.uuid, peer: session.peer, reason }, `node refused: ${why}`);
    this.closeSessionOnly(session, 'rejected', {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: why,
    });
  }

  private malformed(peer: 'node' | 'cli', from: string, problem: string): void {
    this.deps.metrics.malformedFrames.inc({ peer });
    this.log.warn({ peer_kind: peer, peer: from, problem }, 'malformed frame');
  }
}

/** Every inbound CLI frame is checked here before any logic runs. */
export function checkCliFrame(f: StreamFromCli): string | undefined {
  if (f.streamId === '' || f.streamId.length > 128) return 'stream_id must be 1-128 characters';
  if (!isUuid(f.cliUuid)) return `cli_uuid "${f.cliUuid.slice(0, 64)}" is not a UUID`;
  const bad = f.nodeUuids.find((u) => !isUuid(u));
  if (bad !== undefined) return `node_uuids: "${bad.slice(0, 64)}" is not a UUID`;
  return undefined;
}

function endCall(call: NodeServerCall | CliServerCall, status?: Partial<grpc.StatusObject>): void {
  try {
    if (status) call.emit('error', status);
    else call.end();
  } catch {
    // The call is already gone; nothing to end.
  }
}
