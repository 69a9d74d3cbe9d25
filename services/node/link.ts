/**
 * One stream of the node to a controller: what the connection loop (connection.ts) dials,
 * writes to and closes, and how the way a stream ended is read.
 */
import * as grpc from '@grpc/grpc-js';
import type { StreamFromNode } from '../gen/protobuf/currency_nodes';
import type { Logger } from '../shared/logger';
import { closeReasonOf } from '../shared/protocol';
import type { Scheduler, TimerHandle } from '../shared/scheduler';
import type { NodeClientCall } from '../shared/wire';
import type { ConnectionView } from './keepalive';

/** What of a grpc-js client call the loop uses; tests pass a fake. */
export type NodeStream = Pick<
  NodeClientCall,
  'on' | 'write' | 'end' | 'cancel' | 'writableNeedDrain'
>;

/**
 * Opens a stream to `address`, with fast client pings when `keepalivePermitMs` is set. May
 * throw. `connection`, when given, tells whether the controller still holds the stream's
 * connection open (keepalive.ts ConnectionWatch): how a keepalive timeout is told from a
 * connection the controller closed.
 */
export type Dialer = (address: string, keepalivePermitMs: number | undefined) => Dialled;

export interface Dialled {
  call: NodeStream;
  close(): void;
  connection?: ConnectionView;
  /**
   * Whether the stream's channel has its connection (TCP, TLS and HTTP/2 handshakes done);
   * absent: cannot tell, and the dial is never given up for want of one.
   */
  connected?(): boolean;
}

export interface Link {
  readonly address: string;
  /** The controller said (response header) that it takes NodePriceUpdatesV1Notify. */
  readonly acceptsPriceBatches: boolean;
  readonly connectedAtMs: number | undefined;
  write(msg: StreamFromNode): void;
  backedUp(): boolean;
}

/** A dialled stream, as the connection loop holds it. */
export class LiveLink implements Link {
  acceptsPriceBatches = false;
  connectedAtMs: number | undefined;
  announced = false;
  closed = false;
  headerTimer: TimerHandle | undefined;
  /** While connecting: gives the dial up if it has no connection by then. */
  connectTimer: TimerHandle | undefined;
  private readonly statusSeen: Promise<void>;
  private seen!: () => void;

  readonly call: NodeStream;
  readonly connection: ConnectionView | undefined;

  constructor(
    readonly address: string,
    readonly permitMs: number | undefined,
    private readonly dialled: Dialled,
    private readonly log: Logger,
  ) {
    this.call = dialled.call;
    this.connection = dialled.connection;
    this.statusSeen = new Promise((r) => (this.seen = r));
  }

  /** The channel has no connection yet, as far as the dialler can tell. */
  stillConnecting(): boolean {
    return this.dialled.connected?.() === false;
  }

  ended(): void {
    this.seen();
  }

  write(msg: StreamFromNode): void {
    if (this.closed) return;
    try {
      this.call.write(msg);
    } catch (err) {
      this.log.debug({ err }, 'write after stream end');
    }
  }

  backedUp(): boolean {
    return this.call.writableNeedDrain;
  }

  close(): void {
    this.closed = true;
    try {
      this.call.cancel();
    } catch {
      // already ended
    }
    this.dialled.close();
  }

  /** Half-close, give the controller `graceMs` to see the clean end, then close. */
  async closeGracefully(scheduler: Scheduler, graceMs: number): Promise<void> {
    this.closed = true;
    let timer: TimerHandle | undefined;
    const grace = new Promise<void>((r) => (timer = scheduler.setTimeout(r, graceMs)));
    try {
      this.call.end();
    } catch {
      this.seen();
    }
    await Promise.race([this.statusSeen, grace]);
    if (timer) scheduler.clearTimeout(timer);
    this.close();
  }
}

export type StatusLike = { code?: number; details?: string; metadata?: grpc.Metadata };

/** A standby controller refuses node streams with UNAVAILABLE and the trailer `not_leader`. */
export function isStandbyRefusal(st: StatusLike | undefined): boolean {
  return closeReasonOf(st) === 'not_leader';
}

/**
 * Our controller ends a stream displaced by a newer one with the same UUID with ABORTED
 * and the trailer `x-currency-close-reason: replaced`; the details text says so too, for
 * a proxy that drops trailers.
 */
export function isDisplaced(st: StatusLike | undefined): boolean {
  if (!st) return false;
  if (closeReasonOf(st) === 'replaced') return true;
  return st.code === grpc.status.ABORTED && /^replaced by a newer stream/i.test(st.details ?? '');
}
