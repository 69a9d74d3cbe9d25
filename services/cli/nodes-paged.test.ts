/**
 * The paged node list as the CLI takes it (nodes.ts `eachNode`): pages handed on in order
 * as they come, a node split across pages merged back, the count on the last page held
 * against what came, a gap in the pages refused, V1 asked only of a controller that does
 * not know V2; and `--node` values resolved page by page (NodeResolver), keeping only the
 * nodes that match. The session is a fake that answers with scripted pages.
 */
import type { MessageOf } from '../shared/any';
import { type KnownNode, NodeResolver, eachNode, nodeNames, resolveNodes } from './nodes';
import type { CliSession, ControllerResult, FramesResult } from './session';
import { fakeSession } from '../../tests/support/fake-cli-session';

type Page = MessageOf<'ControllerListNodesPageV1'>;
type Info = Page['nodes'][number];

const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const info = (i: number, known: string[] = ['BTC_USD'], name = `n${i}`): Info => ({
  nodeUuid: uuid(i),
  name,
  knownCurrencyPairs: known,
  streamingCurrencyPairs: [],
  peer: '',
});
const page = (n: number, nodes: Info[], last = false, totalNodes = 0): Page => ({
  nodes,
  page: n,
  last,
  totalNodes,
});

/**
 * A session answering ControllerListNodesV2Req with `pages` (or `v2` as a result), and
 * V1 with `v1`. Records what was asked, and whether a page came while the previous one
 * was still being taken (the session must not hand on the next before).
 */
function session(
  pages: Page[] | FramesResult,
  v1: ControllerResult<'ControllerListNodesV1Reply'> = { ok: false, problem: 'not asked' },
) {
  const asked: string[] = [];
  const messages: unknown[] = [];
  const s = fakeSession({
    controllerFrames: async (
      name: string,
      m: unknown,
      _expect: string,
      onReply: (p: Page) => boolean | Promise<boolean>,
    ): Promise<FramesResult> => {
      asked.push(name);
      messages.push(m);
      if (!Array.isArray(pages)) return pages;
      for (const p of pages) if (!(await onReply(p))) return { ok: true };
      return { ok: false, problem: 'timed out after 5 s' };
    },
    controllerCommand: (name: string) => {
      asked.push(name);
      return Promise.resolve(v1);
    },
  });
  return { s, asked, messages };
}

async function collect(s: CliSession) {
  const pages: string[][] = [];
  const nodes: KnownNode[] = [];
  const r = await eachNode(s, (p) => {
    pages.push(p.map((n) => n.name));
    nodes.push(...p);
  });
  return { r, pages, nodes };
}

describe('eachNode', () => {
  test('hands on every page in order, and the count of the last', async () => {
    const { s, asked } = session([
      page(0, [info(1), info(2)]),
      page(1, [info(3)]),
      page(2, [info(4)], true, 4),
    ]);
    const { r, pages } = await collect(s);
    expect(asked).toEqual(['ControllerListNodesV2Req']);
    expect(r).toEqual({ ok: true, count: 4 });
    // The last node of a page waits for the next one, in case it goes on there.
    expect(pages).toEqual([['n1'], ['n2'], ['n3', 'n4']]);
  });

  test('the next page is asked for only once the caller has taken the one before', async () => {
    const { s } = session([page(0, [info(1), info(2)]), page(1, [info(3)], true, 3)]);
    const order: string[] = [];
    let release!: () => void;
    const r = eachNode(s, (p) => {
      order.push(`take ${p.map((n) => n.name).join(',')}`);
      if (p[0]!.name !== 'n1') return;
      return new Promise<void>((resolve) => (release = resolve));
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['take n1']);
    release();
    expect(await r).toEqual({ ok: true, count: 3 });
    expect(order).toEqual(['take n1', 'take n2,n3']);
  });

  test('a node split across pages comes merged, pairs in order, counted once', async () => {
    const { s } = session([
      page(0, [info(1), { ...info(2, ['A_B', 'C_D']), streamingCurrencyPairs: ['A_B'] }]),
      page(1, [{ ...info(2, ['E_F'], ''), peer: '' }]),
      page(2, [{ ...info(2, [], ''), streamingCurrencyPairs: ['E_F'] }, info(3)], true, 3),
    ]);
    const { r, nodes } = await collect(s);
    expect(r).toEqual({ ok: true, count: 3 });
    expect(nodes.map((n) => [n.name, n.knownCurrencyPairs, n.streamingCurrencyPairs])).toEqual([
      ['n1', ['BTC_USD'], []],
      ['n2', ['A_B', 'C_D', 'E_F'], ['A_B', 'E_F']],
      ['n3', ['BTC_USD'], []],
    ]);
  });

  test('no node: one last page counting none, and nothing handed on', async () => {
    const { s } = session([page(0, [], true, 0)]);
    const { r, pages } = await collect(s);
    expect(r).toEqual({ ok: true, count: 0 });
    expect(pages).toEqual([]);
  });

  test('a count that disagrees with the nodes listed is a problem, not a short list', async () => {
    const { s } = session([page(0, [info(1)]), page(1, [info(2)], true, 3)]);
    expect((await collect(s)).r).toEqual({
      ok: false,
      problem: 'the controller counted 3 nodes but listed 2',
    });
  });

  test('a page missing from the sequence is a problem', async () => {
    const { s } = session([page(0, [info(1)]), page(2, [info(2)], true, 2)]);
    expect((await collect(s)).r).toEqual({
      ok: false,
      problem: 'the controller sent page 2 of the node list where page 1 was due',
    });
  });

  test('a controller that does not know V2 is asked with V1, whose nodes come as one page', async () => {
    const { s, asked } = session(
      { ok: false, problem: 'the controller does not know this command', unknown: true },
      {
        ok: true,
        reply: { nodeUuids: [uuid(1), uuid(2)], nodes: [info(2), info(1)] },
      },
    );
    const { r, pages } = await collect(s);
    expect(asked).toEqual(['ControllerListNodesV2Req', 'ControllerListNodesV1Req']);
    expect(r).toEqual({ ok: true, count: 2 });
    expect(pages).toEqual([['n1', 'n2']]);
  });

  test('any other failure of V2 is the answer: V1 is not tried', async () => {
    const { s, asked } = session({ ok: false, problem: 'timed out after 5 s' });
    expect((await collect(s)).r).toEqual({ ok: false, problem: 'timed out after 5 s' });
    expect(asked).toEqual(['ControllerListNodesV2Req']);
  });

  test('a listing asks for every node with its pairs by default, and without them when told', async () => {
    const full = session([page(0, [info(1)], true, 1)]);
    await collect(full.s);
    expect(full.messages).toEqual([{ maxPageBytes: 0, withoutPairs: false }]);
    const bare = session([page(0, [info(1, [])], true, 1)]);
    expect(await eachNode(bare.s, () => {}, { withoutPairs: true })).toEqual({
      ok: true,
      count: 1,
    });
    expect(bare.messages).toEqual([{ maxPageBytes: 0, withoutPairs: true }]);
  });

  test('nodeNames keeps names only, and asks for no pairs', async () => {
    const { s, messages } = session([page(0, [info(1)]), page(1, [info(2, [], '')], true, 2)]);
    expect(await nodeNames(s)).toEqual(
      new Map([
        [uuid(1), 'n1'],
        [uuid(2), ''],
      ]),
    );
    expect(messages).toEqual([{ maxPageBytes: 0, withoutPairs: true }]);
  });
});

describe('NodeResolver, one node at a time', () => {
  const nodes = Array.from({ length: 40 }, (_, i) => ({ nodeUuid: uuid(i), name: `n${i}` }));

  test('resolves as resolveNodes does on the whole list', () => {
    const values = ['n3', '00000000-0000-4000-8000-00000000001', 'nope', 'N3', uuid(7)];
    const r = new NodeResolver(values);
    for (const n of nodes) r.add(n);
    const whole = resolveNodes(
      values,
      nodes.map((n) => ({ ...n, knownCurrencyPairs: [], streamingCurrencyPairs: [], peer: '' })),
    );
    expect(r.result().uuids).toEqual(whole.uuids);
    expect(r.result().unmatched).toEqual(whole.unmatched);
    expect(r.result().ambiguous.map((a) => [a.value, a.candidates.map((c) => c.name)])).toEqual(
      whole.ambiguous.map((a) => [a.value, a.candidates.map((c) => c.name)]),
    );
    expect(r.result().ambiguous[0]!.candidates).toHaveLength(10); // ...010 to ...019
  });

  test('a name that turns up after prefix matches still wins', () => {
    const r = new NodeResolver(['0000']);
    for (const n of nodes) r.add(n);
    r.add({ nodeUuid: 'ffffffff-0000-4000-8000-000000000000', name: '0000' });
    expect(r.result()).toEqual({
      uuids: ['ffffffff-0000-4000-8000-000000000000'],
      unmatched: [],
      ambiguous: [],
    });
  });
});
