/**
 * The real programs as child processes (the built dist/ files, run with the same Node as
 * the tests). Every process started here is tracked and killed by `killAll`. The process
 * handling itself (output capture, bounded kill, the exit hook) is bench/lib's, shared
 * with the benchmark and re-exported here for the other test helpers.
 */
import { join } from 'node:path';
import { ProcessGroup, type TrackedProcess } from '../../bench/lib/tracked-process';

export { ProcessGroup, type SpawnOptions, TrackedProcess } from '../../bench/lib/tracked-process';

export type Role = 'controller' | 'node' | 'cli';

const ROOT = join(__dirname, '..', '..');

export function programPath(role: Role): string {
  return join(ROOT, 'dist', 'services', role, 'main.js');
}

export type Program = TrackedProcess;

const programs = new ProcessGroup();

/** `role` from dist/, with `env` (and PATH) only and LOG_LEVEL=info unless set. */
export function startProgram(
  role: Role,
  env: Record<string, string>,
  args: string[] = [],
): Program {
  return programs.spawn(role, process.execPath, [programPath(role), ...args], {
    env: { LOG_LEVEL: 'info', ...env },
  });
}

/** Runs a program to completion (bounded) and returns its exit code and output. */
export function runProgram(
  role: Role,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return programs.run(process.execPath, [programPath(role), ...args], {
    env: { LOG_LEVEL: 'info', ...env },
    timeoutMs,
  });
}

/** Kills every program still running (SIGCONT first, in case one is frozen). */
export function killAll(): Promise<void> {
  return programs.killAll('SIGKILL');
}
