/**
 * One CLI process = one stream to the controller. Each command gets its own stream_id and
 * its own trace; the session collects the replies the controller says to expect.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any';
import type { StreamToCli } from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, type Unpacked, pack, unpack } from '../shared/any';
import { type ClientTokenConfig, isAuthStatus, readClientToken, withToken } from '../shared/auth';
import { cliChannelOptions } from '../shared/grpc-options';
import type { Scheduler } from '../shared/scheduler';
import { type ClientTlsConfig, clientCredentials } from '../shared/tls';
import { diagnoseUnreachable } from './diagnose';
import {
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  injectContext,
  rpcAttributes,
} from '../shared/tracing';
import { type CliClientCall, type Frame, createCliClient } from '../shared/wire';
import { context, trace } from '@opentelemetry/api';

export class ControllerUnreachable extends Error {}

export interface SessionOptions {
  address: string;
  timeoutMs: number;
  /** Overrides `tls` (tests). */
  credentials?: grpc.ChannelCredentials;
  tls?: ClientTlsConfig;
  token?: ClientTokenConfig;
  /** Time for the reply timeouts (tests pass a fake one). */
  scheduler: Scheduler;
}

export type ControllerResult<N extends MessageName> =
  { ok: true; reply: MessageOf<N> } | { ok: false; problem: string };

export interface NodeReply {
  nodeUuid: string;
  reply: Unpacked | { name: 'undecodable'; typeUrl: string };
}

export interface NodeResult {
  /** Nodes the controller sent the command to. */
  expected: string[];
  /** Requested UUIDs the controller does not know. */
  unknown: string[];
  replies: NodeReply[];
  /** Expected nodes that did not answer before the timeout. */
  missing: string[];
  /** Expected nodes the controller reported as failed (e.g. gone before answering). */
  failed: { nodeUuid: string; message: string }[];
  problem?: string;
  /**
   * The controller sent no CliResponseCountV1Notify (a controller that predates it, such as
   * the original Go one): the CLI waited for exactly the nodes it named.
   */
  uncounted?: boolean;
}

type Listener = (frame: StreamToCli) => void;

export class CliSession {
  readonly cliUuid = randomUUID();
  private readonly client: ReturnType<typeof createCliClient>;
  private call?: CliClientCall;
  private readonly listeners = new Map<string, Listener>();
  private closedReason?: string;
  private readonly onClosed = new Set<(why: string) => void>();

  constructor(private readonly opts: SessionOptions) {
    const channel = opts.credentials
      ? { credentials: opts.credentials, options: {} }
      : clientCredentials(opts.tls);
    this.client = createCliClient(opts.address, channel.credentials, {
      ...cliChannelOptions(),
      ...channel.options,
    });
  }

  /** Waits for the channel (bounded by the timeout); throws ControllerUnreachable with the cause. */
  async open(): Promise<void> {
    const ready = await new Promise<boolean>((resolve) =>
      this.client.waitForReady(this.opts.scheduler.now() + this.opts.timeoutMs, (err) =>
        resolve(!err),
      ),
    );
    if (!ready) {
      const why = await diagnoseUnreachable(this.opts.address, {
        tls: this.opts.tls !== undefined,
        timeoutMs: this.opts.timeoutMs,
      });
      throw new ControllerUnreachable(
        `could not reach the controller at ${this.opts.address}` +
          (this.opts.tls
            ? ' over TLS (check the CA, the server name and, if the controller requires one, the client certificate)'
            : '') +
          `: ${why}`,
      );
    }
    const token = this.opts.token ? readClientToken(this.opts.token) : undefined;
    const call = this.client.cliCommandStream(withToken(new grpc.Metadata(), token));
    this.call = call;
    call.on('data', (frame: Frame<StreamToCli>) => {
      if (!frame.ok) return; // an undecodable frame cannot be routed; the timeout reports what is missing
      this.listeners.get(frame.value.streamId)?.(frame.value);
    });
    const closed = (why: string) => {
      if (this.closedReason !== undefined) return;
      this.closedReason = why;
      for (const f of this.onClosed) f(why);
    };
    call.on('error', (e: grpc.ServiceError) =>
      closed(
        isAuthStatus(e.code)
          ? // Reached the controller; it refused us. The command fails (exit 1), clearly.
            `the controller refused this CLI's credentials (${grpc.status[e.code]}): ${e.details}; ` +
              'check CLI_TOKEN / CLI_TOKEN_FILE and the client certificate'
          : `stream to the controller failed: ${e.details || e.message}`,
      ),
    );
    call.on('end', () => closed('the controller closed the stream'));
  }

  close(): void {
    try {
      this.call?.end();
      this.call?.cancel();
    } catch {
      // already closed
    }
    this.client.close();
  }

  /** Sends a command on a fresh stream_id and feeds every frame on it to `onFrame`. */
  private send(
    command: Any,
    nodeUuids: string[],
    ctx: Context,
    onFrame: Listener,
  ): { streamId: string; done(): void } {
    if (!this.call) throw new Error('session not open');
    const streamId = randomUUID();
    this.listeners.set(streamId, onFrame);
    this.call.write({
      streamId,
      cliUuid: this.cliUuid,
      nodeUuids,
      command,
      traceContext: injectContext(ctx),
    });
    return { streamId, done: () => this.listeners.delete(streamId) };
  }

  private startSpan(name: MessageName): { span: Span; ctx: Context } {
    const span = trace.getTracer('currency-cli').startSpan(`cli ${name}`, {
      kind: SpanKind.CLIENT,
      attributes: rpcAttributes('protobuf.CliCmdStream', name),
    });
    return { span, ctx: trace.setSpan(context.active(), span) };
  }

  /** A command the controller answers itself with one `expect` reply. */
  async controllerCommand<N extends MessageName, R extends MessageName>(
    name: N,
    message: MessageOf<N>,
    expect: R,
  ): Promise<ControllerResult<R>> {
    const { span, ctx } = this.startSpan(name);
    const result = await new Promise<ControllerResult<R>>((resolve) => {
      let finish = (r: ControllerResult<R>) => resolve(r);
      const sent = this.send(pack(name, message), [], ctx, (frame) => {
        const r = unpack(frame.response);
        if (r.ok && r.value.name === expect)
          finish({ ok: true, reply: r.value.message as MessageOf<R> });
        else finish({ ok: false, problem: describeUnexpected(frame, r.ok ? r.value : undefined) });
      });
      finish = this.bounded<ControllerResult<R>>(sent.done, resolve, (why) => ({
        ok: false,
        problem: why,
      }));
    });
    endSpan(span, result.ok ? undefined : result.problem);
    return result;
  }

  /** A command routed to nodes: waits for the count, then for every expected reply. */
  async nodeCommand<N extends MessageName>(
    name: N,
    message: MessageOf<N>,
    nodeUuids: string[],
  ): Promise<NodeResult> {
    const { span, ctx } = this.startSpan(name);
    const result: NodeResult = {
      expected: [],
      unknown: [],
      replies: [],
      missing: [],
      failed: [],
    };
    const answered = (u: string) =>
      result.replies.some((x) => x.nodeUuid === u) || result.failed.some((x) => x.nodeUuid === u);
    let counted = false;
    const outcome = await new Promise<string | undefined>((resolve) => {
      let finish = (problem?: string) => resolve(problem);
      const sent = this.send(pack(name, message), nodeUuids, ctx, (frame) => {
        const r = unpack(frame.response);
        if (!counted) {
          if (r.ok && r.value.name === 'CliResponseCountV1Notify') {
            counted = true;
            result.expected = r.value.message.nodeUuids;
            result.unknown = r.value.message.unknownNodeUuids;
            if (r.value.message.expectedResponses === 0) finish();
            return;
          }
          if (!frame.nodeUuid || !nodeUuids.includes(frame.nodeUuid)) {
            finish(describeUnexpected(frame, r.ok ? r.value : undefined));
            return;
          }
          // A named node answers first: this controller forwards without a count.
          counted = true;
          result.uncounted = true;
          result.expected = [...new Set(nodeUuids)];
        }
        const from = frame.nodeUuid ?? '';
        if (r.ok && r.value.name === 'CliErrorV1Notify' && from === '') {
          // Not about one node: the command as a whole failed.
          finish(describeUnexpected(frame, r.value));
          return;
        }
        if (!result.expected.includes(from) || answered(from)) return;
        if (r.ok && r.value.name === 'CliErrorV1Notify') {
          // The controller answers for a node that cannot (it left): no waiting for it.
          result.failed.push({ nodeUuid: from, message: r.value.message.message });
        } else {
          result.replies.push({
            nodeUuid: from,
            reply: r.ok ? r.value : { name: 'undecodable', typeUrl: frame.response?.typeUrl ?? '' },
          });
        }
        if (result.replies.length + result.failed.length === result.expected.length) finish();
      });
      finish = this.bounded<string | undefined>(
        sent.done,
        resolve,
        (why) => why,
        () => {
          if (counted || nodeUuids.length === 0)
            return `timed out after ${this.opts.timeoutMs / 1000} s`;
          // Neither a count nor a reply: a controller that sends no count, and none of the
          // named nodes answered. Name them, as with a count.
          result.uncounted = true;
          result.expected = [...new Set(nodeUuids)];
          return undefined;
        },
      );
    });
    result.missing = result.expected.filter((u) => !answered(u));
    if (outcome) result.problem = outcome;
    endSpan(
      span,
      outcome ??
        (result.missing.length || result.unknown.length || result.failed.length
          ? 'incomplete'
          : undefined),
    );
    return result;
  }

  /**
   * Subscribes to prices; calls `onUpdate` per update until `signal` aborts or the stream
   * ends. Asks for batched updates (ControllerWatchPricesV2Req) and falls back to V1 when
   * the controller does not know V2.
   */
  async watch(
    pairs: string[],
    signal: AbortSignal,
    onStart: (pairs: string[]) => void,
    onUpdate: (nodeUuid: string, update: MessageOf<'NodePriceUpdateV1Notify'>) => void,
  ): Promise<{ ended: 'interrupted' | 'closed' | 'rejected'; problem?: string }> {
    const { span, ctx } = this.startSpan('ControllerWatchPricesV2Req');
    return new Promise((resolve) => {
      let started = false;
      let v1 = false;
      const onFrame = (frame: StreamToCli) => {
        const r = unpack(frame.response);
        if (!r.ok) return;
        if (!started) {
          if (!v1 && r.value.name === 'UnknownCommandV1Notify') {
            // A controller that predates batched watches: subscribe the V1 way.
            v1 = true;
            sent.done();
            sent = this.send(
              pack('ControllerWatchPricesV1Req', { currencyPairs: pairs }),
              [],
              ctx,
              onFrame,
            );
            return;
          }
          if (r.value.name !== 'ControllerWatchPricesV1Reply') {
            done({ ended: 'rejected', problem: describeUnexpected(frame, r.value) });
            return;
          }
          started = true;
          endSpan(span);
          onStart(r.value.message.currencyPairs);
        } else if (r.value.name === 'ControllerPriceUpdatesV1Notify') {
          for (const p of r.value.message.prices) {
            onUpdate(p.nodeUuid, {
              currencyPair: p.currencyPair,
              price: p.price,
              priceUpdatedAt: p.priceUpdatedAt,
            });
          }
        } else if (r.value.name === 'NodePriceUpdateV1Notify') {
          onUpdate(frame.nodeUuid ?? '', r.value.message);
        }
      };
      let sent = this.send(
        pack('ControllerWatchPricesV2Req', { currencyPairs: pairs }),
        [],
        ctx,
        onFrame,
      );
      const onAbort = () => done({ ended: 'interrupted' });
      const onClose = (why: string) => done({ ended: 'closed', problem: why });
      const done = (r: { ended: 'interrupted' | 'closed' | 'rejected'; problem?: string }) => {
        signal.removeEventListener('abort', onAbort);
        this.onClosed.delete(onClose);
        sent.done();
        if (!started) endSpan(span, r.problem);
        resolve(r);
      };
      if (signal.aborted) onAbort();
      else if (this.closedReason !== undefined) onClose(this.closedReason);
      else {
        signal.addEventListener('abort', onAbort);
        this.onClosed.add(onClose);
      }
    });
  }

  /** Wraps a resolver so it fires once: on the result, the timeout, or the stream closing. */
  private bounded<T>(
    cleanup: () => void,
    resolve: (v: T) => void,
    fail: (why: string) => T,
    onTimeout: () => T = () => fail(`timed out after ${this.opts.timeoutMs / 1000} s`),
  ): (v: T) => void {
    let settled = false;
    const settle = (v: T) => {
      if (settled) return;
      settled = true;
      this.opts.scheduler.clearTimeout(timer);
      this.onClosed.delete(onClose);
      cleanup();
      resolve(v);
    };
    const timer = this.opts.scheduler.setTimeout(() => settle(onTimeout()), this.opts.timeoutMs);
    const onClose = (why: string) => settle(fail(why));
    if (this.closedReason !== undefined) queueMicrotask(() => onClose(this.closedReason!));
    else this.onClosed.add(onClose);
    return settle;
  }
}

function describeUnexpected(frame: StreamToCli, value: Unpacked | undefined): string {
  if (!value) return `undecodable reply of type ${frame.response?.typeUrl ?? '(none)'}`;
  if (value.name === 'UnknownCommandV1Notify') return 'the controller does not know this command';
  if (value.name === 'CliErrorV1Notify')
    return `the controller rejected the command: ${value.message.message}`;
  return `unexpected reply ${value.name}`;
}

function endSpan(span: Span, problem?: string): void {
  if (problem) span.setStatus({ code: SpanStatusCode.ERROR, message: problem });
  span.end();
}
