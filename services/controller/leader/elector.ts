/**
 * Leader election over a Lease, the way client-go's leaderelection package does it
 * (acquire or renew every retry period, optimistic concurrency on resourceVersion, expiry
 * judged by the local clock from when a change of the Lease was last seen, release by
 * emptying holderIdentity), plus fencing: a leader that has not renewed successfully within
 * the renew deadline stops leading at once, before the others may take the Lease.
 * docs/leader-election.md explains the timing argument.
 */
import type { Logger } from '../../shared/logger';
import type { Scheduler, TimerHandle } from '../../shared/scheduler';
import type { LeaderElectionConfig } from './config';
import { type Lease, type LeaseApi, LeaseConflictError, type LeaseRecord } from './lease-api';

export type AttemptOutcome = 'ok' | 'held' | 'conflict' | 'error' | 'timeout';
/** acquired / lost (someone else holds it) / deadline (fenced) / released (graceful stop). */
export type ChangeReason = 'acquired' | 'lost' | 'deadline' | 'released';

export interface ElectorMetrics {
  /** One attempt by the leader to renew: seconds taken and how it ended. */
  renewed?(seconds: number, outcome: AttemptOutcome): void;
  /** Every change of this controller's leadership. */
  leadershipChanged?(leading: boolean, reason: ChangeReason): void;
}

export type ElectorTiming = Pick<
  LeaderElectionConfig,
  'identity' | 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'
>;

export interface ElectorOptions {
  api: LeaseApi;
  timing: ElectorTiming;
  scheduler: Scheduler;
  logger?: Logger;
  /** Called on every change of (leading, current leader's identity). */
  onChange?: (leading: boolean, leaderIdentity?: string) => void;
  metrics?: ElectorMetrics;
}

export interface LeaderElector {
  start(): void;
  /** Stops leading at once, then releases the Lease if this controller holds it. */
  stop(): Promise<void>;
  isLeader(): boolean;
  /** The identity of the controller known to lead now (this one included), if any. */
  leader(): string | undefined;
  /**
   * The leader just said it is stepping down (its streams ended with `shutdown`): try to
   * take the Lease now instead of at the next retry period. At most once per retry period.
   */
  tryNow(): void;
  /**
   * Why the last round with the Lease API failed, while rounds fail in a row (undefined
   * once one succeeds): `/readyz` of a standby that cannot reach the API says so.
   */
  failure(): string | undefined;
}

class AttemptTimeout extends Error {}

export class LeaseElector implements LeaderElector {
  private running = false;
  private leading = false;
  private observed?: Lease;
  /** Local time at which the observed Lease was first seen in its current version. */
  private observedAt = 0;
  private tickTimer?: TimerHandle;
  private fenceTimer?: TimerHandle;
  private attempt?: Promise<void>;
  /** Bumped per attempt: a timed-out attempt that answers late changes nothing. */
  private token = 0;
  private failures = 0;
  private lastFailure?: string;
  /** An early attempt was asked for while one was in flight: the next starts at once. */
  private again = false;
  private lastEarlyAt = Number.NEGATIVE_INFINITY;
  private published: [boolean, string | undefined] = [false, undefined];
  private readonly t: ElectorTiming;
  private readonly s: Scheduler;

  constructor(private readonly o: ElectorOptions) {
    this.t = o.timing;
    this.s = o.scheduler;
  }

  /** Each API round (get, then create or replace) is bounded by this. */
  get attemptTimeoutMs(): number {
    return Math.max(this.t.retryPeriodMs, Math.floor(this.t.renewDeadlineMs / 2));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.o.logger?.info(
      { identity: this.t.identity, lease: this.o.api.describe() },
      'leader election started',
    );
    this.tickTimer = this.s.setTimeout(() => this.tick(), 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  failure(): string | undefined {
    return this.lastFailure;
  }

  leader(): string | undefined {
    if (this.leading) return this.t.identity;
    const holder = this.observed?.record.holderIdentity ?? '';
    if (holder === '' || holder === this.t.identity || this.expired(this.s.now())) return undefined;
    return holder;
  }

  tryNow(): void {
    const now = this.s.now();
    if (!this.running || this.leading || now - this.lastEarlyAt < this.t.retryPeriodMs) return;
    this.lastEarlyAt = now;
    if (this.attempt) {
      this.again = true;
      return;
    }
    if (this.tickTimer) this.s.clearTimeout(this.tickTimer);
    this.tickTimer = this.s.setTimeout(() => this.tick(), 0);
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.token++;
    this.clearTimers();
    const wasLeading = this.leading;
    // Stop leading before the Lease is given up, so there is no instant with two leaders.
    if (this.leading) this.setLeading(false, 'released');
    if (this.attempt) await this.attempt;
    // A round in flight may just have acquired it: observed() covers that case too.
    if (!wasLeading && this.observed?.record.holderIdentity !== this.t.identity) return;
    try {
      await this.withTimeout(this.release(), this.t.renewDeadlineMs);
      this.o.logger?.info({ identity: this.t.identity }, 'lease released');
    } catch (err) {
      this.o.logger?.warn({ err: String(err) }, 'could not release the lease; it will expire');
    }
  }

  private tick(): void {
    this.tickTimer = undefined;
    if (!this.running) return;
    const startedAt = this.s.now();
    const token = ++this.token;
    const wasLeading = this.leading;
    this.attempt = this.withTimeout(this.tryAcquireOrRenew(token), this.attemptTimeoutMs).then(
      (outcome) => this.attemptDone(token, startedAt, wasLeading, outcome),
      (err: unknown) =>
        this.attemptDone(
          token,
          startedAt,
          wasLeading,
          err instanceof AttemptTimeout ? 'timeout' : 'error',
          err,
        ),
    );
  }

  private attemptDone(
    token: number,
    startedAt: number,
    wasLeading: boolean,
    outcome: AttemptOutcome,
    err?: unknown,
  ): void {
    this.attempt = undefined;
    const now = this.s.now();
    if (wasLeading) this.o.metrics?.renewed?.((now - startedAt) / 1000, outcome);
    if (outcome === 'error' || outcome === 'timeout') {
      // Every failure warns, with a count: a standby that can never reach the API (a
      // kubeconfig the client refuses, RBAC) must not look merely quiet after one line.
      this.failures++;
      this.lastFailure = err instanceof Error ? err.message : String(err ?? outcome);
      this.o.logger?.warn(
        { outcome, failures: this.failures, err: err && String(err) },
        'lease attempt failed',
      );
    } else {
      this.failures = 0;
      this.lastFailure = undefined;
    }
    if (!this.running || token !== this.token) return;
    this.publish();
    const delay =
      this.again && !this.leading ? 0 : Math.max(0, startedAt + this.t.retryPeriodMs - now);
    this.again = false;
    this.tickTimer = this.s.setTimeout(() => this.tick(), delay);
  }

  private async tryAcquireOrRenew(token: number): Promise<AttemptOutcome> {
    const id = this.t.identity;
    const current = await this.o.api.get();
    if (token !== this.token) return 'timeout';
    if (!current) {
      const writeAt = this.s.now();
      try {
        const created = await this.o.api.create(this.ourRecord(undefined, writeAt));
        return this.held(token, created, writeAt);
      } catch (err) {
        if (err instanceof LeaseConflictError) return 'conflict';
        throw err;
      }
    }
    this.observe(current);
    const holder = current.record.holderIdentity ?? '';
    if (holder !== '' && holder !== id && !this.expired(this.s.now())) {
      // Someone else holds a live Lease: only possible for a leader that was cut off.
      if (this.leading) this.setLeading(false, 'lost');
      return 'held';
    }
    const writeAt = this.s.now();
    try {
      const updated = await this.o.api.replace(
        current.resourceVersion,
        this.ourRecord(current.record, writeAt),
      );
      return this.held(token, updated, writeAt);
    } catch (err) {
      if (err instanceof LeaseConflictError) return 'conflict';
      throw err;
    }
  }

  /** A write naming this controller succeeded; it was sent at `writeAt`. */
  private held(token: number, lease: Lease, writeAt: number): AttemptOutcome {
    // Observed even for a round given up on: a release must know the Lease names us.
    this.observe(lease);
    if (token !== this.token) return 'timeout';
    const fenceAt = writeAt + this.t.renewDeadlineMs;
    const now = this.s.now();
    // The server applied the write no earlier than writeAt, so the others count the Lease's
    // duration from then at the earliest: leading must end by writeAt + renewDeadline.
    if (now >= fenceAt) return 'timeout';
    if (this.fenceTimer) this.s.clearTimeout(this.fenceTimer);
    this.fenceTimer = this.s.setTimeout(() => this.fence(), fenceAt - now);
    if (!this.leading && this.running) this.setLeading(true, 'acquired');
    return 'ok';
  }

  private fence(): void {
    this.fenceTimer = undefined;
    if (!this.leading) return;
    this.o.logger?.warn(
      { identity: this.t.identity, renewDeadlineMs: this.t.renewDeadlineMs },
      'lease not renewed within the renew deadline: stepping down',
    );
    this.setLeading(false, 'deadline');
  }

  private setLeading(leading: boolean, reason: ChangeReason): void {
    this.leading = leading;
    if (!leading && this.fenceTimer) {
      this.s.clearTimeout(this.fenceTimer);
      this.fenceTimer = undefined;
    }
    this.o.logger?.info({ identity: this.t.identity, leading, reason }, 'leadership changed');
    this.o.metrics?.leadershipChanged?.(leading, reason);
    this.publish();
  }

  private publish(): void {
    const next: [boolean, string | undefined] = [this.leading, this.leader()];
    if (next[0] === this.published[0] && next[1] === this.published[1]) return;
    this.published = next;
    this.o.onChange?.(next[0], next[1]);
  }

  private observe(lease: Lease): void {
    if (this.observed?.resourceVersion !== lease.resourceVersion) {
      this.observed = lease;
      this.observedAt = this.s.now();
    }
  }

  /** Whether the observed Lease has gone unrenewed for its duration, by the local clock. */
  private expired(at: number): boolean {
    if (!this.observed) return true;
    const seconds = this.observed.record.leaseDurationSeconds ?? 0;
    // The longer of ours and the holder's: never take a Lease its holder still counts on.
    const duration = Math.max(this.t.leaseDurationMs, seconds * 1000);
    return this.observedAt + duration <= at;
  }

  private ourRecord(previous: LeaseRecord | undefined, writeAt: number): LeaseRecord {
    const ours = previous?.holderIdentity === this.t.identity;
    const transitions = previous?.leaseTransitions ?? 0;
    return {
      holderIdentity: this.t.identity,
      leaseDurationSeconds: Math.ceil(this.t.leaseDurationMs / 1000),
      acquireTimeMs: ours ? (previous?.acquireTimeMs ?? writeAt) : writeAt,
      renewTimeMs: writeAt,
      leaseTransitions: previous === undefined ? 0 : ours ? transitions : transitions + 1,
    };
  }

  /** Empties holderIdentity, as client-go does, so a standby takes over on its next attempt. */
  private async release(): Promise<void> {
    let current = this.observed;
    for (let i = 0; i < 2; i++) {
      current = i === 0 && current ? current : await this.o.api.get();
      if (!current || current.record.holderIdentity !== this.t.identity) return;
      const now = this.s.now();
      try {
        await this.o.api.replace(current.resourceVersion, {
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTimeMs: now,
          renewTimeMs: now,
          leaseTransitions: current.record.leaseTransitions ?? 0,
        });
        return;
      } catch (err) {
        if (!(err instanceof LeaseConflictError)) throw err;
      }
    }
  }

  private clearTimers(): void {
    if (this.tickTimer) this.s.clearTimeout(this.tickTimer);
    if (this.fenceTimer) this.s.clearTimeout(this.fenceTimer);
    this.tickTimer = undefined;
    this.fenceTimer = undefined;
  }

  private withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.s.setTimeout(
        () => reject(new AttemptTimeout(`no answer in ${ms} ms`)),
        ms,
      );
      p.then(
        (v) => {
          this.s.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.s.clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}
