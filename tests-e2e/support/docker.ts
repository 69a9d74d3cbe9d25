/**
 * Shared by the e2e tests: the image tags `npm run setup:e2e` prepared, the project images
 * (built here, so they always match the sources under test), and small wrappers over the
 * docker and compose command lines. Every wait is bounded (tests/support/wait.ts).
 *
 * Testcontainers' reaper image cannot be pulled on a machine with no registry: it is
 * disabled and each test stops what it started in its own teardown.
 */
process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= 'localhost';

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const COMPOSE_DIR = join(ROOT, 'deploy', 'compose');

/** Written by scripts/setup/e2e.sh: the deploy/compose variables that name local images. */
export interface E2eImages {
  NODE_BASE_IMAGE: string;
  CONTROLLER_IMAGE: string;
  NODE_IMAGE: string;
  CLI_IMAGE: string;
  PROMETHEUS_IMAGE: string;
  OTEL_COLLECTOR_IMAGE: string;
  JAEGER_IMAGE: string;
}

export function cacheDir(): string {
  return process.env.CURRENCY_NODES_CACHE || join(homedir(), '.cache', 'currency-nodes');
}

export function loadImages(): E2eImages {
  const file = join(cacheDir(), 'docker', 'e2e-images.env');
  if (!existsSync(file)) {
    throw new Error(`${file} not found: run \`npm run setup:e2e\` first (scripts/setup/e2e.sh)`);
  }
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  for (const k of [
    'NODE_BASE_IMAGE',
    'CONTROLLER_IMAGE',
    'NODE_IMAGE',
    'CLI_IMAGE',
    'PROMETHEUS_IMAGE',
    'OTEL_COLLECTOR_IMAGE',
    'JAEGER_IMAGE',
  ]) {
    if (!out[k]) throw new Error(`${file} has no ${k}: run \`npm run setup:e2e\` again`);
  }
  return out as unknown as E2eImages;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded by timeoutMs; killed after that). */
export function run(
  cmd: string,
  args: string[],
  {
    timeoutMs = 60_000,
    env,
    cwd,
  }: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: cwd ?? ROOT, env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Like run(), but throws with the output when the exit code is not 0. */
export async function runOk(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`,
    );
  }
  return r.stdout;
}

/**
 * Builds the three project images (scripts/setup/docker/build-images.sh: the Dockerfiles as
 * they are, with this machine's base image and npm settings). Cheap when nothing changed.
 */
export function buildProjectImages(): void {
  const started = Date.now();
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'setup', 'docker', 'build-images.sh')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 15 * 60_000,
  });
  if (r.status !== 0) {
    throw new Error(`building the images failed (exit ${r.status}):\n${r.stderr}\n${r.stdout}`);
  }
  process.stdout.write(`e2e: project images built in ${Date.now() - started} ms\n`);
}

/** The CLI's `--json` output, parsed; throws with its stderr when it did not exit 0. */
export function parseCliJson<T>(
  what: string,
  r: { exitCode: number; stdout: string; stderr: string },
): T {
  if (r.exitCode !== 0) {
    throw new Error(`${what} exited with ${r.exitCode}: ${r.stderr.trim()}`);
  }
  return JSON.parse(r.stdout) as T;
}

export interface NodeInfo {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
}

export interface StreamInfo {
  currencyPair: string;
  nodeUuids: string[];
  capableNodes: number;
  desiredStreams: number;
}

export interface PriceInfo {
  currencyPair: string;
  price: number;
  priceUpdatedAt: string;
  nodeUuid: string;
}

/** Problems with "every pair is streamed by exactly one capable, connected node". */
export function streamProblems(
  streams: StreamInfo[],
  nodes: NodeInfo[],
  expectedPairs: string[],
): string[] {
  const problems: string[] = [];
  const byUuid = new Map(nodes.map((n) => [n.nodeUuid, n]));
  const seen = new Set(streams.map((s) => s.currencyPair));
  for (const p of expectedPairs) if (!seen.has(p)) problems.push(`${p}: not known`);
  for (const s of streams) {
    if (s.nodeUuids.length !== 1) {
      problems.push(`${s.currencyPair}: ${s.nodeUuids.length} streamers`);
      continue;
    }
    const n = byUuid.get(s.nodeUuids[0]);
    if (!n) problems.push(`${s.currencyPair}: streamed by unknown node ${s.nodeUuids[0]}`);
    else if (!n.knownCurrencyPairs.includes(s.currencyPair))
      problems.push(`${s.currencyPair}: streamed by ${n.name}, which cannot stream it`);
  }
  // The nodes' own view must agree: each pair in exactly one node's streaming list.
  for (const p of expectedPairs) {
    const streamers = nodes.filter((n) => n.streamingCurrencyPairs.includes(p));
    if (streamers.length !== 1)
      problems.push(`${p}: in ${streamers.length} nodes' streaming lists`);
  }
  return problems;
}

export function elapsedSince(startMs: number): string {
  return `${((Date.now() - startMs) / 1000).toFixed(2)} s`;
}

/** The compose services the e2e tests start: everything but Grafana (no image here). */
export const COMPOSE_SERVICES = [
  'controller',
  'node',
  'node-fx',
  'node-crypto',
  'cli',
  'prometheus',
  'otel-collector',
  'jaeger',
];

/**
 * The environment deploy/compose runs with in the tests: the local images swapped in through
 * the .env variables, every published port on 127.0.0.1 and chosen by the engine.
 */
export function composeEnv(images: E2eImages, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...images,
    PUBLISH_ADDR: '127.0.0.1',
    CONTROLLER_GRPC_PORT: '0',
    CONTROLLER_METRICS_PORT: '0',
    PROMETHEUS_PORT: '0',
    GRAFANA_PORT: '0',
    JAEGER_UI_PORT: '0',
    ...extra,
  };
}

/**
 * One compose project of deploy/compose under a name of its own: `docker compose -p NAME
 * [-f FILE ...]` run in COMPOSE_DIR with the given environment.
 */
export class ComposeProject {
  constructor(
    readonly name: string,
    readonly env: NodeJS.ProcessEnv,
    readonly files: string[] = [],
  ) {}

  private args(args: string[]): string[] {
    return ['compose', '-p', this.name, ...this.files.flatMap((f) => ['-f', f]), ...args];
  }

  run(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run('docker', this.args(args), { cwd: COMPOSE_DIR, env: this.env, timeoutMs });
  }

  ok(args: string[], timeoutMs = 60_000): Promise<string> {
    return runOk('docker', this.args(args), { cwd: COMPOSE_DIR, env: this.env, timeoutMs });
  }

  /**
   * Keeps the stack's logs in $CURRENCY_NODES_CACHE/e2e-logs/, runs `down -v`, and throws
   * unless nothing of the project (containers, networks, volumes) is left.
   */
  async down(): Promise<string> {
    const logs = await this.run(['logs', '--no-color', '--timestamps'], 60_000);
    const dir = join(cacheDir(), 'e2e-logs');
    mkdirSync(dir, { recursive: true });
    const logFile = join(dir, `${this.name}.log`);
    writeFileSync(logFile, logs.stdout + logs.stderr);
    const r = await this.run(['down', '-v', '--remove-orphans', '-t', '5'], 120_000);
    if (r.code !== 0) throw new Error(`docker compose down failed: ${r.stderr}`);
    const label = `label=com.docker.compose.project=${this.name}`;
    const left = [
      ...(await runOk('docker', ['ps', '-a', '-q', '--filter', label])).split('\n'),
      ...(await runOk('docker', ['network', 'ls', '-q', '--filter', label])).split('\n'),
      ...(await runOk('docker', ['volume', 'ls', '-q', '--filter', label])).split('\n'),
    ].filter((x) => x.trim() !== '');
    if (left.length > 0) throw new Error(`docker compose down left behind: ${left.join(', ')}`);
    return logFile;
  }
}

/**
 * The value of one sample on a /metrics page (Prometheus text format): the first line of
 * `name` whose labels include every one of `labels`; undefined when there is none.
 */
export function metricValue(
  page: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of page.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** `docker compose port SERVICE PORT` of a project: the published 127.0.0.1 address. */
export async function publishedAddr(
  project: ComposeProject,
  service: string,
  port: number,
): Promise<string> {
  const out = (await project.ok(['port', service, String(port)])).trim();
  if (!/^127\.0\.0\.1:\d+$/.test(out)) throw new Error(`unexpected published address ${out}`);
  return out;
}
