/**
 * The CLI session (session.ts) on a fake client stream and the fake scheduler, no gRPC:
 * the gRPC client factory is replaced by one whose stream records what the CLI writes
 * and lets the test play the controller. Replies are routed by stream_id; a command ends
 * on its reply, on its timeout, or when the stream closes, whichever comes first.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { StreamFromCli, StreamToCli } from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../shared/any';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { ControllerUnreachable, CliSession, type SessionOptions } from './session';

/** The client stream the session writes to; the test plays the controller with `answer`. */
class MockStream extends EventEmitter {
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

class MockClient {
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

const mockClients: MockClient[] = [];
let mockReadyError: Error | undefined;
const mockDiagnoses: { address: string; tls: boolean }[] = [];

jest.mock('../shared/wire', () => ({
  ...jest.requireActual<object>('../shared/wire'),
  createCliClient: (address: string) => {
    const c = new MockClient(address, mockReadyError);
    mockClients.push(c);
    return c;
  },
}));
jest.mock('./diagnose', () => ({
  diagnoseUnreachable: (address: string, opts: { tls: boolean }) => {
    mockDiagnoses.push({ address, tls: opts.tls });
    return Promise.resolve('connection refused: nothing listens there');
  },
}));

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const C = 'a1b2c3d4-0000-4000-8000-000000000000';

beforeEach(() => {
  mockClients.length = 0;
  mockDiagnoses.length = 0;
  mockReadyError = undefined;
});

async function opened(opts: Partial<SessionOptions> = {}) {
  const scheduler = fakeScheduler();
  const session = new CliSession({
    address: '127.0.0.1:5160',
    timeoutMs: 2000,
    scheduler,
    ...opts,
  });
  await session.open();
  const client = mockClients.at(-1)!;
  return { session, scheduler, client, stream: client.streams[0]!.stream };
}

describe('opening and closing', () => {
  test('opens one stream to the controller, with no credentials when none are configured', async () => {
    const { client } = await opened();
    expect(client.address).toBe('127.0.0.1:5160');
    expect(client.streams).toHaveLength(1);
    expect(client.streams[0]!.metadata.get('authorization')).toEqual([]);
  });

  test('a configured token goes with the stream as a bearer token', async () => {
    const { client } = await opened({ token: { token: 'sekret-token-1' } });
    expect(client.streams[0]!.metadata.get('authorization')).toEqual(['Bearer sekret-token-1']);
  });

  test('a controller not ready by the deadline is ControllerUnreachable, naming the address and the cause', async () => {
    mockReadyError = new Error('Failed to connect before the deadline');
    const session = new CliSession({
      address: 'ctl.example:5160',
      timeoutMs: 1000,
      scheduler: fakeScheduler(),
    });
    const err = await session.open().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ControllerUnreachable);
    expect((err as Error).message).toBe(
      'could not reach the controller at ctl.example:5160: connection refused: nothing listens there',
    );
    expect(mockDiagnoses).toEqual([{ address: 'ctl.example:5160', tls: false }]);
    expect(mockClients[0]!.streams).toEqual([]);
  });

  test('over TLS, the unreachable message says what to check', async () => {
    mockReadyError = new Error('deadline');
    const session = new CliSession({
      address: 'ctl.example:5160',
      timeoutMs: 1000,
      scheduler: fakeScheduler(),
      // TLS configured; the channel credentials themselves are the test's (nothing to read).
      tls: {} as SessionOptions['tls'],
      credentials: grpc.credentials.createInsecure(),
    });
    await expect(session.open()).rejects.toThrow(
      /at ctl\.example:5160 over TLS \(check the CA, the server name and.*\): connection refused/,
    );
    expect(mockDiagnoses[0]!.tls).toBe(true);
  });

  test('close() ends and cancels the stream and closes the client', async () => {
    const { session, client, stream } = await opened();
    session.close();
    expect(stream.ended).toBe(true);
    expect(stream.cancelled).toBe(true);
    expect(client.closed).toBe(true);
  });

  test('a command before open() fails: the session is not open', async () => {
    const session = new CliSession({ address: 'x:1', timeoutMs: 1000, scheduler: fakeScheduler() });
    await expect(
      session.controllerCommand('ControllerAppVersionV1Req', {}, 'ControllerAppVersionV1Reply'),
    ).rejects.toThrow('session not open');
  });
});

describe('commands the controller answers itself', () => {
  const version = (s: CliSession) =>
    s.controllerCommand('ControllerAppVersionV1Req', {}, 'ControllerAppVersionV1Reply');

  test('each command goes on a fresh stream_id, with the CLI UUID and no target nodes', async () => {
    const { session, stream } = await opened();
    void version(session);
    void version(session);
    const [a, b] = stream.written;
    expect(a!.streamId).not.toBe(b!.streamId);
    expect(a!.cliUuid).toBe(session.cliUuid);
    expect(b!.cliUuid).toBe(session.cliUuid);
    expect(a!.nodeUuids).toEqual([]);
    expect(stream.last().name).toBe('ControllerAppVersionV1Req');
  });

  test('the expected reply on its stream_id is the result; frames for other stream ids are not', async () => {
    const { session, stream } = await opened();
    const p = version(session);
    const { streamId } = stream.last();
    stream.answer('other-stream', 'ControllerAppVersionV1Reply', { controllerAppVersion: 'wrong' });
    stream.emit('data', { ok: false, error: 'bad bytes', bytes: 3 }); // undecodable: ignored
    stream.answer(streamId, 'ControllerAppVersionV1Reply', { controllerAppVersion: '1.2.3' });
    await expect(p).resolves.toEqual({ ok: true, reply: { controllerAppVersion: '1.2.3' } });
  });

  test.each<[string, (s: MockStream, id: string) => void, string]>([
    [
      'an unknown command',
      (s, id) => s.answer(id, 'UnknownCommandV1Notify', {}),
      'the controller does not know this command',
    ],
    [
      'an error',
      (s, id) => s.answer(id, 'CliErrorV1Notify', { message: 'stream_id reused', code: 3 }),
      'the controller rejected the command: stream_id reused',
    ],
    [
      'another reply',
      (s, id) => s.answer(id, 'ControllerPricesV1Reply', { prices: [] }),
      'unexpected reply ControllerPricesV1Reply',
    ],
    [
      'an undecodable reply',
      (s, id) =>
        s.frame({
          streamId: id,
          response: { typeUrl: 'type.googleapis.com/protobuf.Nope', value: Buffer.alloc(0) },
          traceContext: {},
        }),
      'undecodable reply of type type.googleapis.com/protobuf.Nope',
    ],
  ])('%s is a failed command that says what came back', async (_what, reply, problem) => {
    const { session, stream } = await opened();
    const p = version(session);
    reply(stream, stream.last().streamId);
    await expect(p).resolves.toEqual({ ok: false, problem });
  });

  test('no reply within the timeout fails the command naming the timeout; a late reply changes nothing', async () => {
    const { session, stream, scheduler } = await opened({ timeoutMs: 2500 });
    const p = version(session);
    const { streamId } = stream.last();
    scheduler.advance(2499);
    scheduler.advance(1);
    await expect(p).resolves.toEqual({ ok: false, problem: 'timed out after 2.5 s' });
    expect(() =>
      stream.answer(streamId, 'ControllerAppVersionV1Reply', { controllerAppVersion: 'late' }),
    ).not.toThrow();
  });

  test('an answered command leaves no timer behind', async () => {
    const { session, stream, scheduler } = await opened();
    const p = version(session);
    expect(scheduler.pending()).toBe(1);
    stream.answer(stream.last().streamId, 'ControllerAppVersionV1Reply', {
      controllerAppVersion: 'v',
    });
    await p;
    expect(scheduler.pending()).toBe(0);
  });
});

describe('the stream to the controller closing', () => {
  test('a refusal of our credentials fails the command waiting, saying what to check', async () => {
    const { session, stream } = await opened();
    const p = session.controllerCommand(
      'ControllerListNodesV1Req',
      {},
      'ControllerListNodesV1Reply',
    );
    stream.fails(grpc.status.UNAUTHENTICATED, 'bad token');
    const r = await p;
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toBe(
      "the controller refused this CLI's credentials (UNAUTHENTICATED): bad token; check CLI_TOKEN / CLI_TOKEN_FILE and the client certificate",
    );
  });

  test('any other failure of the stream fails the command with its details', async () => {
    const { session, stream } = await opened();
    const p = session.controllerCommand('ControllerPricesV1Req', {}, 'ControllerPricesV1Reply');
    stream.fails(grpc.status.UNAVAILABLE, 'connection reset');
    await expect(p).resolves.toEqual({
      ok: false,
      problem: 'stream to the controller failed: connection reset',
    });
  });

  test('a command sent after the stream ended fails at once with why, not at its timeout', async () => {
    const { session, stream, scheduler } = await opened();
    stream.closes();
    // The first reason sticks: a later failure does not rename it.
    stream.fails(grpc.status.UNAVAILABLE, 'later');
    const r = await session.controllerCommand(
      'ControllerPricesV1Req',
      {},
      'ControllerPricesV1Reply',
    );
    expect(r).toEqual({ ok: false, problem: 'the controller closed the stream' });
    expect(scheduler.pending()).toBe(0);
  });
});

describe('commands routed to nodes', () => {
  const status = (s: CliSession, nodes: string[]) => s.nodeCommand('NodeStatusV1Req', {}, nodes);
  const reply = (s: MockStream, id: string, node: string) =>
    s.answer(
      id,
      'NodeStatusV1Reply',
      { appVersion: node, connectedControllerServer: '', streamStates: [] },
      node,
    );

  test('the target nodes go in the frame, and the result waits for exactly the nodes the count names', async () => {
    const { session, stream } = await opened();
    const p = status(session, [A, B, C]);
    const { streamId, nodeUuids } = stream.last();
    expect(nodeUuids).toEqual([A, B, C]);
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 2,
      nodeUuids: [A, B],
      unknownNodeUuids: [C],
    });
    reply(stream, streamId, B);
    reply(stream, streamId, A);
    const r = await p;
    expect(r.expected).toEqual([A, B]);
    expect(r.unknown).toEqual([C]);
    expect(r.replies.map((x) => [x.nodeUuid, x.reply.name])).toEqual([
      [B, 'NodeStatusV1Reply'],
      [A, 'NodeStatusV1Reply'],
    ]);
    expect(r.missing).toEqual([]);
    expect(r.problem).toBeUndefined();
    expect(r.uncounted).toBeUndefined();
  });

  test('a count of zero ends the command at once', async () => {
    const { session, stream, scheduler } = await opened();
    const p = status(session, []);
    stream.answer(stream.last().streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 0,
      nodeUuids: [],
      unknownNodeUuids: [],
    });
    const r = await p;
    expect(r).toMatchObject({ expected: [], replies: [], missing: [], failed: [] });
    expect(r.problem).toBeUndefined();
    expect(scheduler.pending()).toBe(0);
  });

  test('a second reply from a node, or one from a node not expected, is not counted', async () => {
    const { session, stream, scheduler } = await opened();
    const p = status(session, [A, B]);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 2,
      nodeUuids: [A, B],
      unknownNodeUuids: [],
    });
    reply(stream, streamId, A);
    reply(stream, streamId, A);
    reply(stream, streamId, C);
    scheduler.advance(2000);
    const r = await p;
    expect(r.replies.map((x) => x.nodeUuid)).toEqual([A]);
    expect(r.missing).toEqual([B]);
  });

  test('nodes that stay silent are missing at the timeout, and the command says it timed out', async () => {
    const { session, stream, scheduler } = await opened();
    const p = status(session, []);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 3,
      nodeUuids: [A, B, C],
      unknownNodeUuids: [],
    });
    reply(stream, streamId, B);
    scheduler.advance(2000);
    const r = await p;
    expect(r.missing).toEqual([A, C]);
    expect(r.problem).toBe('timed out after 2 s');
  });

  test('the controller answering for a node that cannot (it left) fails that node without waiting for it', async () => {
    const { session, stream, scheduler } = await opened();
    const p = status(session, [A, B]);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 2,
      nodeUuids: [A, B],
      unknownNodeUuids: [],
    });
    stream.answer(streamId, 'CliErrorV1Notify', { message: 'node left', code: 14 }, A);
    reply(stream, streamId, B);
    const r = await p;
    expect(r.failed).toEqual([{ nodeUuid: A, message: 'node left' }]);
    expect(r.replies.map((x) => x.nodeUuid)).toEqual([B]);
    expect(r.missing).toEqual([]);
    expect(r.problem).toBeUndefined();
    expect(scheduler.pending()).toBe(0);
  });

  test('an error naming no node fails the whole command', async () => {
    const { session, stream } = await opened();
    const p = status(session, [A]);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 1,
      nodeUuids: [A],
      unknownNodeUuids: [],
    });
    stream.answer(streamId, 'CliErrorV1Notify', { message: 'too many pending', code: 8 });
    const r = await p;
    expect(r.problem).toBe('the controller rejected the command: too many pending');
    expect(r.missing).toEqual([A]);
  });

  test('a reply that cannot be decoded still counts as an answer, named undecodable with its type', async () => {
    const { session, stream } = await opened();
    const p = status(session, [A]);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 1,
      nodeUuids: [A],
      unknownNodeUuids: [],
    });
    stream.frame({
      streamId,
      nodeUuid: A,
      response: {
        typeUrl: 'type.googleapis.com/protobuf.NodeFutureV9Reply',
        value: Buffer.alloc(0),
      },
      traceContext: {},
    });
    const r = await p;
    expect(r.replies).toEqual([
      {
        nodeUuid: A,
        reply: { name: 'undecodable', typeUrl: 'type.googleapis.com/protobuf.NodeFutureV9Reply' },
      },
    ]);
    expect(r.missing).toEqual([]);
  });

  test("a first frame that is neither a count nor a named node's reply fails the command", async () => {
    const { session, stream } = await opened();
    const p = status(session, [A]);
    stream.answer(stream.last().streamId, 'UnknownCommandV1Notify', {});
    const r = await p;
    expect(r.problem).toBe('the controller does not know this command');
    expect(r.expected).toEqual([]);
  });

  test('the stream closing mid-command fails it with why, listing the nodes still missing', async () => {
    const { session, stream } = await opened();
    const p = status(session, [A, B]);
    const { streamId } = stream.last();
    stream.answer(streamId, 'CliResponseCountV1Notify', {
      expectedResponses: 2,
      nodeUuids: [A, B],
      unknownNodeUuids: [],
    });
    reply(stream, streamId, A);
    stream.closes();
    const r = await p;
    expect(r.problem).toBe('the controller closed the stream');
    expect(r.missing).toEqual([B]);
  });

  describe('a controller that sends no count (it predates CliResponseCountV1Notify)', () => {
    test('a named node answering first means: wait for exactly the nodes named, each once', async () => {
      const { session, stream } = await opened();
      const p = status(session, [A, B, A]);
      const { streamId } = stream.last();
      reply(stream, streamId, B);
      reply(stream, streamId, A);
      const r = await p;
      expect(r.uncounted).toBe(true);
      expect(r.expected).toEqual([A, B]);
      expect(r.replies.map((x) => x.nodeUuid)).toEqual([B, A]);
      expect(r.problem).toBeUndefined();
    });

    test('no frame at all by the timeout: the named nodes are missing, and it is not called a timeout', async () => {
      const { session, scheduler } = await opened();
      const p = status(session, [A, B]);
      scheduler.advance(2000);
      const r = await p;
      expect(r.uncounted).toBe(true);
      expect(r.missing).toEqual([A, B]);
      expect(r.problem).toBeUndefined();
    });

    test('with no node named (every node), silence is a timeout', async () => {
      const { session, scheduler } = await opened();
      const p = status(session, []);
      scheduler.advance(2000);
      const r = await p;
      expect(r.problem).toBe('timed out after 2 s');
      expect(r.uncounted).toBeUndefined();
    });
  });
});

describe('watching prices', () => {
  type Update = { node: string; pair: string; price: number };

  function watching(session: CliSession, pairs: string[], signal = new AbortController().signal) {
    const starts: string[][] = [];
    const updates: Update[] = [];
    const done = session.watch(
      pairs,
      signal,
      (p) => starts.push(p),
      (node, u) => updates.push({ node, pair: u.currencyPair, price: u.price }),
    );
    return { starts, updates, done };
  }

  test('asks for batched updates, and hands on each update of each batch with its node', async () => {
    const { session, stream } = await opened();
    const stop = new AbortController();
    const w = watching(session, ['BTC_USD'], stop.signal);
    const req = stream.last();
    expect(req.name).toBe('ControllerWatchPricesV2Req');
    expect(req.message).toEqual({ currencyPairs: ['BTC_USD'] });
    stream.answer(req.streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: ['BTC_USD'] });
    stream.answer(req.streamId, 'ControllerPriceUpdatesV1Notify', {
      prices: [
        { currencyPair: 'BTC_USD', price: 1, nodeUuid: A },
        { currencyPair: 'BTC_USD', price: 2, nodeUuid: B },
      ],
    });
    stop.abort();
    await expect(w.done).resolves.toMatchObject({ ended: 'interrupted' });
    expect(w.starts).toEqual([['BTC_USD']]);
    expect(w.updates).toEqual([
      { node: A, pair: 'BTC_USD', price: 1 },
      { node: B, pair: 'BTC_USD', price: 2 },
    ]);
  });

  test('falls back to a V1 watch on a fresh stream_id when the controller does not know V2', async () => {
    const { session, stream } = await opened();
    const stop = new AbortController();
    const w = watching(session, [], stop.signal);
    const v2 = stream.last();
    stream.answer(v2.streamId, 'UnknownCommandV1Notify', {});
    const v1 = stream.last();
    expect(v1.name).toBe('ControllerWatchPricesV1Req');
    expect(v1.streamId).not.toBe(v2.streamId);
    stream.answer(v1.streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: ['EUR_USD'] });
    stream.answer(
      v1.streamId,
      'NodePriceUpdateV1Notify',
      { currencyPair: 'EUR_USD', price: 1.08 },
      A,
    );
    // The abandoned V2 stream_id is not listened to any more.
    stream.answer(v2.streamId, 'NodePriceUpdateV1Notify', { currencyPair: 'EUR_USD', price: 9 }, A);
    stop.abort();
    await w.done;
    expect(w.starts).toEqual([['EUR_USD']]);
    expect(w.updates).toEqual([{ node: A, pair: 'EUR_USD', price: 1.08 }]);
  });

  test('a refusal instead of the watch reply ends the watch as rejected, saying why', async () => {
    const { session, stream } = await opened();
    const w = watching(session, ['bad pair']);
    stream.answer(stream.last().streamId, 'CliErrorV1Notify', {
      message: 'invalid pair "bad pair"',
      code: 3,
    });
    await expect(w.done).resolves.toMatchObject({
      ended: 'rejected',
      problem: 'the controller rejected the command: invalid pair "bad pair"',
    });
    expect(w.starts).toEqual([]);
  });

  test('the stream closing ends the watch as closed, with why', async () => {
    const { session, stream } = await opened();
    const w = watching(session, []);
    stream.answer(stream.last().streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: [] });
    stream.fails(grpc.status.UNAVAILABLE, 'controller went away');
    await expect(w.done).resolves.toMatchObject({
      ended: 'closed',
      problem: 'stream to the controller failed: controller went away',
    });
  });

  test('a watch has no timeout: it runs until stopped, however long', async () => {
    const { session, stream, scheduler } = await opened({ timeoutMs: 1000 });
    const stop = new AbortController();
    const w = watching(session, [], stop.signal);
    const { streamId } = stream.last();
    stream.answer(streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: [] });
    scheduler.advance(3_600_000);
    stream.answer(streamId, 'NodePriceUpdateV1Notify', { currencyPair: 'BTC_USD', price: 5 }, A);
    stop.abort();
    await w.done;
    expect(w.updates).toEqual([{ node: A, pair: 'BTC_USD', price: 5 }]);
  });

  test('an already-stopped watch, or one on a closed stream, ends at once', async () => {
    const { session, stream } = await opened();
    const stopped = new AbortController();
    stopped.abort();
    await expect(watching(session, [], stopped.signal).done).resolves.toMatchObject({
      ended: 'interrupted',
    });
    stream.closes();
    await expect(watching(session, []).done).resolves.toMatchObject({
      ended: 'closed',
      problem: 'the controller closed the stream',
    });
  });
});
