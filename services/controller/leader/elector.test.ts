import { fakeScheduler, type FakeScheduler } from '../../../tests/support/fake-scheduler';
import { capturingLogger } from '../../../tests/support/log-capture';
import { type ChangeReason, LeaseElector, type AttemptOutcome } from './elector';
import { type Lease, type LeaseApi, LeaseConflictError, type LeaseRecord } from './lease-api';

const TIMING = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

/** The API server's copy of one Lease, with resourceVersion concurrency. */
class FakeStore {
  lease?: { rv: number; record: LeaseRecord };
  private rv = 0;
  writes: { by: string; at: number; record: LeaseRecord }[] = [];

  constructor(private readonly s: FakeScheduler) {}

  snapshot(): Lease | undefined {
    return (
      this.lease && { resourceVersion: String(this.lease.rv), record: { ...this.lease.record } }
    );
  }

  write(by: string, expectRv: string | undefined, record: LeaseRecord): Lease {
    if (expectRv === undefined ? this.lease : String(this.lease?.rv) !== expectRv) {
      throw new LeaseConflictError();
    }
    this.lease = { rv: ++this.rv, record: { ...record } };
    this.writes.push({ by, at: this.s.now(), record: { ...record } });
    return this.snapshot()!;
  }
}

type Link = 'up' | 'hang' | 'fail';

/** One controller's connection to the fake API server. */
class FakeApi implements LeaseApi {
  link: Link = 'up';
  /** Called before a replace is applied: lets a test slip another writer in. */
  beforeReplace?: () => void;
  /** Answers take this long (the write is applied when it arrives, at once). */
  latencyMs = 0;

  constructor(
    private readonly store: FakeStore,
    private readonly s: FakeScheduler,
    private readonly name: string,
  ) {}

  describe(): string {
    return `fake lease (${this.name})`;
  }

  private call<T>(fn: () => T): Promise<T> {
    if (this.link === 'hang') return new Promise<T>(() => undefined);
    if (this.link === 'fail') return Promise.reject(new Error('connect ECONNREFUSED'));
    let result: { v: T } | { e: unknown };
    try {
      result = { v: fn() };
    } catch (e) {
      result = { e };
    }
    const settle = (resolve: (v: T) => void, reject: (e: unknown) => void) =>
      'v' in result ? resolve(result.v) : reject(result.e);
    if (this.latencyMs === 0) return new Promise(settle);
    return new Promise((resolve, reject) =>
      this.s.setTimeout(() => settle(resolve, reject), this.latencyMs),
    );
  }

  /** API calls made so far. */
  calls = 0;

  get(): Promise<Lease | undefined> {
    this.calls++;
    return this.call(() => this.store.snapshot());
  }
  create(record: LeaseRecord): Promise<Lease> {
    this.calls++;
    return this.call(() => this.store.write(this.name, undefined, record));
  }
  replace(rv: string, record: LeaseRecord): Promise<Lease> {
    this.calls++;
    return this.call(() => {
      this.beforeReplace?.();
      return this.store.write(this.name, rv, record);
    });
  }
}

interface Member {
  id: string;
  api: FakeApi;
  elector: LeaseElector;
  changes: { at: number; leading: boolean; leader?: string }[];
  reasons: ChangeReason[];
  renewals: AttemptOutcome[];
  /** A crashed process: its state no longer counts. */
  dead: boolean;
}

function cluster(n: number) {
  const s = fakeScheduler();
  const store = new FakeStore(s);
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    const id = `controller-${i}`;
    const api = new FakeApi(store, s, id);
    const m: Member = {
      id,
      api,
      changes: [],
      reasons: [],
      renewals: [],
      dead: false,
      elector: undefined as unknown as LeaseElector,
    };
    m.elector = new LeaseElector({
      api,
      scheduler: s,
      timing: { identity: id, ...TIMING },
      onChange: (leading, leader) => m.changes.push({ at: s.now(), leading, leader }),
      metrics: {
        renewed: (_sec, outcome) => m.renewals.push(outcome),
        leadershipChanged: (_l, reason) => m.reasons.push(reason),
      },
    });
    members.push(m);
  }
  const leaders = () => members.filter((m) => !m.dead && m.elector.isLeader());
  /** Advances time in 10 ms steps, letting promises settle, checking the invariant each step. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      s.advance(10);
      await new Promise((r) => setImmediate(r));
      expect(leaders().length).toBeLessThanOrEqual(1);
    }
  };
  /** Runs until `cond` holds (bounded by `maxMs`); returns the time it took. */
  const until = async (what: string, cond: () => boolean, maxMs: number) => {
    const start = s.now();
    for (let t = 0; t <= maxMs && !cond(); t += 10) await run(10);
    if (!cond()) throw new Error(`not within ${maxMs} ms: ${what}`);
    return s.now() - start;
  };
  return { s, store, members, leaders, run, until };
}

function startAll(members: Member[]) {
  for (const m of members) m.elector.start();
}

describe('LeaseElector (fake Lease API, fake time)', () => {
  test('exactly one of three leads, the others know who, and it stays put', async () => {
    const c = cluster(3);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    const leader = c.leaders()[0]!;
    await c.run(30_000);
    expect(c.leaders()).toEqual([leader]);
    for (const m of c.members) expect(m.elector.leader()).toBe(leader.id);
    expect(leader.changes.filter((ch) => ch.leading)).toHaveLength(1);
    expect(c.store.lease?.record.holderIdentity).toBe(leader.id);
    // One create, then renewals every retry period: about 60 writes in 30 s, all the leader's.
    expect(new Set(c.store.writes.map((w) => w.by))).toEqual(new Set([leader.id]));
    expect(c.store.writes.length).toBeGreaterThanOrEqual(55);
    expect(leader.renewals.filter((o) => o !== 'ok')).toEqual([]);
  });

  test('a crashed leader is replaced after its lease expires, not before', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    const old = c.leaders()[0]!;
    const lastRenew = c.store.writes.at(-1)!.at;
    old.api.link = 'hang'; // the process is gone: no more writes
    old.dead = true;
    const other = c.members.find((m) => m !== old)!;
    await c.until('a new leader', () => other.elector.isLeader(), 10_000);
    const takeover = c.store.writes.at(-1)!;
    expect(takeover.by).toBe(other.id);
    expect(takeover.at).toBeGreaterThanOrEqual(lastRenew + TIMING.leaseDurationMs);
    // Within duration + retry period (+ one step) of the last renewal.
    expect(takeover.at).toBeLessThanOrEqual(
      lastRenew + TIMING.leaseDurationMs + TIMING.retryPeriodMs + 20,
    );
    expect(takeover.record.leaseTransitions).toBe(1);
    expect(other.elector.leader()).toBe(other.id);
  });

  test.each<Link>(['hang', 'fail'])(
    'fencing: a leader whose API calls %s steps down within the renew deadline, before anyone takes over',
    async (link) => {
      const c = cluster(3);
      startAll(c.members);
      await c.until('a leader', () => c.leaders().length === 1, 1000);
      await c.run(2000);
      const old = c.leaders()[0]!;
      old.api.link = link; // alive, but cut off from the API server
      const lastRenew = c.store.writes.at(-1)!.at;
      await c.until('the old leader to step down', () => !old.elector.isLeader(), 5000);
      const stepDown = old.changes.at(-1)!;
      expect(stepDown).toEqual({ at: expect.any(Number), leading: false, leader: undefined });
      expect(stepDown.at).toBeLessThanOrEqual(lastRenew + TIMING.renewDeadlineMs);
      expect(old.reasons.at(-1)).toBe('deadline');
      await c.until('a new leader', () => c.leaders().length === 1, 10_000);
      const takeover = c.store.writes.at(-1)!;
      expect(takeover.by).not.toBe(old.id);
      // The margin fencing buys: lease duration - renew deadline.
      expect(takeover.at - stepDown.at).toBeGreaterThanOrEqual(
        TIMING.leaseDurationMs - TIMING.renewDeadlineMs,
      );
      expect(old.renewals).toContain(link === 'hang' ? 'timeout' : 'error');
      // Reconnected, the old leader follows the new one and does not take the Lease back.
      old.api.link = 'up';
      await c.run(5000);
      expect(old.elector.isLeader()).toBe(false);
      expect(old.elector.leader()).toBe(takeover.by);
    },
  );

  test('an answer that comes after the renew deadline does not make a leader', async () => {
    const c = cluster(1);
    const [m] = c.members;
    m!.api.latencyMs = TIMING.renewDeadlineMs + 100;
    m!.elector.start();
    await c.run(10_000);
    expect(m!.changes.filter((ch) => ch.leading)).toEqual([]);
  });

  test('a leader cut off only briefly (less than the deadline) keeps leading', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    const leader = c.leaders()[0]!;
    leader.api.link = 'fail';
    await c.run(TIMING.renewDeadlineMs - 600);
    leader.api.link = 'up';
    await c.run(5000);
    expect(c.leaders()).toEqual([leader]);
    expect(leader.changes.filter((ch) => !ch.leading)).toEqual([]);
  });

  test('a graceful stop steps down first, then releases, and a standby takes over within a retry period', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    await c.run(1200);
    const old = c.leaders()[0]!;
    const other = c.members.find((m) => m !== old)!;
    const stopping = old.elector.stop();
    expect(old.elector.isLeader()).toBe(false); // at once, before the release is written
    await c.run(10);
    await stopping;
    const release = c.store.writes.at(-1)!;
    expect(release.by).toBe(old.id);
    expect(release.record.holderIdentity).toBe('');
    expect(old.reasons.at(-1)).toBe('released');
    const took = await c.until('the standby to lead', () => other.elector.isLeader(), 2000);
    expect(took).toBeLessThanOrEqual(TIMING.retryPeriodMs + 10);
    await c.run(5000);
    expect(c.store.writes.filter((w) => w.by === old.id && w.at > release.at)).toEqual([]);
  });

  test('told the leader is stopping (tryNow), a standby takes the released Lease at once, not a retry period later', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    await c.run(1200);
    const old = c.leaders()[0]!;
    const other = c.members.find((m) => m !== old)!;
    // Just after the standby's own round: without the cue it would wait ~a retry period.
    const rounds = other.api.calls;
    await c.until('a standby round', () => other.api.calls > rounds, 1000);
    await old.elector.stop();
    other.elector.tryNow();
    const took = await c.until('the standby to lead', () => other.elector.isLeader(), 2000);
    expect(took).toBeLessThanOrEqual(20);
    expect(other.reasons.at(-1)).toBe('acquired');
  });

  test('tryNow does nothing while leading and at most once per retry period', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    await c.run(1200);
    const leader = c.leaders()[0]!;
    const other = c.members.find((m) => m !== leader)!;
    const calls = { leader: leader.api.calls, other: other.api.calls };
    for (let i = 0; i < 50; i++) {
      leader.elector.tryNow();
      other.elector.tryNow();
      await c.run(10);
    }
    // 500 ms: the leader renews once a retry period (get + replace: 2 calls per round);
    // the standby gets one early round besides its own (a get each).
    expect(leader.api.calls - calls.leader).toBeLessThanOrEqual(2 * 2);
    expect(other.api.calls - calls.other).toBeLessThanOrEqual(1 + 2);
    expect(c.leaders()).toEqual([leader]);
  });

  test('stopped while its acquisition is in flight, it releases what it just acquired', async () => {
    const c = cluster(1);
    const [m] = c.members;
    m!.api.latencyMs = 100; // get answered at 100 ms, create written at 100 and answered at 200
    m!.elector.start();
    await c.run(150);
    expect(c.store.lease?.record.holderIdentity).toBe(m!.id);
    const stopping = m!.elector.stop();
    await c.run(500);
    await stopping;
    expect(c.store.lease?.record.holderIdentity).toBe('');
    expect(m!.changes.filter((ch) => ch.leading)).toEqual([]);
  });

  test('a standby that stops does not touch the Lease', async () => {
    const c = cluster(2);
    startAll(c.members);
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    const standby = c.members.find((m) => !m.elector.isLeader())!;
    const before = c.store.writes.length;
    await standby.elector.stop();
    expect(c.store.writes.slice(before).filter((w) => w.by === standby.id)).toEqual([]);
  });

  test('conflicts: a racing create and a write slipped in between get and replace are survived', async () => {
    const c = cluster(3);
    startAll(c.members); // all three see no Lease and create at once: two get 409
    await c.until('a leader', () => c.leaders().length === 1, 1000);
    const leader = c.leaders()[0]!;
    // Another writer touches the Lease (same holder, new resourceVersion) right before our
    // replace: the renewal fails with 409, the next one succeeds.
    let slips = 1;
    leader.api.beforeReplace = () => {
      if (slips-- > 0) c.store.write('someone', String(c.store.lease!.rv), c.store.lease!.record);
    };
    await c.run(3000);
    expect(leader.renewals).toContain('conflict');
    expect(c.leaders()).toEqual([leader]);
    expect(leader.changes.filter((ch) => !ch.leading)).toEqual([]);
  });

  test('a leader that finds a live Lease held by someone else steps down at once', async () => {
    const c = cluster(1);
    const [m] = c.members;
    m!.elector.start();
    await c.until('leading', () => m!.elector.isLeader(), 1000);
    // An operator (or a split-brain bug elsewhere) hands the Lease to another identity.
    c.store.write('intruder', String(c.store.lease!.rv), {
      ...c.store.lease!.record,
      holderIdentity: 'other',
      renewTimeMs: c.s.now(),
    });
    await c.until('stepped down', () => !m!.elector.isLeader(), TIMING.retryPeriodMs + 20);
    expect(m!.reasons.at(-1)).toBe('lost');
    expect(m!.elector.leader()).toBe('other');
  });

  test("the holder's longer leaseDurationSeconds is honoured over our own duration", async () => {
    const c = cluster(1);
    c.store.write('other', undefined, {
      holderIdentity: 'other',
      leaseDurationSeconds: 10,
      renewTimeMs: c.s.now(),
    });
    const [m] = c.members;
    m!.elector.start();
    await c.run(9000);
    expect(m!.elector.isLeader()).toBe(false);
    expect(m!.elector.leader()).toBe('other');
    await c.until('taken over', () => m!.elector.isLeader(), 2000);
  });
});

describe('an API the controller can never use', () => {
  test('is warned about at every retry period, with the cause, not once and then silently', async () => {
    const s = fakeScheduler();
    const refused = new Error(
      'HTTP protocol is not allowed when skipTLSVerify is not set or false',
    );
    const api: LeaseApi = {
      describe: () => 'http://127.0.0.1:1 lease default/currency-controller',
      get: () => Promise.reject(refused),
      create: () => Promise.reject(refused),
      replace: () => Promise.reject(refused),
    };
    const { logger, lines } = capturingLogger('debug', { service: 'currency-controller' });
    const elector = new LeaseElector({
      api,
      scheduler: s,
      logger,
      timing: { identity: 'a', ...TIMING },
    });
    elector.start();
    for (let t = 0; t < 3000; t += 10) {
      s.advance(10);
      await new Promise((r) => setImmediate(r));
    }
    const warnings = lines.filter((l) => l.msg === 'lease attempt failed' && l.level === 'warn');
    // Attempts at 0, 500, ... 2500 ms: six.
    expect(warnings.length).toBeGreaterThanOrEqual(5);
    for (const w of warnings) expect(String(w.err)).toContain('HTTP protocol is not allowed');
    expect(elector.isLeader()).toBe(false);
    await elector.stop();
  });
});
