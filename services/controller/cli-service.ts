/**
 * The controller's core, CLI side: CLI streams come in as links; each frame is checked,
 * then either answered by the controller (nodes, kick, version, streams, prices, watch)
 * or routed to nodes, whose replies come back through the router.
 *
 * Data flow of one node command (`node status --node-uuid X`): CliLink 'data' ->
 * onFrame (intake.checkCliFrame, unpack) -> routeToNodes (CliResponseCountV1Notify to the
 * CLI; one request id per node in the Router; the command written to X's NodeLink) ->
 * X's reply -> ControllerCore.onNodeFrame -> forwardReply -> the CLI's stream. If X goes
 * first, nodeGone answers CliErrorV1Notify naming X at once.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any';
import type { StreamFromCli, StreamFromNode, StreamToCli } from '../gen/protobuf/currency_nodes';
import {
  type Handlers,
  type MessageName,
  type Unpacked,
  commandNameOf,
  dispatch,
  pack,
  typeUrlOf,
  unpack,
} from '../shared/any';
import type { Logger } from '../shared/logger';
import type { Scheduler } from '../shared/scheduler';
import { timestampFromMs } from '../shared/time';
import {
  type Span,
  SpanKind,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../shared/tracing';
import { type CliServerCall, type Frame, bufferOf, isUuid } from '../shared/wire';
import type { Assignment } from './assignment';
import { type CliSession, newCliSession } from './cli-session';
import type { ControllerLimits } from './config';
import type { WatchFanout } from './fanout';
import { checkCliFrame } from './intake';
import { CLOSE_RULES, type CloseReason } from './links/close-reasons';
import { StreamLink } from './links/stream-link';
import {
  FRAME_OVERHEAD_BYTES,
  type ListedNode,
  type NodeView,
  V1_REPLY_MAX_BYTES,
  listPages,
  pageBytes,
  splitNodeInfo,
} from './node-list';
import type { Observer } from './observer';
import type { PriceStore } from './prices';
import type { NodeRegistry, NodeSession } from './registry';
import type { RoutedCommand, Router } from './router';

const TRACER = 'currency-controller';
const CLI_SERVICE = 'protobuf.CliCmdStream';

/**
 * What a standby answers itself: everything else needs the leader (the nodes, their
 * prices and streams are the leader's), so a standby refuses it with UNAVAILABLE naming the
 * leader (the CLI exits 3, or goes on to the next address it was given).
 */
const STANDBY_ANSWERS: ReadonlySet<MessageName> = new Set<MessageName>([
  'ControllerAppVersionV1Req',
]);

/** Commands a CLI may send through the controller to nodes. */
const NODE_COMMANDS: ReadonlySet<MessageName> = new Set<MessageName>([
  'NodeStatusV1Req',
  'NodeShutdownV1Req',
]);

export interface CliServiceDeps {
  scheduler: Scheduler;
  logger: Logger;
  appVersion: string;
  newId: () => string;
  limits: ControllerLimits;
  registry: NodeRegistry;
  router: Router<CliSession>;
  fanout: WatchFanout;
  observer: Observer;
  assignment: Assignment;
  prices: PriceStore;
  viewOf(s: NodeSession): NodeView;
  kick(uuid: string): boolean;
  onClisChanged(): void;
  /** Undefined while this controller leads; else why it cannot serve (it is a standby). */
  standby(): string | undefined;
}

type Ctx = { cli: CliSession; frame: StreamFromCli; span: Span; startedAtMs: number };

/**
 * Target UUIDs as a CLI sent them -> canonical (lower case), each once, in order, with the
 * first spelling kept for reports: `[u, U]` from a foreign CLI names one node, not two.
 */
function canonicalUuids(uuids: string[]): { uuid: string; raw: string }[] {
  const seen = new Map<string, string>();
  for (const raw of uuids) {
    const uuid = raw.toLowerCase();
    if (!seen.has(uuid)) seen.set(uuid, raw);
  }
  return [...seen].map(([uuid, raw]) => ({ uuid, raw }));
}

export class CliService {
  private readonly sessions = new Set<CliSession>();

  constructor(private readonly deps: CliServiceDeps) {}

  openCount(): number {
    return this.sessions.size;
  }

  attach(call: CliServerCall): void {
    const { scheduler, limits } = this.deps;
    // eslint-disable-next-line prefer-const -- the link's handlers need the session it is part of
    let cli: CliSession;
    const link = new StreamLink<StreamFromCli, StreamToCli>(
      call,
      { scheduler, maxQueuedMessages: limits.maxQueuedMessages },
      {
        onFrame: (_l, frame) => this.onFrame(cli, frame),
        onClosed: (_l, reason) => this.onClosed(cli, reason),
      },
    );
    cli = newCliSession(link);
    if (this.sessions.size >= limits.maxCliStreams) {
      const why = `the controller holds its limit of ${limits.maxCliStreams} CLI streams`;
      this.deps.observer.cliRefused(link.peer, 'max_clis', why);
      link.close('max_clis', why);
      return;
    }
    this.sessions.add(cli);
    link.open();
    this.deps.onClisChanged();
  }

  closeAll(): void {
    for (const c of [...this.sessions]) c.link.close('shutdown');
    this.deps.fanout.flush();
  }

  /**
   * This controller stopped leading (fenced, or the Lease went to another): its watches
   * would see no more prices, so each is told why, as a standby refuses a new watch, and
   * dropped; the CLI goes to the leader.
   */
  standbyNow(why: string): void {
    for (const cli of this.sessions) {
      if (cli.watches.size === 0) continue;
      for (const streamId of cli.watches.keys())
        this.sendError(cli, streamId, grpc.status.UNAVAILABLE, why);
      this.deps.fanout.forget(cli);
    }
  }

  private onClosed(cli: CliSession, reason: CloseReason): void {
    if (!this.sessions.delete(cli)) return;
    if (reason === 'slow_consumer')
      this.deps.observer.cliRefused(cli.link.peer, reason, 'not reading its stream; disconnected');
    this.deps.fanout.forget(cli);
    for (const r of this.deps.router.cliGone(cli)) {
      const outcome = r.answered > 0 ? 'partial' : 'timeout';
      this.finish(r, outcome, `no reply from ${[...r.outstanding].join(', ')}`);
    }
    this.deps.onClisChanged();
  }

  private onFrame(cli: CliSession, frame: Frame<StreamFromCli>): void {
    const { observer } = this.deps;
    if (!frame.ok) {
      observer.malformed(
        'cli',
        cli.link.peer,
        `undecodable frame (${frame.bytes} bytes): ${frame.error}`,
      );
      return;
    }
    const f = frame.value;
    const problem = checkCliFrame(f);
    if (problem) {
      observer.malformed('cli', cli.link.peer, problem);
      this.sendError(cli, f.streamId, grpc.status.INVALID_ARGUMENT, problem);
      return;
    }
    const r = unpack(f.command);
    const name = commandNameOf(f.command);
    const startedAtMs = this.deps.scheduler.now();
    const { span, ctx } = startCommandSpan(
      TRACER,
      `controller ${name}`,
      SpanKind.SERVER,
      f.traceContext,
      {
        ...rpcAttributes(CLI_SERVICE, name),
        'currency.cli_uuid': f.cliUuid,
        'currency.stream_id': f.streamId,
      },
    );
    const c: Ctx = { cli, frame: f, span, startedAtMs };
    runIn(ctx, () => {
      if (!r.ok && r.reason !== 'unknown-type') {
        observer.malformed(
          'cli',
          cli.link.peer,
          `command ${r.typeUrl || '(missing)'}: ${r.reason}`,
        );
        this.sendError(cli, f.streamId, grpc.status.INVALID_ARGUMENT, `command is ${r.reason}`);
        this.finishNow(c, name, 'unknown', 'malformed command');
        return;
      }
      if (r.ok) {
        this.deps.logger.info(
          { command: name, stream_id: f.streamId, cli_uuid: f.cliUuid },
          'command received',
        );
        const standby = this.deps.standby();
        if (standby !== undefined && !STANDBY_ANSWERS.has(r.value.name)) {
          // A controller-level UNAVAILABLE (no node UUID) is how a CLI tells a standby.
          this.sendError(cli, f.streamId, grpc.status.UNAVAILABLE, standby);
          return this.finishNow(c, name, 'error', standby);
        }
        if (dispatch(this.handlers, r.value, c)) return this.finishNow(c, name, 'ok');
        if (NODE_COMMANDS.has(r.value.name)) return this.routeToNodes(c, r.value);
      }
      const why = r.ok ? 'not a command the controller takes from a CLI' : 'unknown command type';
      observer.unknownCommand('cli', f.command?.typeUrl, why);
      this.reply(c, pack('UnknownCommandV1Notify', { command: f.command }));
      this.finishNow(c, name, 'unknown', 'unknown command');
    });
  }

  private readonly handlers: Handlers<Ctx> = {
    ControllerListNodesV1Req: (_m, c) => this.listNodesV1(c),
    ControllerListNodesV2Req: (m, c) => this.listNodesPaged(c, m.maxPageBytes),
    ControllerKickNodesV1Req: (m, c) => {
      const kicked: string[] = [];
      const unknown: string[] = [];
      for (const { uuid, raw } of canonicalUuids(m.nodeUuids)) {
        if (isUuid(uuid) && this.deps.kick(uuid)) kicked.push(uuid);
        else unknown.push(raw);
      }
      this.deps.logger.info({ kicked, unknown }, 'kick');
      this.reply(
        c,
        pack('ControllerKickNodesV1Reply', { kickedNodeUuids: kicked, unknownNodeUuids: unknown }),
      );
    },
    ControllerAppVersionV1Req: (_m, c) =>
      this.reply(
        c,
        pack('ControllerAppVersionV1Reply', { controllerAppVersion: this.deps.appVersion }),
      ),
    ControllerStreamsV1Req: (_m, c) =>
      this.reply(
        c,
        pack('ControllerStreamsV1Reply', {
          pairs: this.deps.assignment.pairs().map((p) => ({
            currencyPair: p.pair,
            nodeUuids: p.streamers,
            capableNodes: p.capableNodes,
            desiredStreams: this.deps.assignment.streamsPerPair,
          })),
        }),
      ),
    ControllerPricesV1Req: (_m, c) =>
      this.reply(
        c,
        pack('ControllerPricesV1Reply', {
          prices: this.deps.prices.all().map((p) => ({
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

  /**
   * `controller nodes` as one ControllerListNodesV1Reply, while it fits what a gRPC peer
   * takes by default; beyond that it would end the CLI's stream ("Received message larger
   * than max"), so the CLI is told to ask for pages instead.
   */
  private listNodesV1(c: Ctx): void {
    const { registry, viewOf } = this.deps;
    const bytes = registry.listNodesBytes(viewOf);
    if (bytes + FRAME_OVERHEAD_BYTES <= V1_REPLY_MAX_BYTES) {
      this.reply(c, registry.listNodesAny(viewOf));
      return;
    }
    this.sendError(
      c.cli,
      c.frame.streamId,
      grpc.status.RESOURCE_EXHAUSTED,
      `the list of ${registry.registeredCount()} nodes is ${bytes} bytes, more than one ` +
        `ControllerListNodesV1Reply may carry (${V1_REPLY_MAX_BYTES - FRAME_OVERHEAD_BYTES}, so ` +
        'that it fits the 4 MiB a gRPC peer takes by default): ask with ' +
        'ControllerListNodesV2Req, which answers in pages (as a newer currency-cli does)',
    );
  }

  /**
   * `controller nodes` in ControllerListNodesPageV1 frames on the command's stream_id: the
   * nodes registered now, in order, each page built only once the CLI has taken the one
   * before (so one page is in flight, and a CLI that reads slowly holds the listing back
   * rather than making the controller buffer it). A node that leaves before its page is
   * built is left out; the last page counts the nodes listed.
   */
  private listNodesPaged(c: Ctx, maxPageBytes: number): void {
    const { registry, viewOf } = this.deps;
    const snapshot = registry.registered();
    function* nodes(): Generator<ListedNode> {
      for (const listed of snapshot) {
        // The stream holding the UUID now (a newer one may have replaced the listed one).
        const s = registry.get(listed.uuid!);
        if (s)
          yield {
            entry: registry.entryOf(s, viewOf),
            split: (max) => splitNodeInfo(viewOf(s), max),
          };
      }
    }
    const pages = listPages(nodes(), pageBytes(maxPageBytes));
    const { link } = c.cli;
    const { streamId } = c.frame;
    const traceContext = injectContext();
    const typeUrl = typeUrlOf('ControllerListNodesPageV1');
    const next = (): void => {
      if (link.closed) return;
      const page = pages.next();
      if (page.done) return;
      link.send(
        { streamId, response: { typeUrl, value: bufferOf(page.value) }, traceContext },
        next,
      );
    };
    next();
  }

  private watch(currencyPairs: string[], batched: boolean, c: Ctx): void {
    const pairs = currencyPairs.length > 0 ? new Set(currencyPairs) : null;
    this.deps.fanout.watch(c.cli, c.frame.streamId, pairs, batched);
    this.reply(
      c,
      pack('ControllerWatchPricesV1Reply', {
        currencyPairs: pairs ? [...pairs].sort() : this.deps.assignment.knownPairs(),
      }),
    );
  }

  private routeToNodes(c: Ctx, command: Unpacked): void {
    const { cli, frame, span, startedAtMs } = c;
    const { registry, router, limits } = this.deps;
    const targets: string[] = [];
    const unknown: string[] = [];
    if (frame.nodeUuids.length === 0) {
      for (const s of registry.registered()) targets.push(s.uuid!);
    } else {
      for (const { uuid, raw } of canonicalUuids(frame.nodeUuids)) {
        if (registry.get(uuid)) targets.push(uuid);
        else unknown.push(raw);
      }
    }
    if (router.pendingOf(cli) + targets.length > limits.maxPendingPerCli) {
      this.deps.observer.pendingRefused();
      this.sendError(
        cli,
        frame.streamId,
        grpc.status.RESOURCE_EXHAUSTED,
        `too many commands waiting for replies on this stream (limit ${limits.maxPendingPerCli})`,
      );
      this.finishNow(c, command.name, 'error', 'too many pending commands');
      return;
    }
    span.setAttribute('currency.target_nodes', targets.length);
    this.reply(
      c,
      pack('CliResponseCountV1Notify', {
        expectedResponses: targets.length,
        nodeUuids: targets,
        unknownNodeUuids: unknown,
      }),
    );
    if (targets.length === 0) {
      this.finishNow(c, command.name, unknown.length > 0 ? 'error' : 'ok');
      return;
    }
    const routed: RoutedCommand<CliSession> = {
      command: command.name,
      startedAtMs,
      cli,
      streamId: frame.streamId,
      span,
      outstanding: new Set(targets),
      answered: 0,
      failed: 0,
    };
    const traceContext = injectContext();
    for (const uuid of targets) {
      const requestId = this.deps.newId();
      router.add(requestId, uuid, routed);
      registry.get(uuid)!.link.send({ fromUuid: requestId, command: frame.command, traceContext });
    }
  }

  /** A node's reply to a routed command goes to the CLI stream that asked. */
  forwardReply(session: NodeSession, f: StreamFromNode): void {
    const p = this.deps.router.take(f.fromUuid!, session.uuid!);
    if (p === undefined) return;
    if (p === 'wrong_node') {
      this.deps.observer.malformed(
        'node',
        session.link.peer,
        `node ${session.uuid} answered a command sent to another node`,
      );
      return;
    }
    const r = p.routed;
    r.answered++;
    r.cli.link.send({
      streamId: r.streamId,
      nodeUuid: p.nodeUuid,
      response: f.response,
      traceContext: f.traceContext,
    });
    if (r.outstanding.size === 0) this.finish(r, r.failed > 0 ? 'partial' : 'ok');
  }

  /** A node went: every command still waiting for it is answered at once, naming it. */
  nodeGone(uuid: string, name: string, reason: CloseReason): void {
    for (const p of this.deps.router.nodeGone(uuid)) {
      const r = p.routed;
      r.failed++;
      const who = name ? `${uuid} (${name})` : uuid;
      r.cli.link.send({
        streamId: r.streamId,
        nodeUuid: uuid,
        response: pack('CliErrorV1Notify', {
          code: grpc.status.UNAVAILABLE,
          message: `node ${who} disconnected before answering (${CLOSE_RULES[reason].disconnect})`,
        }),
        traceContext: {},
      });
      if (r.outstanding.size === 0)
        this.finish(r, r.answered > 0 ? 'partial' : 'error', `node ${uuid} went away`);
    }
  }

  private reply(c: Ctx, response: Any): void {
    c.cli.link.send({ streamId: c.frame.streamId, response, traceContext: injectContext() });
  }

  private sendError(cli: CliSession, streamId: string, code: grpc.status, message: string): void {
    cli.link.send({
      streamId,
      response: pack('CliErrorV1Notify', { code, message }),
      traceContext: {},
    });
  }

  private finishNow(c: Ctx, command: string, outcome: string, error?: string): void {
    this.deps.observer.commandFinished(
      command,
      outcome,
      (this.deps.scheduler.now() - c.startedAtMs) / 1000,
      c.span,
      error,
    );
  }

  private finish(r: RoutedCommand<CliSession>, outcome: string, error?: string): void {
    this.deps.observer.commandFinished(
      r.command,
      outcome,
      (this.deps.scheduler.now() - r.startedAtMs) / 1000,
      r.span,
      error,
    );
  }
}
