/**
 * The CLI's stream to the controller (session.ts builds its commands on it): which address
 * it goes to (leader election: past standbys to the leader), how it is opened, reconnected
 * and closed (every client it dialled closed on every path), and how frames reach the
 * command that waits for them by stream_id.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any';
import type { StreamFromCli, StreamToCli } from '../gen/protobuf/currency_nodes';
import { type Unpacked, unpack } from '../shared/any';
import type { ClientTokenConfig } from '../shared/auth';
import { type ClientChannel, type Dialled, channelFor, dialController } from '../shared/client';
import { cliChannelOptions } from '../shared/grpc-options';
import type { Scheduler } from '../shared/scheduler';
import type { ClientTlsConfig } from '../shared/tls-client';
import { type Context, injectContext } from '../shared/tracing';
import type { CliClientCall, Frame, createCliClient } from '../shared/wire';
import { type ControllerUnreachable, channelReady, unreachableError } from './session-channel';
import { type StreamEnd, describeUnexpected, endOf, standbyRefusal } from './session-replies';

export type { StreamEnd } from './session-replies';

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

export type Listener = (frame: StreamToCli) => void;

/** One channel and one stream to one address. */
interface Conn extends Dialled<ReturnType<typeof createCliClient>> {
  index: number;
  address: string;
  call?: CliClientCall;
  end?: StreamEnd;
}

/** A command in flight: its frame (sent again if the session moves on) and its listener. */
interface Pending {
  frame: StreamFromCli;
  listener: Listener;
}

/**
 * The stream to the controller. `--controller` may list several addresses (controllers
 * under leader election, outside Kubernetes): the session opens a stream to the first that
 * answers; until a controller has answered a command on it, a standby's refusal moves the
 * commands in flight on to the next address not yet asked, so a command finds the leader.
 * Once a controller answered, the session stays with it; `reconnect` (watches) searches
 * again.
 */
export class SessionStream {
  readonly cliUuid = randomUUID();
  private readonly addresses: string[];
  private readonly channel: ClientChannel;
  protected conn?: Conn;
  private readonly pending = new Map<string, Pending>();
  protected readonly onClosed = new Set<(why: string) => void>();
  /** A controller answered on this stream: a refusal is then the command's answer. */
  private committed = false;
  /** Addresses asked since the search for the leader began (a standby refused, or unreachable). */
  private readonly asked = new Set<number>();
  /** Moving on from a standby: its refusals wait here, the answer if nobody else leads. */
  private held?: StreamToCli[];
  /** The latest answer was a standby's refusal: `address: message`. */
  private standby?: string;
  private closed = false;

  constructor(protected readonly opts: SessionOptions) {
    this.addresses = opts.address
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    if (this.addresses.length === 0) throw new Error('no controller address');
    // Read once: every dial of this session shares the credentials (and so grpc-js's
    // subchannel per address).
    this.channel = channelFor({
      tls: opts.tls,
      channel: opts.credentials && { credentials: opts.credentials, options: {} },
    });
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
      if (!(await channelReady(conn.client, deadline, true, scheduler))) {
        conn.close();
        throw await this.unreachable();
      }
      return this.attach(conn, true);
    }
    const share = Math.max(250, Math.floor(timeoutMs / n));
    for (;;) {
      for (let i = 0; i < n; i++) {
        const conn = this.dial(i);
        if (
          await channelReady(
            conn.client,
            Math.min(deadline, scheduler.now() + share),
            false,
            scheduler,
          )
        )
          return this.attach(conn, true);
        conn.close();
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
      if (scheduler.now() >= untilMs) break;
      const conn = this.dial((from + k + n) % n);
      const until = Math.min(untilMs, scheduler.now() + timeoutMs);
      if ((await channelReady(conn.client, until, false, scheduler, signal)) && !this.closed) {
        this.attach(conn, true);
        return true;
      }
      conn.close();
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
    const dialled = dialController({
      address,
      options: cliChannelOptions(),
      channel: this.channel,
      token: this.opts.token,
    });
    return { ...dialled, index, address };
  }

  private unreachable(): Promise<ControllerUnreachable> {
    const { tls, timeoutMs, scheduler } = this.opts;
    return unreachableError(this.addresses, { tls: tls !== undefined, timeoutMs, scheduler });
  }

  /** Opens the stream on a ready channel; `search`: a new search for the leader begins. */
  private attach(conn: Conn, search: boolean): void {
    let call: CliClientCall;
    try {
      call = conn.client.cliCommandStream(conn.metadata());
    } catch (err) {
      // e.g. the token file went away: this client is not used, and not left open.
      conn.close();
      throw err;
    }
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
    conn.close();
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
      const ok = await channelReady(conn.client, scheduler.now() + timeoutMs, false, scheduler);
      if (this.closed || this.conn !== from) {
        conn.close();
        return;
      }
      if (ok) {
        try {
          this.attach(conn, false);
        } catch {
          // e.g. the token file went away meanwhile (attach closed the client): the
          // refusals stand.
          break;
        }
        this.held = undefined;
        this.drop(from);
        for (const p of this.pending.values()) conn.call!.write(p.frame);
        return;
      }
      conn.close();
    }
    if (this.conn !== from) return;
    const held = this.held ?? [];
    this.held = undefined;
    this.asked.clear();
    for (let i = 0; i < this.addresses.length; i++) this.asked.add(i);
    for (const f of held) this.onFrame(from, f);
  }

  /** Sends a command on a fresh stream_id and feeds every frame on it to `onFrame`. */
  protected send(
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

  /** Why a reply is not the one expected; a standby's refusal names its address. */
  protected describe(frame: StreamToCli, value: Unpacked | undefined): string {
    const refusal = standbyRefusal(frame, value);
    return refusal === undefined ? describeUnexpected(frame, value) : `${this.address}: ${refusal}`;
  }

  /** Wraps a resolver so it fires once: on the result, the timeout, or the stream closing. */
  protected bounded<T>(
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
