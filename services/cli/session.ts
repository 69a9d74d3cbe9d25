/**
 * One CLI process = one stream to the controller. Each command gets its own stream_id and
 * its own trace; the session collects the replies the controller says to expect.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any';
import type { StreamFromCli, StreamToCli } from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, type Unpacked, pack, unpack } from '../shared/any';
import { type ClientTokenConfig, isAuthStatus, readClientToken, withToken } from '../shared/auth';
import { cliChannelOptions } from '../shared/grpc-options';
import type { Scheduler, TimerHandle } from '../shared/scheduler';
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
import {
  CLOSE_REASON_METADATA_KEY,
  type CliClientCall,
  type Frame,
  STANDBY_MESSAGE_PREFIX,
  createCliClient,
} from '../shared/wire';
import { context, trace } from '@opentelemetry/api';

export class ControllerUnreachable extends Error {}

export interface SessionOptions {
  /** A controller's address, or several separated by commas (leader election). */
  address: string;
  timeoutMs: number;
  /** Overrides `tls` (tests). */
  credentials?: grpc.ChannelCredentials;
  tls?: ClientTlsConfig;
  token?: ClientTokenConfig;
  /** Time for the reply timeouts (tests pass a fake one). */
  scheduler: Scheduler;
}

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

/** How the stream to a controller ended. */
export interface StreamEnd {
  why: string;
  /**
   * The controller stopped (`shutdown`: a graceful handover) or the connection was lost:
   * a new stream may find the leader again (this controller restarted, or another).
   */
  handover: boolean;
}

type Listener = (frame: StreamToCli) => void;

export interface WatchEnd {
  ended: 'interrupted' | 'closed' | 'rejected';
  problem?: string;
  /** The controller took the subscription before it ended. */
  started: boolean;
}

/** One channel and one stream to one address. */
interface Conn {
  index: number;
  address: string;
  client: ReturnType<typeof createCliClient>;
  call?: CliClientCall;
  end?: StreamEnd;
}

/** A command in flight: its frame (sent again if the session moves on) and its listener. */
interface Pending {
  frame: StreamFromCli;
  listener: Listener;
}

/**
 * A standby controller (leader election) refuses what needs the leader, and ends the
 * watches it held when it stops leading, with CliErrorV1Notify UNAVAILABLE on the
 * command's stream, for no node, its message naming the leader.
 */
function standbyRefusal(frame: StreamToCli, value: Unpacked | undefined): string | undefined {
  if (value?.name !== 'CliErrorV1Notify' || frame.nodeUuid) return undefined;
  const { code, message } = value.message;
  return code === grpc.status.UNAVAILABLE && message.startsWith(STANDBY_MESSAGE_PREFIX)
    ? message
    : undefined;
}

function endOf(st: grpc.StatusObject, address: string): StreamEnd {
  if (isAuthStatus(st.code))
    // Reached the controller; it refused us. The command fails (exit 1), clearly.
    return {
      why:
        `the controller refused this CLI's credentials (${grpc.status[st.code]}): ${st.details}; ` +
        'check CLI_TOKEN / CLI_TOKEN_FILE and the client certificate',
      handover: false,
    };
  if (st.metadata?.get(CLOSE_REASON_METADATA_KEY)[0] === 'shutdown')
    return { why: `the controller at ${address} is stopping (shutdown)`, handover: true };
  if (st.code === grpc.status.OK)
    return { why: 'the controller closed the stream', handover: true };
  return {
    why: `stream to the controller failed: ${st.details || grpc.status[st.code]}`,
    handover: st.code === grpc.status.UNAVAILABLE,
  };
}

/**
 * The stream to the controller. `--controller` may list several addresses (controllers
 * under leader election, outside Kubernetes): the session opens a stream to the first that
 * answers; until a controller has answered a command on it, a standby's refusal moves the
 * commands in flight on to the next address not yet asked, so a command finds the leader.
 * Once a controller answered, the session stays with it; `reconnect` (watches) searches
 * again.
 */
export class CliSession {
  readonly cliUuid = randomUUID();
  private readonly addresses: string[];
  private readonly channel: ReturnType<typeof clientCredentials>;
  private conn?: Conn;
  private readonly pending = new Map<string, Pending>();
  private readonly onClosed = new Set<(why: string) => void>();
  /** A controller answered on this stream: a refusal is then the command's answer. */
  private committed = false;
  /** Addresses asked since the search for the leader began (a standby refused, or unreachable). */
  private readonly asked = new Set<number>();
  /** Moving on from a standby: its refusals wait here, the answer if nobody else leads. */
  private held?: StreamToCli[];
  /** The latest answer was a standby's refusal: `address: message`. */
  private standby?: string;
  private closed = false;

  constructor(private readonly opts: SessionOptions) {
    this.addresses = opts.address
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    if (this.addresses.length === 0) throw new Error('no controller address');
    this.channel = opts.credentials
      ? { credentials: opts.credentials, options: {} }
      : clientCredentials(opts.tls);
  }

  /** The address of the controller the stream goes to now. */
  get address(): string {
    return this.conn?.address ?? this.addresses[0]!;
  }

  /**
   * The latest command was refused by a standby (`address: message` naming the leader):
   * the command needs the leader, and no address given leads.
   */
  standbyRefusal(): string | undefined {
    return this.standby;
  }

  /**
   * After a command failed: whether the leader may be reachable again on a new stream
   * (`reconnect`): the stream ended in a handover, or a standby answered.
   */
  leaderLost(): { standby: boolean } | undefined {
    const end = this.conn?.end;
    if (end) return end.handover ? { standby: false } : undefined;
    return this.standby !== undefined ? { standby: true } : undefined;
  }

  /**
   * Waits for a controller (bounded by the timeout); throws ControllerUnreachable with the
   * cause. One address: waited for until the timeout (it may be starting). Several: the
   * first that answers, in order, each given its share of the timeout.
   */
  async open(): Promise<void> {
    const { scheduler, timeoutMs } = this.opts;
    const deadline = scheduler.now() + timeoutMs;
    const n = this.addresses.length;
    if (n === 1) {
      const conn = this.dial(0);
      if (!(await this.ready(conn, deadline, true))) {
        conn.client.close();
        throw await this.unreachable();
      }
      return this.attach(conn, true);
    }
    const share = Math.max(250, Math.floor(timeoutMs / n));
    for (;;) {
      for (let i = 0; i < n; i++) {
        const conn = this.dial(i);
        if (await this.ready(conn, Math.min(deadline, scheduler.now() + share), false))
          return this.attach(conn, true);
        conn.client.close();
        if (scheduler.now() >= deadline) throw await this.unreachable();
      }
      // None answers yet (one may be starting): round again, shortly.
      await new Promise<void>((r) =>
        scheduler.setTimeout(r, Math.min(200, Math.max(0, deadline - scheduler.now()))),
      );
      if (scheduler.now() >= deadline) throw await this.unreachable();
    }
  }

  /**
   * A new stream, for a watch, after the last one ended or a standby answered: to the next
   * address given (the same one when there is one), and on through the others if one does
   * not answer. False when none answered by `untilMs` or `signal` aborted; the caller
   * waits and tries again, within its bound.
   */
  async reconnect(untilMs: number, signal: AbortSignal): Promise<boolean> {
    const { scheduler, timeoutMs } = this.opts;
    this.drop(this.conn);
    const n = this.addresses.length;
    const from = this.conn?.index ?? -1;
    for (let k = 1; k <= n && !signal.aborted && !this.closed; k++) {
      const conn = this.dial((from + k + n) % n);
      const until = Math.min(untilMs, scheduler.now() + timeoutMs);
      if ((await this.ready(conn, until, false, signal)) && !this.closed) {
        this.attach(conn, true);
        return true;
      }
      conn.client.close();
      if (scheduler.now() >= untilMs) break;
    }
    return false;
  }

  close(): void {
    this.closed = true;
    this.drop(this.conn);
    this.pending.clear();
  }

  private dial(index: number): Conn {
    const address = this.addresses[index]!;
    const client = createCliClient(address, this.channel.credentials, {
      ...cliChannelOptions(),
      ...this.channel.options,
    });
    return { index, address, client };
  }

  /**
   * READY by `deadline`. `patient`: through failed connection attempts (a controller that
   * is starting), as grpc's waitForReady; else no further than the first failed attempt.
   */
  private ready(
    conn: Conn,
    deadline: number,
    patient: boolean,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (patient && !signal)
      return new Promise((resolve) => conn.client.waitForReady(deadline, (err) => resolve(!err)));
    const channel = conn.client.getChannel();
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = () => done(false);
      signal?.addEventListener('abort', onAbort);
      const check = () => {
        if (settled) return;
        const state = channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return done(true);
        if (
          state === grpc.connectivityState.SHUTDOWN ||
          (!patient && state === grpc.connectivityState.TRANSIENT_FAILURE) ||
          this.opts.scheduler.now() >= deadline
        )
          return done(false);
        channel.watchConnectivityState(state, deadline, (err) => (err ? done(false) : check()));
      };
      check();
    });
  }

  private async unreachable(): Promise<ControllerUnreachable> {
    const tls = this.opts.tls
      ? ' over TLS (check the CA, the server name and, if the controller requires one, the client certificate)'
      : '';
    const why = (a: string) =>
      diagnoseUnreachable(a, { tls: this.opts.tls !== undefined, timeoutMs: this.opts.timeoutMs });
    if (this.addresses.length === 1)
      return new ControllerUnreachable(
        `could not reach the controller at ${this.addresses[0]}${tls}: ${await why(this.addresses[0]!)}`,
      );
    const each: string[] = [];
    for (const a of this.addresses) each.push(`${a}: ${await why(a)}`);
    return new ControllerUnreachable(
      `could not reach any controller of ${this.addresses.join(', ')}${tls}: ${each.join('; ')}`,
    );
  }

  /** Opens the stream on a ready channel; `search`: a new search for the leader begins. */
  private attach(conn: Conn, search: boolean): void {
    const token = this.opts.token ? readClientToken(this.opts.token) : undefined;
    const call = conn.client.cliCommandStream(withToken(new grpc.Metadata(), token));
    conn.call = call;
    this.conn = conn;
    this.committed = false;
    if (search) {
      this.asked.clear();
      this.held = undefined;
    }
    this.asked.add(conn.index);
    call.on('data', (frame: Frame<StreamToCli>) => {
      // An undecodable frame cannot be routed; the timeout reports what is missing.
      if (frame.ok && this.conn === conn) this.onFrame(conn, frame.value);
    });
    // The status (after any error) says how the stream ended.
    call.on('error', () => {});
    call.on('status', (st: grpc.StatusObject) => this.ended(conn, endOf(st, conn.address)));
    call.on('end', () =>
      this.ended(conn, { why: 'the controller closed the stream', handover: true }),
    );
  }

  private ended(conn: Conn, end: StreamEnd): void {
    if (conn.end) return;
    conn.end = end;
    if (this.conn !== conn) return;
    for (const f of [...this.onClosed]) f(end.why);
  }

  /** Ends a stream this session no longer uses; its end is not the session's. */
  private drop(conn: Conn | undefined): void {
    if (!conn) return;
    conn.end ??= { why: 'the stream was closed by the CLI', handover: false };
    try {
      conn.call?.end();
      conn.call?.cancel();
    } catch {
      // already closed
    }
    conn.client.close();
  }

  private onFrame(conn: Conn, frame: StreamToCli): void {
    const p = this.pending.get(frame.streamId);
    if (!p) return;
    const r = unpack(frame.response);
    const refusal = standbyRefusal(frame, r.ok ? r.value : undefined);
    if (refusal === undefined) {
      this.committed = true;
      this.standby = undefined;
      p.listener(frame);
      return;
    }
    if (this.held) {
      this.held.push(frame);
      return;
    }
    if (!this.committed && this.nextToAsk() !== undefined) {
      this.held = [frame];
      void this.moveOn(conn);
      return;
    }
    this.standby = `${conn.address}: ${refusal}`;
    p.listener(frame);
  }

  /** The next address not asked yet since the search began, in order after the current. */
  private nextToAsk(): number | undefined {
    const n = this.addresses.length;
    const at = this.conn?.index ?? 0;
    for (let k = 1; k < n; k++) {
      const i = (at + k) % n;
      if (!this.asked.has(i)) return i;
    }
    return undefined;
  }

  /**
   * A standby refused: the commands in flight go to the next address that answers, sent
   * again there; if none does, the refusals held are their answers.
   */
  private async moveOn(from: Conn): Promise<void> {
    const { scheduler, timeoutMs } = this.opts;
    for (let i = this.nextToAsk(); i !== undefined; i = this.nextToAsk()) {
      this.asked.add(i);
      const conn = this.dial(i);
      const ok = await this.ready(conn, scheduler.now() + timeoutMs, false);
      if (this.closed || this.conn !== from) {
        conn.client.close();
        return;
      }
      if (ok) {
        try {
          this.attach(conn, false);
        } catch {
          // e.g. the token file went away meanwhile: the refusals stand.
          conn.client.close();
          break;
        }
        this.held = undefined;
        this.drop(from);
        for (const p of this.pending.values()) conn.call!.write(p.frame);
        return;
      }
      conn.client.close();
    }
    if (this.conn !== from) return;
    const held = this.held ?? [];
    this.held = undefined;
    this.asked.clear();
    for (let i = 0; i < this.addresses.length; i++) this.asked.add(i);
    for (const f of held) this.onFrame(from, f);
  }

  /** Sends a command on a fresh stream_id and feeds every frame on it to `onFrame`. */
  private send(
    command: Any,
    nodeUuids: string[],
    ctx: Context,
    onFrame: Listener,
  ): { streamId: string; done(): void } {
    if (!this.conn) throw new Error('session not open');
    const streamId = randomUUID();
    const frame: StreamFromCli = {
      streamId,
      cliUuid: this.cliUuid,
      nodeUuids,
      command,
      traceContext: injectContext(ctx),
    };
    this.pending.set(streamId, { frame, listener: onFrame });
    // On a stream that ended the command fails at once (bounded); if the session moves on
    // from a standby, it is sent again where it lands.
    if (!this.conn.end) this.conn.call?.write(frame);
    return { streamId, done: () => this.pending.delete(streamId) };
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

  /** Why a reply is not the one expected; a standby's refusal names its address. */
  private describe(frame: StreamToCli, value: Unpacked | undefined): string {
    const refusal = standbyRefusal(frame, value);
    return refusal === undefined ? describeUnexpected(frame, value) : `${this.address}: ${refusal}`;
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
    const end = this.conn?.end;
    if (end) queueMicrotask(() => onClose(end.why));
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
