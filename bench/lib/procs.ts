/**
 * Child processes of a benchmark: the built controller and node programs, and
 * load-generator processes. Every child is tracked and killed by `killAll` (and, as a
 * last resort, synchronously when the runner exits).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FromSim, SimStatus, ToSim } from '../load/protocol';
import { sleep, waitUntil } from './clock';

/** The repository root, from both bench/lib (source) and dist/bench/bench/lib (compiled). */
export const ROOT = __dirname.includes(join('dist', 'bench'))
  ? join(__dirname, '..', '..', '..', '..')
  : join(__dirname, '..', '..');

const children = new Set<ChildProcess>();

process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
});

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export async function killAll(): Promise<void> {
  const all = [...children];
  await Promise.all(all.map((c) => killChild(c)));
}

export async function killChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGCONT');
  child.kill(signal);
  await Promise.race([exited, sleep(5000)]);
}

export class Program {
  private tail = '';
  readonly exited: Promise<number | string>;
  readonly startedAtMs = Date.now();
  constructor(readonly child: ChildProcess) {
    const keep = (d: string) => {
      this.tail = (this.tail + d).slice(-4000);
    };
    child.stdout?.setEncoding('utf8').on('data', keep);
    child.stderr?.setEncoding('utf8').on('data', keep);
    this.exited = new Promise((r) =>
      child.once('exit', (code, sig) => r(code ?? sig ?? 'unknown')),
    );
  }
  get pid(): number {
    return this.child.pid!;
  }
  output(): string {
    return this.tail;
  }
  signal(sig: NodeJS.Signals): void {
    if (alive(this.child)) this.child.kill(sig);
  }
  kill(): Promise<void> {
    return killChild(this.child);
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
  track(child);
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
      if (!alive(program.child)) throw new Error(`exited: ${program.output()}`);
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
    let err = '';
    this.child.stderr
      ?.setEncoding('utf8')
      .on('data', (d: string) => (err = (err + d).slice(-2000)));
    track(this.child);
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
      const why = this.fatal ?? (err || 'load generator exited');
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
      if (!alive(this.child)) return reject(new Error(`load generator gone: ${this.fatal ?? ''}`));
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
    return killChild(this.child);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
