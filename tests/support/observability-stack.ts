/**
 * A real controller, real nodes and a real Prometheus as child processes on loopback, for
 * tests/integration/observability-assets.test.ts. Every process started here is tracked
 * and killed by `stopAll`; every wait is bounded in count and in time.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './observability-promql';
import { freePort } from './ports';
import { WaitAborted, sleep, waitFor as baseWaitFor } from './wait';

export { WaitAborted, freePort, sleep };

export const DIST = join(ROOT, 'dist', 'services');

export function programPath(role: 'controller' | 'node' | 'cli'): string {
  return join(DIST, role, 'main.js');
}

/** The absolute path of a command on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}

export function requireTool(cmd: string): string {
  const p = which(cmd);
  if (!p) {
    throw new Error(
      `${cmd} not found on PATH: install Debian's prometheus package with ` +
        '`bash scripts/setup/prometheus.sh` (it provides prometheus and promtool)',
    );
  }
  return p;
}

export function requireBuilt(): void {
  for (const role of ['controller', 'node', 'cli'] as const) {
    if (!existsSync(programPath(role))) {
      throw new Error(`${programPath(role)} does not exist: run \`npm run build\` first`);
    }
  }
}

/** A port free on 127.0.0.1 right now (the OS picks it). */

/** Distinct free ports (each is released before the next is picked, so ask for all at once). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < n * 20 && ports.size < n; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}

/** The shared bounded wait, with this stack's slower defaults (Prometheus scrapes every second). */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  return baseWaitFor(what, probe, { timeoutMs: 20_000, intervalMs: 250, ...opts });
}

/** GET over loopback with a timeout; resolves with status and body. */
export async function httpGet(
  url: string,
  timeoutMs = 3_000,
): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
  readonly exited: Promise<number | string>;
}

const running = new Set<Proc>();
const OUTPUT_KEEP = 20_000;

export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
): Proc {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: string) => {
    out += d;
    if (out.length > OUTPUT_KEEP * 2) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout!.setEncoding('utf8').on('data', keep);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (err) => resolve(`spawn error: ${err.message}`));
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown'));
  });
  const proc: Proc = { name, child, output: () => out.slice(-OUTPUT_KEEP), exited };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

export function isRunning(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Kills a process and waits (bounded) for it to exit. */
export async function killProcess(
  p: Proc,
  signal: NodeJS.Signals = 'SIGKILL',
  timeoutMs = 5_000,
): Promise<void> {
  if (!isRunning(p)) return;
  p.child.kill(signal);
  const timedOut = Symbol('timeout');
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p.exited,
    new Promise<typeof timedOut>((res) => (timer = setTimeout(() => res(timedOut), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (r === timedOut) {
    p.child.kill('SIGKILL');
    await Promise.race([p.exited, sleep(2_000)]);
  }
}

/** Stops every process started here: SIGTERM, then SIGKILL after a grace period. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => killProcess(p, 'SIGTERM', 3_000)));
}

export function runningCount(): number {
  return running.size;
}

/** Runs a program to completion, bounded in time (killed past it). */
export function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface PromVectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromQueryResult {
  status: string;
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: PromVectorSample[] | [number, string] };
}

/** A Prometheus started on a free loopback port with its own config, data and rules. */
export class TestPrometheus {
  readonly url: string;
  private constructor(
    readonly proc: Proc,
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(opts: {
    dir: string;
    port: number;
    ruleFiles: string[];
    jobs: Record<string, string[]>;
    /** Target labels per target address, e.g. the `namespace` Kubernetes would set. */
    targetLabels?: Record<string, Record<string, string>>;
    intervalSeconds?: number;
  }): Promise<TestPrometheus> {
    const binary = requireTool('prometheus');
    const every = `${opts.intervalSeconds ?? 1}s`;
    const lines = [
      'global:',
      `  scrape_interval: ${every}`,
      `  evaluation_interval: ${every}`,
      `  scrape_timeout: ${every}`,
      'rule_files:',
      ...opts.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`),
      'scrape_configs:',
      ...Object.entries(opts.jobs).flatMap(([job, targets]) => [
        `  - job_name: ${JSON.stringify(job)}`,
        '    static_configs:',
        // One static config per target, so that each can carry labels of its own.
        ...targets.flatMap((t) => [
          `      - targets: [${JSON.stringify(t)}]`,
          `        labels: ${JSON.stringify(opts.targetLabels?.[t] ?? {})}`,
        ]),
      ]),
    ];
    const config = join(opts.dir, 'prometheus.yml');
    writeFileSync(config, lines.join('\n') + '\n');
    const proc = startProcess(
      'prometheus',
      binary,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(opts.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${opts.port}`,
        // As in deploy/compose: exemplars (trace ids on latency samples) are stored.
        '--enable-feature=exemplar-storage',
        '--log.level=warn',
      ],
      {},
    );
    const prom = new TestPrometheus(proc, opts.port);
    await waitFor(
      'prometheus to be ready',
      async () => {
        if (!isRunning(proc)) throw new WaitAborted(`prometheus exited: ${proc.output()}`);
        return (await httpGet(`${prom.url}/-/ready`, 1_000)).status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    return prom;
  }

  async query(expr: string): Promise<PromQueryResult> {
    const res = await fetch(`${this.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query: expr }).toString(),
      signal: AbortSignal.timeout(10_000),
    });
    return (await res.json()) as PromQueryResult;
  }

  /** The instant vector of a query that must succeed. */
  async vector(expr: string): Promise<PromVectorSample[]> {
    const r = await this.query(expr);
    if (r.status !== 'success' || r.data?.resultType !== 'vector') {
      throw new Error(
        `query failed: ${expr}: ${r.errorType ?? ''} ${r.error ?? r.data?.resultType ?? ''}`,
      );
    }
    return r.data.result as PromVectorSample[];
  }

  async getJson<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as T;
  }
}
