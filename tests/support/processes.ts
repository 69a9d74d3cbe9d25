/**
 * The real programs as child processes (the built dist/ files, run with the same Node as
 * the tests). Every process started here is tracked and killed by `killAll`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export type Role = 'controller' | 'node' | 'cli';

const ROOT = join(__dirname, '..', '..');

export function programPath(role: Role): string {
  return join(ROOT, 'dist', 'services', role, 'main.js');
}

export interface Program {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** JSON log lines parsed from stdout. */
  logLines(): Record<string, unknown>[];
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
}

const running = new Set<Program>();

export function startProgram(
  role: Role,
  env: Record<string, string>,
  args: string[] = [],
): Program {
  const child = spawn(process.execPath, [programPath(role), ...args], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  );
  const program: Program = {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
  running.add(program);
  void exited.then(() => running.delete(program));
  return program;
}

/** Runs a program to completion (bounded) and returns its exit code and output. */
export async function runProgram(
  role: Role,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = startProgram(role, env, args);
  const timer = setTimeout(() => p.signal('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** Kills every program still running (SIGCONT first, in case one is frozen). */
export async function killAll(): Promise<void> {
  const all = [...running];
  for (const p of all) {
    p.signal('SIGCONT');
    p.signal('SIGKILL');
  }
  await Promise.all(all.map((p) => p.exited));
}
