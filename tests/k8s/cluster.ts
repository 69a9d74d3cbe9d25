/**
 * The disposable test cluster (scripts/k8s/cluster.sh) from the tests' side: start it in a
 * fresh state directory, run kubectl and helm against it, stop it and check that nothing
 * is left behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, helmBin } from '../helm/support';

export { CHART, ROOT, ciValuesFiles, parseManifests } from '../helm/support';
export type { K8sObject } from '../helm/support';

const CACHE = process.env.CURRENCY_NODES_CACHE ?? join(homedir(), '.cache', 'currency-nodes');
const BIN = process.env.K8S_BIN_DIR ?? join(CACHE, 'k8s', 'bin');
const CLUSTER = join(ROOT, 'scripts', 'k8s', 'cluster.sh');

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

  /** Stops the cluster; throws if a process or the state directory survives. */
  down(): void {
    const pids = this.pids();
    const r = this.script(['down'], 120_000);
    if (r.status !== 0) throw new Error(`cluster.sh down failed (${r.status}):\n${r.stderr}`);
    const alive = pids.filter(([, pid]) => isAlive(pid)).map(([name, pid]) => `${name} (${pid})`);
    if (alive.length > 0) throw new Error(`still running after down: ${alive.join(', ')}`);
    if (existsSync(this.state)) throw new Error(`${this.state} still exists after down`);
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
