/**
 * Following a handover (handover.ts) on the fake scheduler: retries doubling from 50 ms
 * (capped at 1 s, and at the time left), a give-up at --reconnect-timeout with exit 3, and
 * the cases that do not reconnect at all.
 */
import { EXIT } from '../shared/program';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { fakeCliSession } from '../../tests/support/fake-cli-session';
import { Handover, pollWithHandover } from './handover';

function setup(opts: {
  reconnectMs?: number;
  answersAt?: number;
  lost?: { standby: boolean };
  /** The handover began at the start (the bound is reconnectMs from there). Default true. */
  failsAtStart?: boolean;
}) {
  const scheduler = fakeScheduler();
  const start = scheduler.now();
  const attempts: number[] = [];
  const fake = fakeCliSession(
    {
      address: 'c:1',
      leaderLost: () => opts.lost,
      reconnect: (untilMs: number) => {
        attempts.push(scheduler.now() - start);
        if (opts.failsAtStart !== false) expect(untilMs).toBe(start + (opts.reconnectMs ?? 0));
        return Promise.resolve(opts.answersAt !== undefined && attempts.length >= opts.answersAt);
      },
    },
    { opts: { reconnectMs: opts.reconnectMs }, scheduler },
  );
  /** Moves the fake time on in steps, letting the handover's promises settle in between. */
  const runFor = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      scheduler.advance(step);
      await new Promise((r) => setImmediate(r));
    }
  };
  return {
    env: fake.env,
    attempts,
    err: fake.err,
    abort: fake.abort,
    runFor,
    handover: new Handover(fake.env, 'watch'),
  };
}

test('retries at 50, 150, 350, 750 ms, then once more at the bound, and gives up with exit 3', async () => {
  const t = setup({ reconnectMs: 1000, lost: { standby: false } });
  let code: number | undefined | 'pending' = 'pending';
  void t.handover.failed('stream ended', true).then((c) => (code = c));
  await t.runFor(990);
  expect(code).toBe('pending');
  await t.runFor(20);
  expect(t.attempts).toEqual([50, 150, 350, 750, 1000]);
  expect(code).toBe(EXIT.UNREACHABLE);
  expect(t.err()).toBe(
    'controller handover: reconnecting… (stream ended)\n' +
      'watch: gave up after 1.0 s (--reconnect-timeout 1): no leader answered at c:1; ' +
      'last: could not reach c:1\n',
  );
});

test('a reconnect that works resumes the command; the next success says where it watches', async () => {
  const t = setup({ reconnectMs: 30_000, lost: { standby: false }, answersAt: 3 });
  let code: number | undefined | 'pending' = 'pending';
  void t.handover.failed('stream ended', true).then((c) => (code = c));
  await t.runFor(400);
  expect(t.attempts).toEqual([50, 150, 350]);
  expect(code).toBeUndefined();
  expect(t.handover.active).toBe(true);
  t.handover.ok();
  expect(t.err()).toContain('watching again via c:1\n');
  expect(t.handover.active).toBe(false);
});

test('the retries are capped at 1 s apart', async () => {
  const t = setup({ reconnectMs: 10_000, lost: { standby: false } });
  void t.handover.failed('stream ended', true);
  await t.runFor(5000);
  const gaps = t.attempts.slice(1).map((a, i) => a - t.attempts[i]!);
  expect(gaps).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
});

test('Ctrl-C while waiting to retry ends with exit 0 at once', async () => {
  const t = setup({ reconnectMs: 10_000, lost: { standby: false } });
  const failed = t.handover.failed('stream ended', true);
  await t.runFor(20);
  t.abort();
  expect(await failed).toBe(EXIT.OK);
  expect(t.attempts).toEqual([]);
});

test('no reconnect when the command never worked, or without --reconnect-timeout: the problem, exit 1', async () => {
  const never = setup({ reconnectMs: 1000, lost: { standby: false } });
  expect(await never.handover.failed('stream ended', false)).toBe(EXIT.FAILED);
  expect(never.err()).toBe('watch: stream ended\n');
  const off = setup({ reconnectMs: 0, lost: { standby: false } });
  expect(await off.handover.failed('stream ended', true)).toBe(EXIT.FAILED);
  expect(off.attempts).toEqual([]);
});

test('a standby answered and reconnecting is off: exit 3, as unreachable', async () => {
  const t = setup({ reconnectMs: 0, lost: { standby: true } });
  expect(await t.handover.failed('standby', true)).toBe(EXIT.UNREACHABLE);
});

describe('pollWithHandover', () => {
  test('polls every interval; a failed poll after one that answered reconnects and polls again at once; Ctrl-C ends with 0', async () => {
    const t = setup({
      reconnectMs: 1000,
      answersAt: 1,
      lost: { standby: false },
      failsAtStart: false,
    });
    const polls: number[] = [];
    const start = t.env.scheduler.now();
    let answered = false;
    const results = [true, true, false, true, true];
    let code: number | 'pending' = 'pending';
    void pollWithHandover(
      t.env,
      'watch',
      500,
      () => {
        polls.push(t.env.scheduler.now() - start);
        const ok = results[polls.length - 1] ?? true;
        if (ok) answered = true;
        return Promise.resolve(
          ok ? { ok: true as const } : { ok: false as const, problem: 'gone' },
        );
      },
      () => answered,
    ).then((c) => (code = c));
    await t.runFor(1600);
    // (The fake time moves in 10 ms steps.) The first two answered, 500 ms apart; the third
    // failed: one reconnect 50 ms later, then a poll at once, then 500 ms apart again.
    const gaps = polls.slice(1).map((p, i) => p - polls[i]!);
    expect(gaps).toHaveLength(4);
    expect(gaps.map((g) => Math.round(g / 100) * 100)).toEqual([500, 500, 100, 500]);
    expect(gaps[2]).toBeGreaterThanOrEqual(50);
    expect(t.attempts).toEqual([polls[3]]);
    expect(t.err()).toBe('controller handover: reconnecting… (gone)\nwatching again via c:1\n');
    expect(code).toBe('pending');
    t.abort();
    await t.runFor(10);
    expect(code).toBe(EXIT.OK);
  });

  test('a poll that fails before any answered ends the loop with its exit code', async () => {
    const t = setup({ reconnectMs: 1000, lost: { standby: false } });
    const code = await pollWithHandover(
      t.env,
      'watch',
      500,
      () => Promise.resolve({ ok: false as const, problem: 'refused' }),
      () => false,
    );
    expect(code).toBe(EXIT.FAILED);
    expect(t.err()).toBe('watch: refused\n');
  });
});
