/**
 * The controller's core, CLI side: CLI streams come in as links; each frame is checked,
 * then either answered by the controller (nodes, kick, version, streams, prices, watch)
 * or, if the routing table (routing/routes.ts) says it is a node command, handed to the
 * routing. The core is reached only through CoreView.
 *
 * Data flow of one node command (`node status --node-uuid X`): CliLink 'data' ->
 * onFrame (intake.checkCliFrame, unpack, isRoutedCommand) -> CommandRouting.route
 * (CliResponseCountV1Notify to the CLI; one request id per node in the Router; the command
 * written to X's NodeLink). X's reply comes back by the node side: ControllerCore.onNodeFrame
 * -> CommandRouting.takeReply -> the CLI's stream.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../../../gen/google/protobuf/any';
import type { StreamFromCli, StreamToCli } from '../../../gen/protobuf/currency_nodes';
import {
  type Handlers,
  type MessageName,
  commandNameOf,
  dispatch,
  pack,
  typeUrlOf,
  unpack,
} from '../../../shared/any';
import type { Logger } from '../../../shared/logger';
import type { Scheduler } from '../../../shared/scheduler';
import { timestampFromMs } from '../../../shared/time';
import {
  type Span,
  SpanKind,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../../../shared/tracing';
import { type CliServerCall, type Frame, bufferOf, isUuid } from '../../../shared/wire';
import type { Assignment } from '../node-side/assignment';
import { type CliSession, newCliSession } from './cli-session';
import type { ControllerLimits } from '../../config';
import type { WatchFanout } from './fanout';
import { checkCliFrame } from '../intake';
import type { CloseReason } from '../links/close-reasons';
import { StreamLink } from '../links/stream-link';
import type { CoreView } from '../core-view';
import {
  FRAME_OVERHEAD_BYTES,
  type ListedNode,
  V1_REPLY_MAX_BYTES,
  encodeNodeInfo,
  listPages,
  pageBytes,
  splitNodeInfo,
} from '../node-side/node-list';
import type { Observer } from '../observer';
import type { PriceStore } from '../node-side/prices';
import type { NodeRegistry } from '../node-side/registry';
import { type CommandRouting, canonicalUuids } from '../routing/command-routing';
import { isRoutedCommand } from '../routing/routes';

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

export interface CliServiceDeps {
  scheduler: Scheduler;
  logger: Logger;
  appVersion: string;
  newId: () => string;
  limits: ControllerLimits;
  /** The core, as far as the CLI side may ask it (ControllerCore). */
  core: CoreView;
  /** Node commands go out, and their replies come back, through the routing alone. */
  routing: CommandRouting;
  fanout: WatchFanout;
  observer: Observer;
  /** Read only, for `controller nodes`, `streams` and `prices`. */
  registry: NodeRegistry;
  assignment: Assignment;
  prices: PriceStore;
}

type Ctx = { cli: CliSession; frame: StreamFromCli; span: Span; startedAtMs: number };

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
    this.deps.core.clisChanged();
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
    this.deps.routing.cliGone(cli);
    this.deps.core.clisChanged();
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
        const standby = this.deps.core.standbyReason();
        if (standby !== undefined && !STANDBY_ANSWERS.has(r.value.name)) {
          // A controller-level UNAVAILABLE (no node UUID) is how a CLI tells a standby.
          this.sendError(cli, f.streamId, grpc.status.UNAVAILABLE, standby);
          return this.finishNow(c, name, 'error', standby);
        }
        if (dispatch(this.handlers, r.value, c)) return this.finishNow(c, name, 'ok');
        if (isRoutedCommand(r.value.name))
          return this.deps.routing.route({ ...c, name: r.value.name });
      }
      const why = r.ok ? 'not a command the controller takes from a CLI' : 'unknown command type';
      observer.unknownCommand('cli', f.command?.typeUrl, why);
      this.reply(c, pack('UnknownCommandV1Notify', { command: f.command }));
      this.finishNow(c, name, 'unknown', 'unknown command');
    });
  }

  private readonly handlers: Handlers<Ctx> = {
    ControllerListNodesV1Req: (_m, c) => this.listNodesV1(c),
    ControllerListNodesV2Req: (m, c) => this.listNodesPaged(c, m.maxPageBytes, m.withoutPairs),
    ControllerKickNodesV1Req: (m, c) => {
      const kicked: string[] = [];
      const unknown: string[] = [];
      for (const { uuid, raw } of canonicalUuids(m.nodeUuids)) {
        if (isUuid(uuid) && this.deps.core.kick(uuid)) kicked.push(uuid);
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
    const { registry, core } = this.deps;
    const viewOf = (s: Parameters<CoreView['viewOf']>[0]) => core.viewOf(s);
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
   * built is left out; the last page counts the nodes listed. `withoutPairs`: every entry
   * without its pairs (small: built per listing, never split).
   */
  private listNodesPaged(c: Ctx, maxPageBytes: number, withoutPairs: boolean): void {
    const { registry, core } = this.deps;
    const viewOf = (s: Parameters<CoreView['viewOf']>[0]) => core.viewOf(s);
    const snapshot = registry.registered();
    function* nodes(): Generator<ListedNode> {
      for (const listed of snapshot) {
        // The stream holding the UUID now (a newer one may have replaced the listed one).
        const s = registry.get(listed.uuid!);
        if (!s) continue;
        if (withoutPairs) {
          const entry = encodeNodeInfo(core.viewOf(s, { withPairs: false }));
          yield { entry, split: () => [entry] };
        } else
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
}
