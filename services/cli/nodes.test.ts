/**
 * The connected nodes as the CLI sees them (nodes.ts): the `controller nodes` reply turned
 * into names, and `--node-uuid` values (a name, a UUID prefix, a full UUID) resolved. The
 * session is a fake that answers ControllerListNodesV1Req.
 */
import type { MessageOf } from '../shared/any';
import { type KnownNode, isFullUuid, listNodes, nodeNames, resolveNodes, withName } from './nodes';
import type { ControllerResult } from './session';
import { fakeSession, noPagedNodeList } from '../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const A2 = '3f2b0000-0000-4000-8000-000000000000';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

type ListReply = MessageOf<'ControllerListNodesV1Reply'>;

/** A session whose only command answers with `result`, counting the asks. */
function session(result: ControllerResult<'ControllerListNodesV1Reply'>) {
  const asked: string[] = [];
  const s = fakeSession({
    controllerFrames: noPagedNodeList,
    controllerCommand: (name: string) => {
      asked.push(name);
      return Promise.resolve(result);
    },
  });
  return { s, asked };
}

const info = (nodeUuid: string, name: string): ListReply['nodes'][number] => ({
  nodeUuid,
  name,
  knownCurrencyPairs: ['BTC_USD'],
  streamingCurrencyPairs: [],
  peer: 'ipv4:10.0.0.1:1',
});

const known = (nodeUuid: string, name: string): KnownNode => ({
  nodeUuid,
  name,
  knownCurrencyPairs: [],
  streamingCurrencyPairs: [],
  peer: '',
});

describe('listNodes', () => {
  test('one entry per UUID in the order of node_uuids, with the details the controller sent', async () => {
    const { s, asked } = session({
      ok: true,
      reply: { nodeUuids: [B, A], nodes: [info(A, 'alpha'), info(B, 'beta')] },
    });
    const r = await listNodes(s);
    expect(asked).toEqual(['ControllerListNodesV1Req']);
    expect(r.ok && r.nodes.map((n) => [n.nodeUuid, n.name, n.peer])).toEqual([
      [B, 'beta', 'ipv4:10.0.0.1:1'],
      [A, 'alpha', 'ipv4:10.0.0.1:1'],
    ]);
  });

  test('a controller of the original design sends only node_uuids: those get empty details', async () => {
    const { s } = session({ ok: true, reply: { nodeUuids: [A], nodes: [] } });
    expect(await listNodes(s)).toEqual({
      ok: true,
      nodes: [
        {
          nodeUuid: A,
          name: '',
          knownCurrencyPairs: [],
          streamingCurrencyPairs: [],
          connectedAt: undefined,
          peer: '',
        },
      ],
    });
  });

  test('a failed list is passed on as it is', async () => {
    const { s } = session({ ok: false, problem: 'timed out after 5 s' });
    expect(await listNodes(s)).toEqual({ ok: false, problem: 'timed out after 5 s' });
  });
});

describe('names next to UUIDs', () => {
  test('nodeNames maps UUID to name', async () => {
    const { s } = session({
      ok: true,
      reply: { nodeUuids: [A, B], nodes: [info(A, 'alpha'), info(B, '')] },
    });
    expect(await nodeNames(s)).toEqual(
      new Map([
        [A, 'alpha'],
        [B, ''],
      ]),
    );
  });

  test('names are a help, not a need: a failed list gives no names rather than an error', async () => {
    const { s } = session({ ok: false, problem: 'refused' });
    expect((await nodeNames(s)).size).toBe(0);
  });

  test('withName shows `uuid (name)`, or the bare UUID when the name is unknown or empty', () => {
    const names = new Map([
      [A, 'alpha'],
      [B, ''],
    ]);
    expect(withName(A, names)).toBe(`${A} (alpha)`);
    expect(withName(B, names)).toBe(B);
    expect(withName(A2, names)).toBe(A2);
  });
});

describe('resolveNodes', () => {
  const nodes = [known(A, 'alpha'), known(A2, 'alpha-2'), known(B, '3f2b')];

  test('a full UUID is taken as it is (lower-cased), connected or not', () => {
    const gone = 'ABCDEF00-0000-4000-8000-000000000000';
    expect(resolveNodes([gone], nodes)).toEqual({
      uuids: [gone.toLowerCase()],
      unmatched: [],
      ambiguous: [],
    });
    expect(isFullUuid(gone)).toBe(true);
    expect(isFullUuid(A.slice(0, 35))).toBe(false);
  });

  test('a name is matched exactly, and wins over a UUID prefix', () => {
    expect(resolveNodes(['alpha'], nodes).uuids).toEqual([A]);
    // "3f2b" is the name of B and a prefix of A and A2: the name wins.
    expect(resolveNodes(['3f2b'], nodes).uuids).toEqual([B]);
    expect(resolveNodes(['ALPHA'], nodes).unmatched).toEqual(['ALPHA']);
  });

  test('a UUID prefix matches case-insensitively', () => {
    expect(resolveNodes(['3F2B8'], nodes).uuids).toEqual([A]);
    expect(resolveNodes(['0b7e'], nodes).uuids).toEqual([B]);
  });

  test('a prefix of several nodes is ambiguous, with those nodes as candidates', () => {
    const r = resolveNodes(['3f2b'], [known(A, 'alpha'), known(A2, 'alpha-2')]);
    expect(r.uuids).toEqual([]);
    expect(r.ambiguous).toEqual([
      { value: '3f2b', candidates: [known(A, 'alpha'), known(A2, 'alpha-2')] },
    ]);
  });

  test('two nodes with the same name are ambiguous too', () => {
    const r = resolveNodes(['twin'], [known(A, 'twin'), known(B, 'twin')]);
    expect(r.ambiguous.map((a) => a.candidates.length)).toEqual([2]);
  });

  test('a value nothing matches is unmatched; the others still resolve', () => {
    const r = resolveNodes(['alpha', 'gamma', 'ffff'], nodes);
    expect(r).toEqual({ uuids: [A], unmatched: ['gamma', 'ffff'], ambiguous: [] });
  });

  test('values naming the same node several ways give it once', () => {
    expect(resolveNodes(['alpha', A.toUpperCase(), '3f2b8c'], nodes).uuids).toEqual([A]);
  });
});
