/**
 * Child processes with their output kept, tracked so that none outlives its owner. The one
 * implementation for the benchmark (bench/lib/procs.ts) and the tests
 * (tests/support/processes.ts re-exports it): it lives here because bench/ is built on its
 * own (tsconfig.bench.json) and must not depend on tests/.
 *
 * Leak safety: an owner stops its group (`ProcessGroup.killAll`) when done; as a last resort
 * every child still alive is SIGKILLed, synchronously, when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Every child alive, in any group, for the exit hook. */
const alive = new Set<ChildProcess>();

function killLeftovers(): void {
  for (const c of alive) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** The exit hook is there only while a child is: a test runner loads this module per file. */
function remember(child: ChildProcess): void {
  if (alive.size === 0) process.on('exit', killLeftovers);
  alive.add(child);
}

function forget(child: ChildProcess): void {
  if (alive.delete(child) && alive.size === 0) process.off('exit', killLeftovers);
}

export interface SpawnOptions {
  /** The child's environment, on top of PATH alone (nothing else is inherited). */
  env?: Record<string, string>;
  cwd?: string;
  /** Keep only the newest this many characters of each stream (long runs); default: all. */
  keep?: number;
}

/** One child process: its output so far, its exit, and a bounded kill. */
export class TrackedProcess {
  private out = '';
  private err = '';
  private both = '';
  private readonly listeners = new Set<() => void>();
  private ended = false;
  /** Resolves with the exit code, the signal name, or `spawn error: …`; never rejects. */
  readonly exited: Promise<number | string>;
  /** Resolves once the process exited and its stdout and stderr are read to the end. */
  readonly closed: Promise<void>;
  readonly startedAtMs = Date.now();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly keep = Infinity,
  ) {
    const trim = (s: string) => (s.length > this.keep * 2 ? s.slice(-this.keep) : s);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.out = trim(this.out + d);
      this.both = trim(this.both + d);
      for (const l of this.listeners) l();
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.err = trim(this.err + d);
      this.both = trim(this.both + d);
      for (const l of this.listeners) l();
    });
    remember(child);
    this.exited = new Promise((resolve) => {
      child.once('error', (e) => resolve(`spawn error: ${e.message}`));
      child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown'));
    });
    this.closed = new Promise((resolve) => {
      child.once('error', () => resolve());
      child.once('close', () => resolve());
    });
    void this.exited.then(() => {
      this.ended = true;
      forget(child);
      for (const l of this.listeners) l();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  stdout(): string {
    return this.out.slice(-this.keep);
  }

  stderr(): string {
    return this.err.slice(-this.keep);
  }

  /** stdout and stderr interleaved as they arrived. */
  output(): string {
    return this.both.slice(-this.keep);
  }

  /** The JSON lines of stdout, parsed: pino log lines (or the Go peer's events). */
  logLines<T = Record<string, unknown>>(): T[] {
    return this.stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as T);
  }

  running(): boolean {
    return !this.ended && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal if the process still runs (a no-op after it exited). */
  signal(sig: NodeJS.Signals): void {
    if (this.running()) this.child.kill(sig);
  }

  /**
   * Sends `signal` (after SIGCONT, in case the process is frozen) and waits at most
   * `timeoutMs` for the exit; past it, SIGKILL and a short bounded wait.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5_000): Promise<void> {
    if (!this.running()) return;
    this.child.kill('SIGCONT');
    this.child.kill(signal);
    if (await within(this.exited, timeoutMs)) return;
    this.signal('SIGKILL');
    await within(this.exited, 2_000);
  }

  /**
   * Resolves once the output (stdout and stderr) matches; rejects with the output if the
   * process exits first or `timeoutMs` passes. Driven by the output, not by polling.
   */
  waitForOutput(match: RegExp | string, timeoutMs = 10_000): Promise<void> {
    const matches = () =>
      typeof match === 'string' ? this.both.includes(match) : match.test(this.both);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (matches()) done();
        else if (!this.running())
          done(new Error(`${this.name} exited before printing ${match}: ${this.output()}`));
      };
      const timer = setTimeout(
        () => done(new Error(`${this.name} did not print ${match} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.listeners.add(check);
      check();
    });
  }
}

/** True if `p` settles within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const settled = await Promise.race([p.then(() => true), timedOut]);
  clearTimeout(timer);
  return settled;
}

/** The processes of one owner (a test file, a benchmark run), stopped together. */
export class ProcessGroup {
  private readonly members = new Set<TrackedProcess>();

  /** Starts `command args`, stdin closed, stdout and stderr kept. */
  spawn(
    name: string,
    command: string,
    args: string[],
    { env = {}, cwd, keep }: SpawnOptions = {},
  ): TrackedProcess {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return this.adopt(name, child, keep);
  }

  /** Tracks a child started otherwise (e.g. `fork` with an IPC channel). */
  adopt(name: string, child: ChildProcess, keep?: number): TrackedProcess {
    const p = new TrackedProcess(name, child, keep);
    this.members.add(p);
    void p.exited.then(() => this.members.delete(p));
    return p;
  }

  get size(): number {
    return this.members.size;
  }

  /** Stops every member still running (see `TrackedProcess.kill`). */
  async killAll(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5_000): Promise<void> {
    await Promise.all([...this.members].map((p) => p.kill(signal, timeoutMs)));
  }

  /** Runs a command to its end, killed past `timeoutMs`; never throws on a non-zero exit. */
  async run(
    command: string,
    args: string[],
    opts: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<{ code: number | string; stdout: string; stderr: string }> {
    const p = this.spawn(command, command, args, opts);
    const timer = setTimeout(() => p.signal('SIGKILL'), opts.timeoutMs ?? 20_000);
    const code = await p.exited;
    clearTimeout(timer);
    // The last output may still be in the pipes (bounded: a grandchild may hold them open).
    await within(p.closed, 2_000);
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }
}
