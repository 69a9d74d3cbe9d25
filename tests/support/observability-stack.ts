/**
 * A real controller, real nodes and a real Prometheus as child processes on loopback, for
 * tests/integration/observability-live.test.ts. Every process started here is tracked
 * and killed by `stopAll`; every wait is bounded in count and in time.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, freePorts } from './ports';
import { ProcessGroup, type TrackedProcess, programPath } from './processes';
import { WaitAborted, sleep, waitFor as baseWaitFor } from './wait';

export { WaitAborted, freePort, freePorts, programPath, sleep };

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

export type Proc = TrackedProcess;

/** This stack's processes (stopped together by `stopAll`); only the newest output is kept. */
const stack = new ProcessGroup();
const OUTPUT_KEEP = 20_000;

export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
): Proc {
  return stack.spawn(name, command, args, { env, keep: OUTPUT_KEEP });
}

export function isRunning(p: Proc): boolean {
  return p.running();
}

/** Kills a process and waits (bounded) for it to exit. */
export function killProcess(
  p: Proc,
  signal: NodeJS.Signals = 'SIGKILL',
  timeoutMs = 5_000,
): Promise<void> {
  return p.kill(signal, timeoutMs);
}

/** Stops every process started here: SIGTERM, then SIGKILL after a grace period. */
export function stopAll(): Promise<void> {
  return stack.killAll('SIGTERM', 3_000);
}

export function runningCount(): number {
  return stack.size;
}

/** Runs a program to completion, bounded in time (killed past it). */
export function runToEnd(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return stack.run(command, args, { env, timeoutMs });
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
