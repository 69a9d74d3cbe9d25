/**
 * Child processes of a benchmark: the built controller and node programs, and
 * load-generator processes. Every child is tracked and killed by `killAll` (and, as a
 * last resort, synchronously when the runner exits: bench/lib/tracked-process.ts).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FromSim, SimStatus, ToSim } from '../load/protocol';
import { waitUntil } from './clock';
import { ProcessGroup, type TrackedProcess } from './tracked-process';

/** The repository root, from both bench/lib (source) and dist/bench/bench/lib (compiled). */
export const ROOT = __dirname.includes(join('dist', 'bench'))
  ? join(__dirname, '..', '..', '..', '..')
  : join(__dirname, '..', '..');

/** Every child of this run (bench/lib/tracked-process.ts kills leftovers at exit). */
const group = new ProcessGroup();
const byChild = new WeakMap<ChildProcess, TrackedProcess>();

function adopt(name: string, child: ChildProcess, keep: number): TrackedProcess {
  const p = group.adopt(name, child, keep);
  byChild.set(child, p);
  return p;
}

export function killAll(): Promise<void> {
  return group.killAll();
}

/** Sends `signal` (after SIGCONT) and waits, bounded, for the exit (SIGKILL past it). */
export async function killChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  await (byChild.get(child) ?? adopt('child', child, 0)).kill(signal);
}

/** A program of the benchmark; only the tail of its output is kept (runs are long). */
export class Program {
  private readonly proc: TrackedProcess;
  constructor(child: ChildProcess) {
    this.proc = adopt('program', child, 4000);
  }
  get child(): ChildProcess {
    return this.proc.child;
  }
  get exited(): Promise<number | string> {
    return this.proc.exited;
  }
  get startedAtMs(): number {
    return this.proc.startedAtMs;
  }
  get pid(): number {
    return this.proc.pid;
  }
  output(): string {
    return this.proc.output();
  }
  signal(sig: NodeJS.Signals): void {
    this.proc.signal(sig);
  }
  kill(): Promise<void> {
    return this.proc.kill();
  }
  running(): boolean {
    return this.proc.running();
  }
  /** Resident set size in bytes, from /proc. */
  rssBytes(): number {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }
  /** CPU seconds used so far (user + system), from /proc. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
  }
}

export function startProgram(
  role: 'controller' | 'node' | 'cli',
  env: Record<string, string>,
  args: string[] = [],
  nodeArgs: string[] = [],
): Program {
  const child = spawn(
    process.execPath,
    [...nodeArgs, join(ROOT, 'dist', 'services', role, 'main.js'), ...args],
    {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Program(child);
}

export interface ControllerHandle {
  program: Program;
  grpcAddr: string;
  metricsUrl: string;
}

export function startController(
  grpcPort: number,
  metricsPort: number,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): ControllerHandle {
  const program = startProgram(
    'controller',
    {
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      CONTROLLER_SHUTDOWN_GRACE_MS: '1000',
      ...(JSON.parse(process.env.BENCH_CONTROLLER_ENV ?? '{}') as Record<string, string>),
      ...env,
    },
    [],
    nodeArgs,
  );
  return {
    program,
    grpcAddr: `127.0.0.1:${grpcPort}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
  };
}

/** Polls `/readyz` until 200; resolves with the wall time (ms) it first answered ready. */
export async function waitReady(
  baseUrl: string,
  program: Program,
  { timeoutMs = 15_000, intervalMs = 5 } = {},
): Promise<number> {
  return waitUntil(
    `${baseUrl}/readyz`,
    async () => {
      if (!program.running()) throw new Error(`exited: ${program.output()}`);
      const res = await fetch(`${baseUrl}/readyz`).catch(() => undefined);
      await res?.arrayBuffer();
      return res?.status === 200 ? Date.now() : undefined;
    },
    { timeoutMs, intervalMs },
  );
}

/** A load-generator process (bench/load/sim-nodes) driven over IPC. */
export class Sim {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: FromSim) => void>();
  private readonly listeners = new Set<(m: FromSim) => void>();
  readonly child: ChildProcess;
  private readonly proc: TrackedProcess;
  private fatal?: string;

  constructor(controllerAddr: string, env: Record<string, string> = {}) {
    const script = join(__dirname, '..', 'load', 'sim-nodes.js');
    this.child = fork(script, [], {
      env: {
        PATH: process.env.PATH ?? '',
        SIM_CONTROLLER_ADDR: controllerAddr,
        BENCH_FRESH_FRAMES: process.env.BENCH_FRESH_FRAMES ?? '',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: ['--max-old-space-size=2048'],
    });
    const proc = adopt('load generator', this.child, 2000);
    this.proc = proc;
    this.child.on('message', (m: FromSim) => {
      if (m.type === 'reply') {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
      } else if (m.type === 'fatal') {
        this.fatal = m.error;
      }
      for (const l of this.listeners) l(m);
    });
    this.child.once('exit', () => {
      const why = this.fatal ?? (proc.stderr() || 'load generator exited');
      for (const w of this.waiting.values()) w({ type: 'fatal', error: why });
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  on(listener: (m: FromSim) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  request(
    msg: DistributiveOmit<Exclude<ToSim, { type: 'exit' }>, 'id'>,
    timeoutMs = 60_000,
  ): Promise<FromSim> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.proc.running())
        return reject(new Error(`load generator gone: ${this.fatal ?? ''}`));
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`load generator did not answer ${msg.type} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        if (m.type === 'fatal') reject(new Error(m.error));
        else resolve(m);
      });
      this.child.send({ ...msg, id } as ToSim);
    });
  }

  async status(): Promise<SimStatus> {
    const m = await this.request({ type: 'status' });
    if (m.type !== 'reply' || !m.status) throw new Error('no status');
    return m.status;
  }

  kill(): Promise<void> {
    return this.proc.kill();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
