/**
 * The CLI session (session.ts) on a fake client stream and the fake scheduler, no gRPC:
 * the gRPC client factory is replaced by one whose stream records what the CLI writes
 * and lets the test play the controller. Replies are routed by stream_id; a command ends
 * on its reply, on its timeout, or when the stream closes, whichever comes first.
 */
import { type MockStream, opened, resetFakes } from '../../tests/support/fake-cli-client';
import type { CliSession } from './session';

jest.mock('../shared/wire', () =>
  jest
    .requireActual<typeof import('../../tests/support/fake-cli-client')>(
      '../../tests/support/fake-cli-client',
    )
    .wireMock(),
);
jest.mock('./diagnose', () =>
  jest
    .requireActual<typeof import('../../tests/support/fake-cli-client')>(
      '../../tests/support/fake-cli-client',
    )
    .diagnoseMock(),
);

beforeEach(() => resetFakes());

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const C = 'a1b2c3d4-0000-4000-8000-000000000000';

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
