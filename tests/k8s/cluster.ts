/**
 * The disposable test cluster (scripts/k8s/cluster.sh) from the tests' side: start it in a
 * fresh state directory, run kubectl and helm against it, stop it and check that nothing
 * is left behind.
 *
 * The k8s files of one jest run share one cluster per stage (`Cluster.shared`): starting a
 * stage-2 cluster and loading the images into it is most of a small file's time. jest gives
 * each test file its own module registry, so the cluster is found through a directory the
 * k8s project's globalSetup names in the environment (tests/k8s/global-setup.ts), and the
 * project's globalTeardown takes it down with every leak check of `down()`.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, helmBin } from '../helm/support';

export { CHART, ROOT, ciValuesFiles, parseManifests } from '../helm/support';
export type { K8sObject } from '../helm/support';

const CACHE = process.env.CURRENCY_NODES_CACHE ?? join(homedir(), '.cache', 'currency-nodes');
const BIN = process.env.K8S_BIN_DIR ?? join(CACHE, 'k8s', 'bin');
const CLUSTER = join(ROOT, 'scripts', 'k8s', 'cluster.sh');
/** kubectl as the tests run it (for a `logs -f` beside the blocking calls). */
export const KUBECTL = join(BIN, 'kubectl');
/** Set by tests/k8s/global-setup.ts: where this jest run records its shared clusters. */
export const SHARED_DIR_ENV = 'CN_K8S_SHARED_DIR';

/** The stage the suite runs: K8S_STAGE (set by scripts/test-all.sh), default 2. */
export function stage(): 1 | 2 {
  const s = process.env.K8S_STAGE ?? '2';
  if (s !== '1' && s !== '2') throw new Error(`K8S_STAGE must be 1 or 2, got '${s}'`);
  return s === '2' ? 2 : 1;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export class Cluster {
  readonly state: string;
  readonly kubeconfig: string;

  private constructor(
    state: string,
    readonly stage: 1 | 2,
  ) {
    this.state = state;
    this.kubeconfig = join(state, 'kubeconfig');
  }

  /** Starts a cluster of the given stage in a new state directory (bounded by the script). */
  static up(wanted: 1 | 2): Cluster {
    const state = join(mkdtempSync(join(tmpdir(), 'cn-k8s-')), 'state');
    const c = new Cluster(state, wanted);
    const r = c.script(['up', '--stage', String(wanted)], 600_000);
    if (r.status !== 0) {
      throw new Error(`cluster.sh up --stage ${wanted} failed (${r.status}):\n${r.stderr}`);
    }
    return c;
  }

  /**
   * The jest run's cluster of this stage, started the first time a file asks and reused by
   * the files after it; each file leaves it as it found it (`removeNamespaces`), and
   * tests/k8s/global-teardown.ts takes it down. The stage-1 and stage-2 clusters may both be
   * up (jest orders the files by their last duration, so the stages interleave; stopping
   * one for the other would start it again): they share no port, directory or bridge.
   */
  static shared(wanted: 1 | 2): Cluster {
    const dir = process.env[SHARED_DIR_ENV];
    if (!dir) {
      throw new Error(`${SHARED_DIR_ENV} is not set: run the k8s tier through jest.config.js`);
    }
    return withLock(dir, () => {
      const file = record(dir, wanted);
      if (existsSync(file)) {
        const c = new Cluster(readFileSync(file, 'utf8').trim(), wanted);
        const dead = c.pids().filter(([, pid]) => !isAlive(pid));
        if (dead.length === 0) return c;
        // A component died under an earlier file: that file failed; start the next afresh.
        process.stderr.write(
          `k8s: shared stage ${wanted} cluster lost ${dead.map(([n]) => n).join(', ')}: restarting it\n`,
        );
        Cluster.downShared(dir, wanted);
      }
      const c = Cluster.up(wanted);
      writeFileSync(file, c.state);
      return c;
    });
  }

  /**
   * Takes the run's shared cluster of stage `wanted` down now, with the leak checks, for a
   * file that leaves it unfit for the next one: the next file to ask starts a new one.
   */
  static retireShared(wanted: 1 | 2): void {
    const dir = process.env[SHARED_DIR_ENV];
    if (!dir || !existsSync(dir)) return;
    withLock(dir, () => Cluster.downShared(dir, wanted));
  }

  /** For tests/k8s/global-teardown.ts: every shared cluster of the run down, its directory gone. */
  static downAllShared(dir = process.env[SHARED_DIR_ENV]): void {
    if (!dir || !existsSync(dir)) return;
    const errors: string[] = [];
    for (const s of [1, 2] as const) {
      try {
        withLock(dir, () => Cluster.downShared(dir, s));
      } catch (err) {
        errors.push(String(err));
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }

  /**
   * For tests/k8s/global-setup.ts, before this run records its own: the shared clusters of
   * an earlier jest run that was killed (its globalTeardown never ran) are taken down, with
   * the leak checks, and said so; they hold the pod bridge and the ports a new cluster
   * needs. A run that is still going is an error: two k8s tiers cannot run on one machine.
   */
  static downAbandoned(root = tmpdir()): void {
    for (const name of readdirSync(root)) {
      if (!name.startsWith(RUN_DIR_PREFIX)) continue;
      const dir = join(root, name);
      const owner = Number(readIfThere(join(dir, OWNER_FILE)));
      if (owner === process.pid) continue;
      const up = ([1, 2] as const).filter((s) => existsSync(record(dir, s)));
      // Alive, and a jest run (a dead run's pid may have been reused).
      if (owner > 0 && isAlive(owner) && readIfThere(`/proc/${owner}/cmdline`).includes('jest')) {
        if (up.length > 0)
          throw new Error(
            `another jest run (pid ${owner}) has its k8s cluster up (${dir}): two k8s tiers ` +
              `cannot run at once on one machine (they share the pod bridge cn-k8s0 and ports)`,
          );
        continue;
      }
      // Without an owner: a run that is just starting (its pid is written next).
      if (!(owner > 0)) continue;
      if (up.length > 0)
        process.stderr.write(
          `k8s: taking down the stage ${up.join(' and ')} cluster left by a jest run that ` +
            `ended without its teardown (pid ${owner}, ${dir})\n`,
        );
      rmSync(join(dir, 'lock'), { recursive: true, force: true });
      Cluster.downAllShared(dir);
    }
  }

  /** Takes the run's shared cluster of stage `s` down (with the leak checks), if there is one. */
  private static downShared(dir: string, s: 1 | 2): void {
    const file = record(dir, s);
    if (!existsSync(file)) return;
    const c = new Cluster(readFileSync(file, 'utf8').trim(), s);
    rmSync(file);
    c.down();
  }

  /**
   * Deletes namespaces and waits until they are gone, so that the next file finds the
   * shared cluster as this one did. Stage 1 has no kube-controller-manager to empty and
   * finalize a deleted namespace: there the objects in it are deleted here, then the
   * namespace through its `finalize` subresource.
   */
  removeNamespaces(namespaces: string[]): void {
    const present = namespaces.filter(
      (ns) => this.kubectl(['get', 'namespace', ns, '-o', 'name']).status === 0,
    );
    if (present.length === 0) return;
    if (this.stage === 2) {
      this.kubectlOk(
        ['delete', 'namespace', ...present, '--wait=true', '--timeout=3m'],
        undefined,
        200_000,
      );
      return;
    }
    const kinds = this.kubectlOk(['api-resources', '--namespaced', '--verbs=delete', '-o', 'name'])
      .split('\n')
      .filter((k) => k !== '' && k !== 'events' && k !== 'events.events.k8s.io')
      .join(',');
    for (const ns of present) {
      this.kubectlOk(['delete', kinds, '--all', '-n', ns, '--wait=false']);
      const obj = this.json(['get', 'namespace', ns]);
      if (!obj.metadata.deletionTimestamp)
        this.kubectlOk(['delete', 'namespace', ns, '--wait=false']);
      const pending = this.json(['get', 'namespace', ns]);
      pending.spec.finalizers = [];
      this.kubectlOk(
        ['replace', '--raw', `/api/v1/namespaces/${ns}/finalize`, '-f', '-'],
        JSON.stringify(pending),
      );
    }
    const left = present.filter(
      (ns) => this.kubectl(['get', 'namespace', ns, '-o', 'name']).status === 0,
    );
    if (left.length > 0) throw new Error(`namespaces still present: ${left.join(', ')}`);
  }

  /** Stops the cluster; throws if a process or the state directory survives. */
  down(): void {
    const pids = this.pids();
    const r = this.script(['down'], 120_000);
    if (r.status !== 0) throw new Error(`cluster.sh down failed (${r.status}):\n${r.stderr}`);
    const alive = pids.filter(([, pid]) => isAlive(pid)).map(([name, pid]) => `${name} (${pid})`);
    if (alive.length > 0) throw new Error(`still running after down: ${alive.join(', ')}`);
    if (existsSync(this.state)) throw new Error(`${this.state} still exists after down`);
    // The mkdtemp directory `up` made around it.
    if (existsSync(dirname(this.state))) rmdirSync(dirname(this.state));
    // Anything else that names the state directory (containerd shims, containers).
    const stray = run('pgrep', ['-af', '--', this.state], undefined, 10_000);
    if (stray.stdout.trim() !== '') throw new Error(`processes left after down:\n${stray.stdout}`);
    if (this.stage === 2) {
      if (run('ip', ['link', 'show', 'cn-k8s0'], undefined, 10_000).status === 0) {
        throw new Error('the pod bridge cn-k8s0 still exists after down');
      }
      for (const cmd of ['iptables', 'ip6tables']) {
        for (const table of ['filter', 'nat', 'mangle']) {
          const rules = run(cmd, ['-t', table, '-S'], undefined, 10_000).stdout;
          const left = rules.split('\n').filter((l) => l.includes('KUBE-'));
          if (left.length > 0) throw new Error(`${cmd} -t ${table} still has:\n${left.join('\n')}`);
        }
      }
    }
  }

  /** The components the script started, from its pid files. */
  pids(): [string, number][] {
    const dir = join(this.state, 'pids');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => [f.slice(0, -4), Number(readFileSync(join(dir, f), 'utf8').trim())]);
  }

  kubectl(args: string[], input?: string, timeoutMs = 120_000): Run {
    return run(join(BIN, 'kubectl'), ['--kubeconfig', this.kubeconfig, ...args], input, timeoutMs);
  }

  /** kubectl that must succeed; returns stdout. */
  kubectlOk(args: string[], input?: string, timeoutMs = 120_000): string {
    const r = this.kubectl(args, input, timeoutMs);
    if (r.status !== 0) {
      throw new Error(`kubectl ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
    }
    return r.stdout;
  }

  /** kubectl ... -o json, parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(args: string[]): any {
    return JSON.parse(this.kubectlOk([...args, '-o', 'json']));
  }

  helm(args: string[], input?: string, timeoutMs = 300_000): Run {
    return run(helmBin(), ['--kubeconfig', this.kubeconfig, ...args], input, timeoutMs);
  }

  helmOk(args: string[], input?: string, timeoutMs = 300_000): string {
    const r = this.helm(args, input, timeoutMs);
    if (r.status !== 0) {
      throw new Error(`helm ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
    }
    return r.stdout;
  }

  log(component: string): string {
    const f = join(this.state, 'logs', `${component}.log`);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  script(args: string[], timeoutMs: number): Run {
    return run('bash', [CLUSTER, ...args], undefined, timeoutMs, {
      K8S_STATE_DIR: this.state,
      K8S_BIN_DIR: BIN,
    });
  }
}

/** tests/k8s/global-setup.ts names each run's directory so, in tmpdir(), with its pid inside. */
export const RUN_DIR_PREFIX = 'cn-k8s-run-';
export const OWNER_FILE = 'owner-pid';

function readIfThere(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function record(dir: string, s: 1 | 2): string {
  return join(dir, `stage-${s}`);
}

/**
 * `fn` under a lock directory: files run in parallel workers (without --runInBand) must not
 * start the same cluster twice. Synchronous, as the files' beforeAll are.
 */
function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, 'lock');
  const deadline = Date.now() + 900_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline) throw new Error(`${lock} held for 15 minutes`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    return fn();
  } finally {
    rmdirSync(lock);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function run(
  cmd: string,
  args: string[],
  input: string | undefined,
  timeoutMs: number,
  env: Record<string, string> = {},
): Run {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
