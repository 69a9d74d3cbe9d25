/**
 * printView and pollView (view.ts): a listing printed once, or polled with -w and shown
 * on change (redrawn on a terminal, as ADDED/CHANGED/GONE lines on a pipe, one JSON
 * document per change with --json). Polling waits with jest's fake timers, not sleeps.
 */
import { EXIT } from '../shared/program';
import type { GlobalOptions } from './command';
import { type Row, type ViewResult, pollView, printView } from './view';
import { fakeCliSession } from '../../tests/support/fake-cli-session';

/** A command env on a session whose stream did not end in a handover: a failure ends the poll. */
function env(opts: Partial<GlobalOptions> = {}, tty = false) {
  const t = fakeCliSession({ leaderLost: () => undefined, address: 'c:1' }, { opts, tty });
  return { e: t.env, out: t.writes.out, err: t.writes.err, stop: t.abort };
}

const row = (key: string, value: string, tone?: Row['tone']): Row => ({
  key,
  cells: [key, value],
  stable: value,
  tone,
});
const ok = (rows: Row[], extra: { note?: string; exit?: number } = {}): ViewResult => ({
  ok: true,
  view: {
    json: rows.map((r) => ({ key: r.key, value: r.cells[1] })),
    headers: ['KEY', 'VALUE'],
    rows,
    ...extra,
  },
});

describe('printView', () => {
  test('a table on stdout, the note on stderr, exit from the view (0 by default)', () => {
    const { e, out, err } = env();
    expect(printView(e, 'x', ok([row('a', '1'), row('bb', '22')], { note: '2 rows\n' }))).toBe(
      EXIT.OK,
    );
    expect(out.join('')).toBe('KEY  VALUE\na    1\nbb   22\n');
    expect(err.join('')).toBe('2 rows\n');
  });

  test('--json prints the JSON form and no note', () => {
    const { e, out, err } = env({ json: true });
    printView(e, 'x', ok([row('a', '1')], { note: 'n\n', exit: EXIT.FAILED }));
    expect(JSON.parse(out.join(''))).toEqual([{ key: 'a', value: '1' }]);
    expect(err).toEqual([]);
  });

  test("the view's exit code is returned (e.g. a failed --check)", () => {
    const { e } = env();
    expect(printView(e, 'x', ok([], { exit: EXIT.FAILED }))).toBe(EXIT.FAILED);
  });

  test('a failure is one line on stderr naming the command, control characters escaped, exit 1', () => {
    const { e, out, err } = env();
    expect(printView(e, 'controller nodes', { ok: false, problem: 'bad\x1b]0;x\x07' })).toBe(
      EXIT.FAILED,
    );
    expect(out).toEqual([]);
    expect(err.join('')).toBe('controller nodes: bad\\x1b]0;x\\x07\n');
  });

  test('with colour, a row with a tone is coloured and the header is not', () => {
    const { e, out } = env({ colour: true });
    printView(e, 'x', ok([row('a', '1', 'bad'), row('b', '2')]));
    const lines = out.join('').split('\n');
    expect(lines[0]).toBe('KEY  VALUE');
    expect(lines[1]).toBe('\x1b[31ma    1\x1b[39m');
    expect(lines[2]).toBe('b    2');
  });
});

describe('pollView', () => {
  beforeEach(() => jest.useFakeTimers({ now: new Date('2026-01-02T03:04:05.000Z') }));
  afterEach(() => jest.useRealTimers());

  /** Polls the views in order, one per interval, then stops (as Ctrl-C would). */
  async function poll(views: ViewResult[], opts: Partial<GlobalOptions> = {}, tty = false) {
    const t = env(opts, tty);
    let i = 0;
    const fetches: number[] = [];
    const done = pollView(t.e, 'controller nodes', 2000, () => {
      fetches.push(Date.now());
      const v = views[i++]!;
      if (i === views.length) queueMicrotask(() => t.stop());
      return Promise.resolve(v);
    });
    await jest.advanceTimersByTimeAsync(2000 * views.length);
    return { code: await done, ...t, fetches };
  }

  test('fetches every interval until interrupted, then exits 0', async () => {
    const r = await poll([ok([row('a', '1')]), ok([row('a', '1')]), ok([row('a', '1')])]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.fetches.map((t) => t - r.fetches[0]!)).toEqual([0, 2000, 4000]);
  });

  test('on a pipe: the first table, then one line per row that appeared, changed or went', async () => {
    const r = await poll([
      ok([row('a', '1'), row('b', '2')]),
      ok([row('a', '1'), row('b', '2')]),
      ok([row('a', '9'), row('c', '3')]),
    ]);
    expect(r.out).toEqual([
      'KEY  VALUE\na    1\nb    2\n',
      '2026-01-02T03:04:09.000Z  CHANGED  a  9\n',
      '2026-01-02T03:04:09.000Z  ADDED  c  3\n',
      '2026-01-02T03:04:09.000Z  GONE  b  2\n',
    ]);
  });

  test('--json: one document per line, only when something changed', async () => {
    const r = await poll([ok([row('a', '1')]), ok([row('a', '1')]), ok([row('a', '2')])], {
      json: true,
    });
    expect(r.out.map((l) => JSON.parse(l) as unknown)).toEqual([
      [{ key: 'a', value: '1' }],
      [{ key: 'a', value: '2' }],
    ]);
    expect(r.out.every((l) => l.endsWith('\n') && l.split('\n').length === 2)).toBe(true);
  });

  test('on a terminal: the screen is cleared and the table redrawn on change, with the interval shown', async () => {
    const r = await poll([ok([row('a', '1')]), ok([row('a', '1')]), ok([row('a', '2')])], {}, true);
    expect(r.out).toEqual([
      '\x1b[H\x1b[2JKEY  VALUE\na    1\n\nevery 2 s; Ctrl-C to stop\n',
      '\x1b[H\x1b[2JKEY  VALUE\na    2\n\nevery 2 s; Ctrl-C to stop\n',
    ]);
  });

  test('a fetch that fails ends the poll with exit 1, saying why', async () => {
    const r = await poll([ok([row('a', '1')]), { ok: false, problem: 'timed out after 5 s' }]);
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err.join('')).toBe('controller nodes: timed out after 5 s\n');
  });

  test('an interrupt during a fetch prints nothing more', async () => {
    const t = env();
    let calls = 0;
    const code = await pollView(t.e, 'x', 2000, () => {
      calls++;
      t.stop();
      return Promise.resolve(ok([row('a', '1')]));
    });
    expect(code).toBe(EXIT.OK);
    expect(calls).toBe(1);
    expect(t.out).toEqual([]);
  });
});
