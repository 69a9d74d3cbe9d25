/**
 * `controller nodes` (controller-nodes.ts): each connected node with its pairs and AGE;
 * in --json the connection time as ISO text (null when invalid). The session is a fake.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { timestampFromMs } from '../../shared/time';
import type { ControllerResult } from '../session';
import { controllerNodes } from './controller-nodes';
import { fakeCliSession, noPagedNodeList } from '../../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

type Info = MessageOf<'ControllerListNodesV1Reply'>['nodes'][number];

async function run(result: ControllerResult<'ControllerListNodesV1Reply'>, json = false) {
  const t = fakeCliSession(
    {
      controllerFrames: noPagedNodeList,
      controllerCommand: () => Promise.resolve(result),
    },
    { opts: { json } },
  );
  const code = await controllerNodes(t.env, { intervalMs: 1000 });
  return { code, out: t.out(), err: t.err() };
}

const info = (
  nodeUuid: string,
  name: string,
  known: string[],
  streaming: string[],
  agoMs: number,
): Info => ({
  nodeUuid,
  name,
  knownCurrencyPairs: known,
  streamingCurrencyPairs: streaming,
  connectedAt: timestampFromMs(NOW - agoMs),
  peer: 'ipv4:10.0.0.1:1',
});

describe('controller nodes', () => {
  beforeEach(() => jest.useFakeTimers({ now: NOW }));
  afterEach(() => jest.useRealTimers());

  test('one row per node: UUID, name, known and streaming pairs ("-" for none), and AGE; the count on stderr', async () => {
    const r = await run({
      ok: true,
      reply: {
        nodeUuids: [A, B],
        nodes: [
          info(A, 'alpha', ['BTC_USD', 'EUR_USD'], ['BTC_USD'], 45_000),
          info(B, '', [], [], 3 * 3600_000),
        ],
      },
    });
    expect(r.code).toBe(EXIT.OK);
    expect(r.out.split('\n')).toEqual([
      'UUID                                  NAME   KNOWN PAIRS      STREAMING  AGE',
      `${A}  alpha  BTC_USD,EUR_USD  BTC_USD    45s`,
      `${B}         -                -          3h`,
      '',
    ]);
    expect(r.err).toBe('2 node(s) connected\n');
  });

  test('--json: the node details, the connection time as ISO text, no note', async () => {
    const r = await run(
      { ok: true, reply: { nodeUuids: [A], nodes: [info(A, 'alpha', ['BTC_USD'], [], 1000)] } },
      true,
    );
    expect(JSON.parse(r.out)).toEqual([
      {
        nodeUuid: A,
        name: 'alpha',
        knownCurrencyPairs: ['BTC_USD'],
        streamingCurrencyPairs: [],
        connectedAt: new Date(NOW - 1000).toISOString(),
        peer: 'ipv4:10.0.0.1:1',
      },
    ]);
    expect(r.err).toBe('');
  });

  test('an invalid connection time is AGE "?" in the table and null in --json', async () => {
    const bad = { ...info(A, 'alpha', [], [], 0), connectedAt: { seconds: 1, nanos: -1 } };
    const table = await run({ ok: true, reply: { nodeUuids: [A], nodes: [bad] } });
    expect(table.out.split('\n')[1]!.endsWith('  ?')).toBe(true);
    const json = await run({ ok: true, reply: { nodeUuids: [A], nodes: [bad] } }, true);
    expect(JSON.parse(json.out)[0].connectedAt).toBeNull();
  });

  test('no node connected: the header alone, and "0 node(s) connected"', async () => {
    const r = await run({ ok: true, reply: { nodeUuids: [], nodes: [] } });
    expect(r.out).toBe('UUID  NAME  KNOWN PAIRS  STREAMING  AGE\n');
    expect(r.err).toBe('0 node(s) connected\n');
  });

  test('a failed request is exit 1 with the problem', async () => {
    const r = await run({ ok: false, problem: 'the controller does not know this command' });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe('controller nodes: the controller does not know this command\n');
  });
});
