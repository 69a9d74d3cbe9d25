/**
 * A fake gRPC client for the CLI session's unit tests (services/cli/session*.test.ts): the
 * client factory of shared/wire.ts is replaced by one whose stream records what the CLI
 * writes and lets the test play the controller, and the unreachable diagnosis by one that
 * answers at once. In a test file:
 *
 *   jest.mock('../shared/wire', () => jest.requireActual('../../tests/support/fake-cli-client').wireMock());
 *   jest.mock('./diagnose', () => jest.requireActual('../../tests/support/fake-cli-client').diagnoseMock());
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { StreamFromCli, StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../services/shared/any';
import { CliSession, type SessionOptions } from '../../services/cli/session';
import { fakeScheduler } from './fake-scheduler';

/** The client stream the session writes to; the test plays the controller with `answer`. */
export class MockStream extends EventEmitter {
  readonly written: StreamFromCli[] = [];
  ended = false;
  cancelled = false;
  write(frame: StreamFromCli): boolean {
    this.written.push(frame);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  /** The controller sends `name` on `streamId` (from `nodeUuid`, for a node's reply). */
  answer<N extends MessageName>(streamId: string, name: N, m: MessageOf<N>, nodeUuid?: string) {
    this.frame({ streamId, nodeUuid, response: pack(name, m), traceContext: {} });
  }
  frame(value: StreamToCli): void {
    this.emit('data', { ok: true, value });
  }
  /** The stream fails as grpc-js reports it: 'error' with the status, then 'status'. */
  fails(code: grpc.status, details: string): void {
    const metadata = new grpc.Metadata();
    this.emit('error', Object.assign(new Error(details), { code, details, metadata }));
    this.emit('status', { code, details, metadata });
  }
  /** The controller ends the stream cleanly: status OK, then the end of the replies. */
  closes(): void {
    this.emit('status', { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() });
    this.emit('end');
  }
  /** The frame the CLI wrote last, its command decoded. */
  last() {
    const f = this.written.at(-1)!;
    const u = unpack(f.command);
    if (!u.ok) throw new Error('undecodable command');
    return { ...f, name: u.value.name, message: u.value.message };
  }
}

export class MockClient {
  readonly streams: { stream: MockStream; metadata: grpc.Metadata }[] = [];
  closed = false;
  constructor(
    readonly address: string,
    readonly readyError: Error | undefined,
  ) {}
  waitForReady(_deadline: number, cb: (err?: Error) => void): void {
    cb(this.readyError);
  }
  cliCommandStream(metadata: grpc.Metadata): MockStream {
    const stream = new MockStream();
    this.streams.push({ stream, metadata });
    return stream;
  }
  close(): void {
    this.closed = true;
  }
}

/** What the fakes saw and will do; reset before each test (`resetFakes`). */
export const fakes: {
  clients: MockClient[];
  /** Set: every client fails waitForReady with it. */
  readyError: Error | undefined;
  diagnoses: { address: string; tls: boolean }[];
} = { clients: [], readyError: undefined, diagnoses: [] };

export function resetFakes(): void {
  fakes.clients.length = 0;
  fakes.diagnoses.length = 0;
  fakes.readyError = undefined;
}

/** The module shared/wire.ts with its CLI client factory replaced. */
export function wireMock(): object {
  return {
    ...jest.requireActual<object>('../../services/shared/wire'),
    createCliClient: (address: string) => {
      const c = new MockClient(address, fakes.readyError);
      fakes.clients.push(c);
      return c;
    },
  };
}

/** The module cli/diagnose.ts, answering at once and recording what it was asked. */
export function diagnoseMock(): object {
  return {
    diagnoseUnreachable: (address: string, opts: { tls: boolean }) => {
      fakes.diagnoses.push({ address, tls: opts.tls });
      return Promise.resolve('connection refused: nothing listens there');
    },
  };
}

/** A session opened on the fakes, with its scheduler, client and stream. */
export async function opened(opts: Partial<SessionOptions> = {}) {
  const scheduler = fakeScheduler();
  const session = new CliSession({
    address: '127.0.0.1:5160',
    timeoutMs: 2000,
    scheduler,
    ...opts,
  });
  await session.open();
  const client = fakes.clients.at(-1)!;
  return { session, scheduler, client, stream: client.streams[0]!.stream };
}
