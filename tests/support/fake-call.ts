/**
 * A stand-in for a grpc-js server duplex call, for unit tests of the controller core:
 * frames go in with `receive`, what the core writes is in `written`, and how the core
 * ended the stream is in `status` (undefined: still open; code 0: a clean end).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { StreamFromCli, StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import {
  type MessageName,
  type MessageOf,
  type Unpacked,
  pack,
  unpack,
} from '../../services/shared/any';
import type { Frame } from '../../services/shared/wire';

export class FakeCall<In, Out> extends EventEmitter {
  readonly written: Out[] = [];
  status?: { code: number; details: string; metadata?: grpc.Metadata };
  headers?: grpc.Metadata;
  readonly metadata = new grpc.Metadata();
  writableLength = 0;
  cancelled = false;

  constructor(private readonly peer = 'ipv4:127.0.0.1:40000') {
    super();
    // The core's own 'error' emit ends the call; record it as the status sent.
    this.on('error', (e: { code: number; details: string; metadata?: grpc.Metadata }) => {
      this.status ??= e;
    });
  }

  getPeer(): string {
    return this.peer;
  }

  sendMetadata(md: grpc.Metadata): void {
    this.headers = md;
  }

  /**
   * Hold the write callbacks (the transport has not taken the messages yet, as when the
   * peer does not read) until `releaseWrites`; otherwise each runs on the next microtask.
   */
  holdWrites = false;
  private readonly heldWrites: (() => void)[] = [];

  write(msg: Out, onWritten?: (err?: Error | null) => void): boolean {
    this.written.push(msg);
    if (onWritten) {
      if (this.holdWrites) this.heldWrites.push(() => onWritten());
      else queueMicrotask(() => onWritten());
    }
    return true;
  }

  /** Runs the write callbacks held so far (the peer read what was written). */
  releaseWrites(): void {
    for (const cb of this.heldWrites.splice(0)) cb();
  }

  end(): void {
    this.status ??= { code: grpc.status.OK, details: '' };
  }

  receive(value: In): void {
    this.emit('data', { ok: true, value } satisfies Frame<In>);
  }

  /** The peer half-closes cleanly: 'end', then 'finish' once our status is out. */
  peerEnds(): void {
    this.emit('end');
    this.emit('finish');
  }

  /** The connection drops: 'end', then 'cancelled' before any 'finish'. */
  connectionDrops(): void {
    this.cancelled = true;
    this.emit('end');
    this.emit('cancelled');
  }

  asCall<T>(): T {
    return this as unknown as T;
  }
}

/** A CLI stream's call. */
export type FakeCliCall = FakeCall<StreamFromCli, StreamToCli>;

/** The CLI sends command `name` on `streamId` (from a fresh CLI UUID unless one is given). */
export function sendCliCommand<N extends MessageName>(
  call: FakeCliCall,
  streamId: string,
  name: N,
  m: MessageOf<N>,
  cliUuid: string = randomUUID(),
): void {
  call.receive({ streamId, cliUuid, nodeUuids: [], command: pack(name, m), traceContext: {} });
}

/** What the controller wrote on `streamId`, unpacked (undefined: a response that did not unpack). */
export function cliReplies(call: FakeCliCall, streamId: string): (Unpacked | undefined)[] {
  return call.written
    .filter((w) => w.streamId === streamId)
    .map((w) => {
      const u = unpack(w.response);
      return u.ok ? u.value : undefined;
    });
}
