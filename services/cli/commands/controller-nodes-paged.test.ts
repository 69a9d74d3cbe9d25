/**
 * `controller nodes` printed page by page (controller-nodes.ts): --json is the very
 * document printing the whole array gives; the table is the whole table for one page and
 * widens (never narrows) its columns for later ones; stdout's backpressure holds the
 * listing back; -w keeps a digest per node and prints changes as rows arrive. The session
 * is a fake that answers ControllerListNodesV2Req with scripted pages.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { timestampFromMs } from '../../shared/time';
import { json } from '../io';
import type { FramesResult } from '../session';
import { controllerNodes } from './controller-nodes';
import { commandEnv, fakeSession } from '../../../tests/support/fake-cli-session';

type Page = MessageOf<'ControllerListNodesPageV1'>;
type Info = Page['nodes'][number];

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const info = (i: number, name = `n${i}`, known = ['BTC_USD']): Info => ({
  nodeUuid: uuid(i),
  name,
  knownCurrencyPairs: known,
  streamingCurrencyPairs: [],
  connectedAt: timestampFromMs(NOW - 60_000),
  peer: `ipv4:10.0.0.${i}:1`,
});

/** Pages of `perPage` nodes each, the last one counting them. */
function paged(nodes: Info[], perPage: number): Page[] {
  const pages: Page[] = [];
  for (let i = 0; i === 0 || i < nodes.length; i += perPage)
    pages.push({
      nodes: nodes.slice(i, i + perPage),
      page: pages.length,
      last: false,
      totalNodes: 0,
    });
  pages[pages.length - 1]!.last = true;
  pages[pages.length - 1]!.totalNodes = nodes.length;
  return pages;
}

/** A session serving `list()` (read at every listing) in pages of `perPage`. */
function session(list: () => Info[] | FramesResult, perPage = 2) {
  let listings = 0;
  const s = fakeSession({
    controllerFrames: async (
      _name: string,
      _m: unknown,
      _expect: string,
      onReply: (p: Page) => boolean | Promise<boolean>,
    ): Promise<FramesResult> => {
      listings++;
      const l = list();
      if (!Array.isArray(l)) return l;
      for (const p of paged(l, perPage)) if (!(await onReply(p))) return { ok: true };
      return { ok: false, problem: 'no last page' };
    },
    // No handover to follow (handover.ts asks after a failure).
    leaderLost: () => undefined,
  });
  return { s, listings: () => listings };
}

describe('controller nodes, page by page', () => {
  beforeEach(() =>
    jest.useFakeTimers({ now: NOW, doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }),
  );
  afterEach(() => jest.useRealTimers());

  test('--json is exactly the whole document, written a page at a time', async () => {
    const nodes = Array.from({ length: 7 }, (_, i) => info(i));
    const r = commandEnv(session(() => nodes, 3).s, { opts: { json: true } });
    expect(await controllerNodes(r.env, { intervalMs: 1000 })).toBe(EXIT.OK);
    const whole = json(
      nodes.map((n) => ({ ...n, connectedAt: new Date(NOW - 60_000).toISOString() })),
    );
    expect(r.out()).toBe(whole);
    expect(r.writes.out.length).toBeGreaterThan(2);
    expect(r.err()).toBe('');
  });

  test('--json of no nodes is []', async () => {
    const r = commandEnv(session(() => []).s, { opts: { json: true } });
    expect(await controllerNodes(r.env, { intervalMs: 1000 })).toBe(EXIT.OK);
    expect(r.out()).toBe('[]\n');
  });

  test('the table of one page is the whole table; a later page widens a column, never narrows it', async () => {
    const nodes = [info(1, 'a'), info(2, 'a-longer-name'), info(3, 'b')];
    const one = commandEnv(session(() => nodes, 10).s);
    await controllerNodes(one.env, { intervalMs: 1000 });
    expect(one.out().split('\n')[1]).toBe(`${uuid(1)}  a              BTC_USD      -          60s`);
    const three = commandEnv(session(() => nodes, 1).s);
    await controllerNodes(three.env, { intervalMs: 1000 });
    expect(three.out().split('\n')).toEqual([
      'UUID                                  NAME  KNOWN PAIRS  STREAMING  AGE',
      `${uuid(1)}  a     BTC_USD      -          60s`,
      `${uuid(2)}  a-longer-name  BTC_USD      -          60s`,
      `${uuid(3)}  b              BTC_USD      -          60s`,
      '',
    ]);
    expect(three.err()).toBe('3 node(s) connected\n');
  });

  test('waits for stdout to drain after each page', async () => {
    const nodes = Array.from({ length: 6 }, (_, i) => info(i));
    const r = commandEnv(session(() => nodes, 2).s, { opts: { json: true } });
    const releases: (() => void)[] = [];
    r.env.io.drained = () => new Promise<void>((resolve) => releases.push(resolve));
    const done = controllerNodes(r.env, { intervalMs: 1000 });
    await new Promise((resolve) => setImmediate(resolve));
    // One page printed (its last node waits for the next page), then a wait for stdout.
    expect(releases).toHaveLength(1);
    expect(r.out().match(/"nodeUuid"/g)).toHaveLength(1);
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await done).toBe(EXIT.OK);
    expect(r.out().match(/"nodeUuid"/g)).toHaveLength(6);
  });

  test('a listing cut short is exit 1 with the problem; what came stays printed', async () => {
    let calls = 0;
    const s = fakeSession({
      controllerFrames: async (
        _n: string,
        _m: unknown,
        _e: string,
        onReply: (p: Page) => boolean | Promise<boolean>,
      ) => {
        calls++;
        await onReply({ nodes: [info(1), info(2)], page: 0, last: false, totalNodes: 0 });
        return { ok: false, problem: 'stream to the controller failed: gone' };
      },
    });
    const r = commandEnv(s);
    expect(await controllerNodes(r.env, { intervalMs: 1000 })).toBe(EXIT.FAILED);
    expect(calls).toBe(1);
    expect(r.out()).toContain(uuid(1));
    expect(r.err()).toBe('controller nodes: stream to the controller failed: gone\n');
  });
});

describe('controller nodes -w, page by page', () => {
  test('on a pipe: the table, then ADDED and CHANGED as rows come, GONE with UUID and name', async () => {
    let nodes = [info(1), info(2), info(3)];
    let listed = 0;
    const { s } = session(() => {
      listed++;
      if (listed === 2) nodes = [info(1), info(3, 'n3', ['BTC_USD', 'EUR_USD']), info(4)];
      return nodes;
    });
    const r = commandEnv(s, { stopWhen: (o) => o.includes('GONE') });
    expect(await controllerNodes(r.env, { watch: true, intervalMs: 1 })).toBe(EXIT.OK);
    const lines = r.out().trimEnd().split('\n');
    expect(lines.slice(0, 4).map((l) => l.split(/ +/).slice(0, 2).join(' '))).toEqual([
      'UUID NAME',
      `${uuid(1)} n1`,
      `${uuid(2)} n2`,
      `${uuid(3)} n3`,
    ]);
    // Each change line: a timestamp, what happened, the cells (AGE last); GONE: UUID and name.
    expect(
      lines.slice(4).map((l) => l.replace(/^\S+ {2}/, '').replace(/ {2}\d+[smhd]$/, '')),
    ).toEqual([
      `CHANGED  ${uuid(3)}  n3  BTC_USD,EUR_USD  -`,
      `ADDED  ${uuid(4)}  n4  BTC_USD  -`,
      `GONE  ${uuid(2)}  n2`,
    ]);
    expect(lines[4]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}CHANGED/);
  });

  test('on a terminal: redrawn only on change (a poll that finds one lists again to draw)', async () => {
    let nodes = [info(1), info(2)];
    let listed = 0;
    const sess = session(() => {
      listed++;
      if (listed === 3) nodes = [info(1)];
      return nodes;
    });
    const r = commandEnv(sess.s, {
      tty: true,
      stopWhen: (o) => o.split('\x1b[2J').length === 3 && o.endsWith('stop\n'),
    });
    expect(await controllerNodes(r.env, { watch: true, intervalMs: 1 })).toBe(EXIT.OK);
    const screens = r
      .out()
      .split('\x1b[H\x1b[2J')
      .filter((x) => x !== '');
    expect(screens).toHaveLength(2);
    expect(screens[0]).toContain(uuid(2));
    expect(screens[1]).not.toContain(uuid(2));
    expect(screens[1]).toMatch(/\nevery 0\.001 s; Ctrl-C to stop\n$/);
    // 1: drawn; 2: no change; 3: a change found; 4: listed again to draw it.
    expect(sess.listings()).toBe(4);
  });

  test('--json: one document per line, per change', async () => {
    let nodes = [info(1), info(2), info(3)];
    let listed = 0;
    const { s } = session(() => {
      listed++;
      if (listed === 2) nodes = nodes.slice(1);
      return nodes;
    });
    const r = commandEnv(s, { opts: { json: true }, stopWhen: (o) => o.split('\n').length === 3 });
    expect(await controllerNodes(r.env, { watch: true, intervalMs: 1 })).toBe(EXIT.OK);
    const docs = r
      .out()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { nodeUuid: string }[]);
    expect(docs.map((d) => d.map((n) => n.nodeUuid))).toEqual([
      [uuid(1), uuid(2), uuid(3)],
      [uuid(2), uuid(3)],
    ]);
  });

  test('a failed listing before any worked is exit 1, as before', async () => {
    const r = commandEnv(session(() => ({ ok: false, problem: 'refused' })).s);
    expect(await controllerNodes(r.env, { watch: true, intervalMs: 1 })).toBe(EXIT.FAILED);
    expect(r.err()).toBe('controller nodes: refused\n');
  });
});
