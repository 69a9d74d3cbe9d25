/**
 * runNodeCommand (node-command.ts): `node status` / `node shutdown` targets resolved,
 * sent through a real CliSession, and the exit code and output decided from the replies.
 * No gRPC: the client factory is replaced by a fake stream, and a scripted controller
 * answers each frame the CLI writes (a count, then the connected nodes' replies), with
 * the fake scheduler standing in for time when a node stays silent.
 */
import { EventEmitter } from 'node:events';
import type { StreamFromCli, StreamToCli } from '../../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { timestampFromMs } from '../../shared/time';
import { type FakeScheduler, fakeScheduler } from '../../../tests/support/fake-scheduler';
import type { GlobalOptions } from '../command';
import { CliSession } from '../session';
import { runNodeCommand } from './node-command';
import { commandEnv } from '../../../tests/support/fake-cli-session';

/** How a connected node answers a routed command. */
type Behaviour = 'answers' | 'silent' | { fails: string } | 'undecodable';

interface ConnectedNode {
  uuid: string;
  name: string;
  behaviour?: Behaviour;
}

interface Script {
  nodes: ConnectedNode[];
  /** The controller refuses `controller nodes` with this message. */
  refuseList?: string;
  /** A controller that predates CliResponseCountV1Notify. */
  noCount?: boolean;
}

/** A client stream on which a scripted controller answers every frame the CLI writes. */
class MockStream extends EventEmitter {
  readonly written: { name: string; nodeUuids: string[]; message: unknown }[] = [];
  constructor(
    private readonly script: Script,
    private readonly scheduler: FakeScheduler,
    private readonly timeoutMs: number,
  ) {
    super();
  }
  write(f: StreamFromCli): boolean {
    const u = unpack(f.command);
    if (!u.ok) throw new Error('the CLI wrote an undecodable command');
    this.written.push({ name: u.value.name, nodeUuids: f.nodeUuids, message: u.value.message });
    // Answered later, as a controller across a network would.
    queueMicrotask(() => this.controller(f.streamId, u.value.name, f.nodeUuids));
    return true;
  }
  end(): void {}
  cancel(): void {}
  // A paged listing pauses the stream while it takes a page (session.ts controllerFrames).
  pause(): void {}
  resume(): void {}

  private send<N extends MessageName>(streamId: string, name: N, m: MessageOf<N>, from?: string) {
    const value: StreamToCli = {
      streamId,
      nodeUuid: from,
      response: pack(name, m),
      traceContext: {},
    };
    this.emit('data', { ok: true, value });
  }

  private controller(streamId: string, name: string, targets: string[]): void {
    const { nodes, refuseList, noCount } = this.script;
    if (name === 'ControllerListNodesV1Req') {
      if (refuseList)
        return this.send(streamId, 'CliErrorV1Notify', { message: refuseList, code: 8 });
      return this.send(streamId, 'ControllerListNodesV1Reply', {
        nodeUuids: nodes.map((n) => n.uuid),
        nodes: nodes.map((n) => ({
          nodeUuid: n.uuid,
          name: n.name,
          knownCurrencyPairs: [],
          streamingCurrencyPairs: [],
          peer: '',
        })),
      });
    }
    if (name !== 'NodeShutdownV1Req')
      // A controller that predates the paged node list (ControllerListNodesV2Req) and
      // anything newer: the CLI falls back to ControllerListNodesV1Req.
      return this.send(streamId, 'UnknownCommandV1Notify', {});
    const wanted = targets.length === 0 ? nodes.map((n) => n.uuid) : [...new Set(targets)];
    const known = wanted.filter((u) => nodes.some((n) => n.uuid === u));
    if (!noCount)
      this.send(streamId, 'CliResponseCountV1Notify', {
        expectedResponses: known.length,
        nodeUuids: known,
        unknownNodeUuids: wanted.filter((u) => !known.includes(u)),
      });
    let silent = false;
    for (const uuid of known) {
      const b = nodes.find((n) => n.uuid === uuid)!.behaviour ?? 'answers';
      if (b === 'silent') silent = true;
      else if (b === 'answers')
        this.send(streamId, 'NodeShutdownV1Reply', { shutdownAt: timestampFromMs(0) }, uuid);
      else if (b === 'undecodable')
        this.emit('data', {
          ok: true,
          value: {
            streamId,
            nodeUuid: uuid,
            response: {
              typeUrl: 'type.googleapis.com/protobuf.NodeFutureV9Reply',
              value: Buffer.alloc(0),
            },
            traceContext: {},
          },
        });
      else this.send(streamId, 'CliErrorV1Notify', { message: b.fails, code: 14 }, uuid);
    }
    // A node that never answers: the CLI's timeout passes.
    if (silent || (noCount && known.length < wanted.length)) this.scheduler.advance(this.timeoutMs);
  }
}

let mockNextStream: MockStream | undefined;

jest.mock('../../shared/wire', () => ({
  ...jest.requireActual<object>('../../shared/wire'),
  createCliClient: () => ({
    waitForReady: (_deadline: number, cb: (err?: Error) => void) => cb(),
    cliCommandStream: () => mockNextStream,
    close: () => {},
  }),
}));

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const A2 = '3f2b0000-0000-4000-8000-000000000000';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const GONE = 'a1b2c3d4-0000-4000-8000-000000000000';

async function run(script: Script, values: string[], opts: Partial<GlobalOptions> = {}) {
  const scheduler = fakeScheduler();
  const timeoutMs = 2000;
  const stream = new MockStream(script, scheduler, timeoutMs);
  mockNextStream = stream;
  const session = new CliSession({ address: '127.0.0.1:5160', timeoutMs, scheduler });
  await session.open();
  const t = commandEnv(session, { opts: { controller: '127.0.0.1:5160', timeoutMs, ...opts } });
  const code = await runNodeCommand(
    t.env,
    'node shutdown',
    'NodeShutdownV1Req',
    {},
    { nodeUuids: values },
    ({ nodeUuid, reply }) => `${nodeUuid}: ${reply.name}\n`,
  );
  session.close();
  return {
    code,
    out: t.out(),
    err: t.err(),
    sent: stream.written,
    /** The node command as it went out, if it did. */
    routed: stream.written.find((w) => w.name === 'NodeShutdownV1Req'),
  };
}

const nodes: ConnectedNode[] = [
  { uuid: A, name: 'alpha' },
  { uuid: B, name: 'beta' },
];

describe('resolving --node-uuid values', () => {
  test('full UUIDs go as they are, lower-cased, without looking up the node list', async () => {
    const r = await run({ nodes }, [A.toUpperCase(), B]);
    expect(r.sent.map((w) => w.name)).toEqual(['NodeShutdownV1Req']);
    expect(r.routed?.nodeUuids).toEqual([A, B]);
    expect(r.code).toBe(EXIT.OK);
  });

  test('names and UUID prefixes are looked up in `controller nodes` and sent as UUIDs', async () => {
    const r = await run({ nodes }, ['beta', A.slice(0, 8).toUpperCase()]);
    expect(r.sent.map((w) => w.name)).toContain('ControllerListNodesV1Req');
    expect(r.sent.at(-1)?.name).toBe('NodeShutdownV1Req');
    expect(r.routed?.nodeUuids).toEqual([B, A]);
    expect(r.code).toBe(EXIT.OK);
  });

  test('the lookup asks for the nodes without their pairs (a name needs none of them)', async () => {
    const r = await run({ nodes }, ['beta']);
    expect(r.sent[0]).toMatchObject({
      name: 'ControllerListNodesV2Req',
      message: { withoutPairs: true },
    });
    expect(r.routed?.nodeUuids).toEqual([B]);
  });

  test('a name match wins over a UUID-prefix match', async () => {
    // "3f2b" is a prefix of both A and A2, and the exact name of B.
    const r = await run(
      {
        nodes: [
          { uuid: A, name: 'alpha' },
          { uuid: A2, name: 'alpha-2' },
          { uuid: B, name: '3f2b' },
        ],
      },
      ['3f2b'],
    );
    expect(r.routed?.nodeUuids).toEqual([B]);
  });

  test('an ambiguous value is a usage error (exit 2) listing the candidates, and nothing is sent to nodes', async () => {
    const r = await run(
      {
        nodes: [
          { uuid: A, name: 'alpha' },
          { uuid: A2, name: 'alpha-2' },
        ],
      },
      ['3f2b'],
    );
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.routed).toBeUndefined();
    expect(r.err).toBe(
      `node shutdown: "3f2b" matches 2 nodes: ${A} (alpha), ${A2} (alpha-2); give a longer UUID prefix or the full UUID\n`,
    );
  });

  test('when no value matches a connected node, nothing is sent (an empty list would mean every node)', async () => {
    const r = await run({ nodes }, ['gamma']);
    expect(r.routed).toBeUndefined();
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe(
      'node shutdown: unknown node "gamma": no connected node has that name or UUID prefix\n',
    );
  });

  test('values that match are sent to; those that do not are named, and the command fails', async () => {
    const r = await run({ nodes }, ['alpha', 'gamma']);
    expect(r.routed?.nodeUuids).toEqual([A]);
    expect(r.out).toBe(`${A}: NodeShutdownV1Reply\n`);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toContain('unknown node "gamma"');
  });

  test('a node list the controller will not give fails the command, saying why', async () => {
    const r = await run({ nodes, refuseList: 'too busy' }, ['alpha']);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.routed).toBeUndefined();
    expect(r.err).toBe(
      'node shutdown: could not look up node names: the controller rejected the command: too busy\n',
    );
  });
});

describe('exit code and output', () => {
  test('--all: every connected node answers, each reply described on stdout, exit 0', async () => {
    const r = await run({ nodes }, []);
    expect(r.routed?.nodeUuids).toEqual([]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe(`${A}: NodeShutdownV1Reply\n${B}: NodeShutdownV1Reply\n`);
    expect(r.err).toBe('');
  });

  test('--all with no node connected succeeds, and says so on stderr', async () => {
    const r = await run({ nodes: [] }, []);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe('');
    expect(r.err).toBe('node shutdown: no nodes connected\n');
  });

  test('a UUID the controller does not know fails the command, naming it as not connected', async () => {
    const r = await run({ nodes }, [A, GONE]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.out).toBe(`${A}: NodeShutdownV1Reply\n`);
    expect(r.err).toBe(`node shutdown: unknown node ${GONE}: not connected\n`);
  });

  test('a node that failed (left before answering) fails the command with its message, control characters escaped', async () => {
    const r = await run(
      { nodes: [{ uuid: A, name: 'alpha', behaviour: { fails: 'node left\x1b[2J' } }] },
      [A],
    );
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe(`node shutdown: node ${A} failed: node left\\x1b[2J\n`);
  });

  test('a node that stays silent fails the command at the timeout, named as not replying', async () => {
    const r = await run({ nodes: [...nodes, { uuid: GONE, name: 'g', behaviour: 'silent' }] }, []);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.out).toBe(`${A}: NodeShutdownV1Reply\n${B}: NodeShutdownV1Reply\n`);
    expect(r.err).toBe(
      `node shutdown: no reply from ${GONE}\nnode shutdown: timed out after 2 s\n`,
    );
  });

  test('a controller without response counts gets a warning; the nodes named are waited for', async () => {
    const r = await run({ nodes, noCount: true }, [A]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe(`${A}: NodeShutdownV1Reply\n`);
    expect(r.err).toContain('the controller sent no response count');
  });

  test('without a count, a named node that is not connected shows as not answering', async () => {
    const r = await run({ nodes, noCount: true }, [GONE]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toContain(`no reply from ${GONE}`);
    expect(r.err).toContain('the controller sent no response count');
  });
});

describe('--json', () => {
  test('one document with every reply, and each list the human output shows on stderr', async () => {
    const r = await run(
      {
        nodes: [
          { uuid: A, name: 'alpha' },
          { uuid: B, name: 'beta', behaviour: 'undecodable' },
        ],
      },
      [A, B, GONE],
      { json: true },
    );
    expect(r.code).toBe(EXIT.FAILED);
    expect(JSON.parse(r.out)).toEqual({
      expectedNodeUuids: [A, B],
      replies: [
        {
          nodeUuid: A,
          type: 'NodeShutdownV1Reply',
          reply: { shutdownAt: '1970-01-01T00:00:00.000Z' },
        },
        { nodeUuid: B, type: 'undecodable', reply: null },
      ],
      failedNodes: [],
      missingNodeUuids: [],
      unknownNodeUuids: [GONE],
      unmatchedNodes: [],
    });
    expect(r.err).toBe(`node shutdown: unknown node ${GONE}: not connected\n`);
  });

  test('a failed command carries its problem; "no nodes connected" is not said in JSON mode', async () => {
    const silent = await run({ nodes: [{ uuid: A, name: 'alpha', behaviour: 'silent' }] }, [A], {
      json: true,
    });
    expect(JSON.parse(silent.out)).toMatchObject({
      missingNodeUuids: [A],
      problem: 'timed out after 2 s',
    });
    const none = await run({ nodes: [] }, [], { json: true });
    expect(none.code).toBe(EXIT.OK);
    expect(JSON.parse(none.out)).not.toHaveProperty('problem');
    expect(none.err).toBe('');
  });
});
