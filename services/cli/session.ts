/**
 * One CLI process = one stream to the controller (session-stream.ts). Each command gets its
 * own stream_id and its own trace; the session collects the replies the controller says
 * to expect.
 */
import type { StreamToCli } from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, type Unpacked, pack, unpack } from '../shared/any';
import type { TimerHandle } from '../shared/scheduler';
import {
  type Context,
  type Span,
  SpanKind,
  SpanStatusCode,
  rpcAttributes,
} from '../shared/tracing';
import type { CliClientCall } from '../shared/wire';
import { context, trace } from '@opentelemetry/api';
import { standbyRefusal } from './session-replies';
import { SessionStream } from './session-stream';

export { ControllerUnreachable } from './session-channel';
export type { SessionOptions, StreamEnd } from './session-stream';

/** How a command answered in several frames (`controllerFrames`) ended. */
export type FramesResult = { ok: true } | { ok: false; problem: string; unknown?: boolean };

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

export interface WatchEnd {
  ended: 'interrupted' | 'closed' | 'rejected';
  problem?: string;
  /** The controller took the subscription before it ended. */
  started: boolean;
}

/**
 * The session: the stream (SessionStream) and the commands over it, each bounded by the
 * timeout and by the stream closing.
 */
export class CliSession extends SessionStream {
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
        else finish({ ok: false, problem: this.describe(frame, r.ok ? r.value : undefined) });
      });
      finish = this.bounded<ControllerResult<R>>(sent.done, resolve, (why) => ({
        ok: false,
        problem: why,
      }));
    });
    endSpan(span, result.ok ? undefined : result.problem);
    return result;
  }

  /**
   * A command the controller answers with a series of `expect` frames on its stream_id (a
   * paged listing): `onReply` takes each in order and says whether more are due. While a
   * frame is being taken (and the promise `onReply` may return is pending: the output is
   * catching up), the stream is paused, so frames do not pile up here: the controller
   * waits with the rest (HTTP/2 flow control). The timeout bounds each wait for the
   * controller's next frame, not the time taken here. `unknown`: the controller does not
   * know the command (it answered UnknownCommandV1Notify).
   */
  async controllerFrames<N extends MessageName, R extends MessageName>(
    name: N,
    message: MessageOf<N>,
    expect: R,
    onReply: (reply: MessageOf<R>) => boolean | Promise<boolean>,
  ): Promise<FramesResult> {
    const { span, ctx } = this.startSpan(name);
    const { scheduler, timeoutMs } = this.opts;
    const result = await new Promise<FramesResult>((resolve) => {
      const queue: StreamToCli[] = [];
      let busy = false;
      let settled = false;
      let timer: TimerHandle | undefined;
      /** The stream paused while frames are taken. */
      let held: CliClientCall | undefined;
      const hold = () => {
        if (held) return;
        held = this.conn?.call;
        held?.pause();
      };
      const release = () => {
        held?.resume();
        held = undefined;
      };
      const arm = () => {
        if (timer !== undefined) scheduler.clearTimeout(timer);
        timer = scheduler.setTimeout(
          () => finish({ ok: false, problem: `timed out after ${timeoutMs / 1000} s` }),
          timeoutMs,
        );
      };
      const onClose = (why: string) => finish({ ok: false, problem: why });
      const finish = (r: FramesResult) => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) scheduler.clearTimeout(timer);
        this.onClosed.delete(onClose);
        sent.done();
        release();
        resolve(r);
      };
      const take = async (frame: StreamToCli): Promise<boolean> => {
        const r = unpack(frame.response);
        if (!r.ok || r.value.name !== expect) {
          finish({
            ok: false,
            problem: this.describe(frame, r.ok ? r.value : undefined),
            unknown: r.ok && r.value.name === 'UnknownCommandV1Notify',
          });
          return false;
        }
        if (timer !== undefined) scheduler.clearTimeout(timer);
        const more = await onReply(r.value.message as MessageOf<R>);
        if (!more) finish({ ok: true });
        else if (!settled) arm();
        return more;
      };
      const pump = async () => {
        busy = true;
        try {
          while (!settled && queue.length > 0) if (!(await take(queue.shift()!))) break;
        } catch (err) {
          finish({ ok: false, problem: err instanceof Error ? err.message : String(err) });
        }
        busy = false;
        release();
      };
      const sent = this.send(pack(name, message), [], ctx, (frame) => {
        if (settled) return;
        queue.push(frame);
        hold();
        if (!busy) void pump();
      });
      arm();
      const end = this.conn?.end;
      if (end) queueMicrotask(() => onClose(end.why));
      else this.onClosed.add(onClose);
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
            finish(this.describe(frame, r.ok ? r.value : undefined));
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
          finish(this.describe(frame, r.value));
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
   * Subscribes to prices; calls `onUpdate` per update until `signal` aborts, the stream
   * ends, or the controller ends the watch (it no longer leads). Asks for batched updates
   * (ControllerWatchPricesV2Req) and falls back to V1 when the controller does not know V2.
   * `started`: the controller took the subscription.
   */
  async watch(
    pairs: string[],
    signal: AbortSignal,
    onStart: (pairs: string[]) => void,
    onUpdate: (nodeUuid: string, update: MessageOf<'NodePriceUpdateV1Notify'>) => void,
  ): Promise<WatchEnd> {
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
            done({ ended: 'rejected', problem: this.describe(frame, r.value) });
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
        } else if (standbyRefusal(frame, r.value) !== undefined) {
          // The controller ended the watch: it stopped leading.
          done({ ended: 'rejected', problem: this.describe(frame, r.value) });
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
      let settled = false;
      const done = (r: Omit<WatchEnd, 'started'>) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.onClosed.delete(onClose);
        sent.done();
        if (!started) endSpan(span, r.problem);
        resolve({ ...r, started });
      };
      const end = this.conn?.end;
      if (signal.aborted) onAbort();
      else if (end) onClose(end.why);
      else {
        signal.addEventListener('abort', onAbort);
        this.onClosed.add(onClose);
      }
    });
  }
}

function endSpan(span: Span, problem?: string): void {
  if (problem) span.setStatus({ code: SpanStatusCode.ERROR, message: problem });
  span.end();
}
