/**
 * Cluster.downAbandoned (run by the k8s project's globalSetup): what a killed jest run left
 * is cleared, a run still going is refused by name, and a run just starting is left alone.
 * On run directories of its own in a scratch root: no cluster is started here.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, OWNER_FILE, RUN_DIR_PREFIX } from './cluster';

const root = mkdtempSync(join(tmpdir(), 'cn-abandoned-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function runDir(name: string, owner?: number, stages: number[] = []): string {
  const dir = join(root, `${RUN_DIR_PREFIX}${name}`);
  mkdirSync(dir);
  if (owner !== undefined) writeFileSync(join(dir, OWNER_FILE), String(owner));
  for (const s of stages) writeFileSync(join(dir, `stage-${s}`), join(dir, 'no-such-state'));
  return dir;
}

/** A pid that is not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.once('exit', r));
  return c.pid!;
}

test('a dead run without a cluster is removed; one just starting is left alone', async () => {
  const dead = runDir('dead', await deadPid());
  mkdirSync(join(dead, 'lock'));
  const starting = runDir('starting');
  Cluster.downAbandoned(root);
  expect(existsSync(dead)).toBe(false);
  expect(existsSync(starting)).toBe(true);
});

test('a live jest run with its cluster up is an error naming it', async () => {
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'jest']);
  try {
    const dir = runDir('live', live.pid!, [2]);
    expect(() => Cluster.downAbandoned(root)).toThrow(
      `another jest run (pid ${live.pid}) has its k8s cluster up (${dir})`,
    );
  } finally {
    live.kill('SIGKILL');
  }
});
