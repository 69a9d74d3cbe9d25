/**
 * The CLI's stream to the controller (session-stream.ts, under CliSession) on a fake client
 * and the fake scheduler, no gRPC (tests/support/fake-cli-client.ts): opening, closing,
 * an unreachable controller, and the stream ending under a command.
 */
import * as grpc from '@grpc/grpc-js';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { fakes, opened, resetFakes } from '../../tests/support/fake-cli-client';
import { ControllerUnreachable, CliSession, type SessionOptions } from './session';

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
    fakes.readyError = new Error('Failed to connect before the deadline');
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
    expect(fakes.diagnoses).toEqual([{ address: 'ctl.example:5160', tls: false }]);
    expect(fakes.clients[0]!.streams).toEqual([]);
  });

  test('over TLS, the unreachable message says what to check', async () => {
    fakes.readyError = new Error('deadline');
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
    expect(fakes.diagnoses[0]!.tls).toBe(true);
  });

  test('close() ends and cancels the stream and closes the client', async () => {
    const { session, client, stream } = await opened();
    session.close();
    expect(stream.ended).toBe(true);
    expect(stream.cancelled).toBe(true);
    // Closed on the next immediate, after any name resolution grpc-js queued (client.ts).
    expect(client.closed).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(client.closed).toBe(true);
  });

  test('a token that cannot be read fails open() and closes the client it dialled', async () => {
    const session = new CliSession({
      address: '127.0.0.1:5160',
      timeoutMs: 1000,
      scheduler: fakeScheduler(),
      token: { file: '/nonexistent/cli.token' },
    });
    await expect(session.open()).rejects.toThrow(/ENOENT/);
    await new Promise((r) => setImmediate(r));
    expect(fakes.clients.map((c) => c.closed)).toEqual([true]);
  });

  test('a command before open() fails: the session is not open', async () => {
    const session = new CliSession({ address: 'x:1', timeoutMs: 1000, scheduler: fakeScheduler() });
    await expect(
      session.controllerCommand('ControllerAppVersionV1Req', {}, 'ControllerAppVersionV1Reply'),
    ).rejects.toThrow('session not open');
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
