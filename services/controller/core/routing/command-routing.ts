/**
 * Routing between CLI streams and node streams, both ways. A routed command (routes.ts)
 * comes from the CLI side: its targets are looked up in the NodeDirectory, the CLI is told
 * how many replies to expect, and the command goes to each target's link with a request
 * id of its own (the Router). A node's reply comes from the node side: one look-up of its
 * from_uuid finds the CLI stream that asked. A node or a CLI that goes takes its commands
 * in flight with it: the CLI is answered at once rather than left to its timeout.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../../../gen/google/protobuf/any';
import type {
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../../../gen/protobuf/currency_nodes';
import { pack } from '../../../shared/any';
import type { Scheduler } from '../../../shared/scheduler';
import { type Span, injectContext } from '../../../shared/tracing';
import { CLOSE_RULES, type CloseReason } from '../links/close-reasons';
import type { Observer } from '../observer';
import type { RoutedCommandName, NodeFrameRoute } from './routes';
import { type RoutedCommand, Router } from './router';

/** The nodes a command can be routed to: the registered ones (NodeRegistry is one). */
export interface NodeDirectory {
  /** The stream that holds `uuid` now, if a node registered it. */
  get(uuid: string): { readonly link: { send(m: StreamToNode): void } } | undefined;
  /** Every registered node, in order (the targets of a command that names none). */
  registered(): readonly { readonly uuid?: string }[];
}

/** A CLI stream, as far as routing writes to it (a CliSession is one). */
export interface ReplyTarget {
  readonly link: { send(m: StreamToCli): void };
}

/** A node stream a reply came on. */
export interface ReplyingNode {
  readonly uuid?: string;
  readonly link: { readonly peer: string };
}

/** One routed command as the CLI side hands it over. */
export interface CommandToRoute {
  readonly cli: ReplyTarget;
  readonly frame: StreamFromCli;
  readonly name: RoutedCommandName;
  readonly span: Span;
  readonly startedAtMs: number;
}

export interface CommandRoutingDeps {
  scheduler: Scheduler;
  newId: () => string;
  maxPendingPerCli: number;
  nodes: NodeDirectory;
  observer: Pick<Observer, 'commandFinished' | 'malformed' | 'pendingRefused'>;
}

/**
 * Target UUIDs as a CLI sent them -> canonical (lower case), each once, in order, with the
 * first spelling kept for reports: `[u, U]` from a foreign CLI names one node, not two.
 */
export function canonicalUuids(uuids: string[]): { uuid: string; raw: string }[] {
  const seen = new Map<string, string>();
  for (const raw of uuids) {
    const uuid = raw.toLowerCase();
    if (!seen.has(uuid)) seen.set(uuid, raw);
  }
  return [...seen].map(([uuid, raw]) => ({ uuid, raw }));
}

export class CommandRouting {
  private readonly router = new Router<ReplyTarget>();

  constructor(private readonly deps: CommandRoutingDeps) {}

  /** Commands waiting for a node's reply. */
  pendingCount(): number {
    return this.router.size();
  }

  /** CLI side -> nodes: the targets are told, then each is sent the command. */
  route(c: CommandToRoute): void {
    const { cli, frame, span, name } = c;
    const { nodes, maxPendingPerCli } = this.deps;
    const targets: string[] = [];
    const unknown: string[] = [];
    if (frame.nodeUuids.length === 0) {
      for (const s of nodes.registered()) targets.push(s.uuid!);
    } else {
      for (const { uuid, raw } of canonicalUuids(frame.nodeUuids)) {
        if (nodes.get(uuid)) targets.push(uuid);
        else unknown.push(raw);
      }
    }
    if (this.router.pendingOf(cli) + targets.length > maxPendingPerCli) {
      this.deps.observer.pendingRefused();
      this.send(
        cli,
        frame.streamId,
        pack('CliErrorV1Notify', {
          code: grpc.status.RESOURCE_EXHAUSTED,
          message: `too many commands waiting for replies on this stream (limit ${maxPendingPerCli})`,
        }),
        {},
      );
      this.finish(c, 'error', 'too many pending commands');
      return;
    }
    span.setAttribute('currency.target_nodes', targets.length);
    this.send(
      cli,
      frame.streamId,
      pack('CliResponseCountV1Notify', {
        expectedResponses: targets.length,
        nodeUuids: targets,
        unknownNodeUuids: unknown,
      }),
      injectContext(),
    );
    if (targets.length === 0) {
      this.finish(c, unknown.length > 0 ? 'error' : 'ok');
      return;
    }
    const routed: RoutedCommand<ReplyTarget> = {
      command: name,
      startedAtMs: c.startedAtMs,
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
      this.router.add(requestId, uuid, routed);
      nodes.get(uuid)!.link.send({ fromUuid: requestId, command: frame.command, traceContext });
    }
  }

  /**
   * Node side -> the CLI that asked: true if `f` answered a command in flight (it has been
   * written to the CLI's stream, or dropped as another node's). `route` is the frame's
   * (routes.ts); a price is never passed here.
   */
  takeReply(node: ReplyingNode, f: StreamFromNode, route: NodeFrameRoute): boolean {
    const uuid = node.uuid!;
    // A foreign node that does not echo from_uuid: its replies come in the order the
    // commands went out, so the oldest command waiting for it is the one answered.
    const requestId = f.fromUuid || (route === 'reply' ? this.router.oldestFor(uuid) : undefined);
    if (!requestId) return false;
    const p = this.router.take(requestId, uuid);
    if (p === undefined) return false;
    if (p === 'wrong_node') {
      this.deps.observer.malformed(
        'node',
        node.link.peer,
        `node ${uuid} answered a command sent to another node`,
      );
      return true;
    }
    const r = p.routed;
    r.answered++;
    r.cli.link.send({
      streamId: r.streamId,
      nodeUuid: p.nodeUuid,
      response: f.response,
      traceContext: f.traceContext,
    });
    if (r.outstanding.size === 0) this.finishRouted(r, r.failed > 0 ? 'partial' : 'ok');
    return true;
  }

  /** A node went: every command still waiting for it is answered at once, naming it. */
  nodeGone(uuid: string, name: string, reason: CloseReason): void {
    for (const p of this.router.nodeGone(uuid)) {
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
        this.finishRouted(r, r.answered > 0 ? 'partial' : 'error', `node ${uuid} went away`);
    }
  }

  /** A CLI stream went: its unfinished commands are counted as it left them. */
  cliGone(cli: ReplyTarget): void {
    for (const r of this.router.cliGone(cli)) {
      const outcome = r.answered > 0 ? 'partial' : 'timeout';
      this.finishRouted(r, outcome, `no reply from ${[...r.outstanding].join(', ')}`);
    }
  }

  private send(
    cli: ReplyTarget,
    streamId: string,
    response: Any,
    traceContext: Record<string, string>,
  ): void {
    cli.link.send({ streamId, response, traceContext });
  }

  private finish(c: CommandToRoute, outcome: string, error?: string): void {
    const seconds = (this.deps.scheduler.now() - c.startedAtMs) / 1000;
    this.deps.observer.commandFinished(c.name, outcome, seconds, c.span, error);
  }

  private finishRouted(r: RoutedCommand<ReplyTarget>, outcome: string, error?: string): void {
    const seconds = (this.deps.scheduler.now() - r.startedAtMs) / 1000;
    this.deps.observer.commandFinished(r.command, outcome, seconds, r.span, error);
  }
}
