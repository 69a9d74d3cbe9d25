/**
 * Long-running commands (`watch`, `controller nodes -w`, `controller streams -w`) across a
 * controller handover, as `kubectl get -w` users expect a watch to survive a rollout: when
 * the stream ends because the controller stopped (`shutdown`) or the connection was lost,
 * or a standby answers (the leader moved), the CLI says so on stderr, reconnects (the next
 * address of --controller, or the same one: in Kubernetes the Service routes to the new
 * leader) and carries on. Bounded by --reconnect-timeout (then exit 3); Ctrl-C ends it
 * with 0 at any time. Other failures end the command as before (exit 1).
 */
import { EXIT } from '../shared/program';
import type { Scheduler } from '../shared/scheduler';
import type { CommandEnv } from './command';
import { shown } from './format';

/** Waits between attempts: doubling from this, up to the cap. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

/** Waits `ms` on `scheduler` or until `signal` aborts, whichever is first. */
export function pause(ms: number, signal: AbortSignal, scheduler: Scheduler): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      scheduler.clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = scheduler.setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export class Handover {
  private reconnecting?: { startedAt: number; until: number; attempts: number };

  constructor(
    private readonly env: CommandEnv,
    private readonly label: string,
  ) {}

  /** The command works (again): after a reconnect, says where it watches now. */
  ok(): void {
    if (!this.reconnecting) return;
    this.reconnecting = undefined;
    this.env.io.err(`watching again via ${shown(this.env.session.address)}\n`);
  }

  /** Whether a reconnect is under way (the next success ends it). */
  get active(): boolean {
    return this.reconnecting !== undefined;
  }

  /**
   * The command failed with `problem`; `worked`: it had worked on this session before (a
   * watch started, a poll answered). Resolves to undefined once a new stream is open (try
   * again), or to the exit code.
   */
  async failed(problem: string, worked: boolean): Promise<number | undefined> {
    const { session, io, opts, scheduler } = this.env;
    if (io.signal.aborted) return EXIT.OK;
    const lost = session.leaderLost();
    if (!this.reconnecting) {
      const reconnectMs = opts.reconnectMs ?? 0;
      if (!lost || !worked || reconnectMs === 0) {
        io.err(`${this.label}: ${shown(problem)}\n`);
        // A standby answered a command that needs the leader: as unreachable (exit 3).
        return lost?.standby ? EXIT.UNREACHABLE : EXIT.FAILED;
      }
      io.err(`controller handover: reconnecting… (${shown(problem)})\n`);
      const now = scheduler.now();
      this.reconnecting = { startedAt: now, until: now + reconnectMs, attempts: 0 };
    }
    // Reconnecting: any failure (nothing listens yet, a standby answers, a timeout) is
    // one more attempt, until the bound.
    const r = this.reconnecting;
    for (;;) {
      const left = r.until - scheduler.now();
      if (left <= 0) {
        io.err(
          `${this.label}: gave up after ${((scheduler.now() - r.startedAt) / 1000).toFixed(1)} s ` +
            `(--reconnect-timeout ${(opts.reconnectMs ?? 0) / 1000}): no leader answered at ` +
            `${shown(opts.controller)}; last: ${shown(problem)}\n`,
        );
        return EXIT.UNREACHABLE;
      }
      await pause(
        Math.min(left, RETRY_MIN_MS * 2 ** Math.min(r.attempts++, 5), RETRY_MAX_MS),
        io.signal,
        scheduler,
      );
      if (io.signal.aborted) return EXIT.OK;
      if (await session.reconnect(r.until, io.signal)) return undefined;
      if (io.signal.aborted) return EXIT.OK;
      problem = `could not reach ${opts.controller}`;
    }
  }
}

/**
 * The loop of every polling view (`controller nodes -w`, `controller streams -w`): `poll`
 * (which prints what changed) every `intervalMs` until Ctrl-C (exit 0). A failed poll is a
 * handover to follow (reconnect, then poll again at once) or the end (its exit code);
 * `shown()`: whether a poll has answered on this session before (see `Handover.failed`).
 */
export async function pollWithHandover(
  env: CommandEnv,
  label: string,
  intervalMs: number,
  poll: () => Promise<{ ok: true } | { ok: false; problem: string }>,
  shown: () => boolean,
): Promise<number> {
  const { signal } = env.io;
  const handover = new Handover(env, label);
  while (!signal.aborted) {
    const r = await poll();
    if (signal.aborted) break;
    if (!r.ok) {
      const code = await handover.failed(r.problem, shown());
      if (code !== undefined) return code;
      continue; // reconnected: poll again at once
    }
    handover.ok();
    await pause(intervalMs, signal, env.scheduler);
  }
  return EXIT.OK;
}
