/**
 * Benchmarks are not tests, but they must not rot: this runs every figure of
 * `npm run bench` once at its tiny (smoke) size and checks only that each produced its
 * numbers and run counts. Targets are never asserted here.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIGURES } from '../../bench/figures';
import type { RunResult, Summary } from '../../bench/compare/ingest-floor';

const ROOT = join(__dirname, '..', '..');

interface Latest {
  smoke: boolean;
  failures: { name: string; error: string }[];
  results: {
    name: string;
    rows: {
      metric: string;
      unit: string;
      summary: { runs: number; median: number; p99: number };
    }[];
  }[];
}

function runBench(
  outDir: string,
  timeoutMs: number,
): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'dist', 'bench', 'bench', 'run.js'), '--smoke', '--out', outDir],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    // The runner kills its own children on SIGTERM; SIGKILL only if it does not go.
    const term = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 5000);
    child.once('exit', (code, sig) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code: code ?? sig ?? 'unknown', output });
    });
  });
}

describe('benchmarks (smoke size)', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  test('every benchmark runs at its tiny size and reports numbers with run counts', async () => {
    const tsc = spawnSync(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        join(ROOT, 'tsconfig.bench.json'),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 60_000 },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    const { code, output } = await runBench(outDir, 130_000);
    const latest = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8')) as Latest;
    expect({ code, failures: latest.failures }).toEqual({ code: 0, failures: [] });
    expect(latest.smoke).toBe(true);
    // Opt-in figures (they need e.g. Docker) run only when named with --only.
    expect(latest.results.map((r) => r.name)).toEqual(
      FIGURES.filter((f) => !f.optIn).map((f) => f.name),
    );
    for (const r of latest.results) {
      expect(r.rows.length).toBeGreaterThan(0);
      for (const row of r.rows) {
        const where = `${r.name}: ${row.metric}`;
        expect({ where, runs: row.summary.runs > 0 }).toEqual({ where, runs: true });
        expect({ where, median: Number.isFinite(row.summary.median) }).toEqual({
          where,
          median: true,
        });
        expect({ where, p99: Number.isFinite(row.summary.p99) }).toEqual({ where, p99: true });
      }
    }
    expect(output).toContain('| figure | measured | median | p99 |');

    // Upstreams (issue #20): the failover ran its rounds, and the loaded node streamed over
    // both upstream kinds (a figure of a node that sent nothing would measure nothing).
    const rows = (figure: string) => latest.results.find((r) => r.name === figure)?.rows ?? [];
    expect(rows('upstream-failover')[0]?.summary.runs).toBe(2);
    for (const kind of ['http', 'websocket']) {
      const sent = rows('upstream-node-load').find(
        (r) => r.metric.startsWith('price updates sent') && r.metric.includes(`(${kind})`),
      );
      expect({ kind, sending: (sent?.summary.median ?? 0) > 0 }).toEqual({ kind, sending: true });
    }
  }, 200_000);
});

/** Runs a compiled bench script with `args`; SIGTERM after `timeoutMs`, SIGKILL 5 s later. */
function runScript(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | string; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const term = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 5000);
    child.once('exit', (code, sig) => {
      clearTimeout(term);
      clearTimeout(kill);
      resolve({ code: code ?? sig ?? 'unknown', output });
    });
  });
}

describe('per-update floor comparison (issue #22, smoke size)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-floor-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Compiled by the test above (tsc -p tsconfig.bench.json); the controller by `npm run build`.
  test('the controller and the floor server take the same four loads, alternated, and both report updates per CPU-second', async () => {
    const json = join(dir, 'ingest-floor.json');
    const { code, output } = await runScript(
      [
        join(ROOT, 'dist', 'bench', 'bench', 'compare', 'ingest-floor.js'),
        '--smoke',
        '--json',
        json,
      ],
      120_000,
    );
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const r = JSON.parse(readFileSync(json, 'utf8')) as {
      sums: Summary[];
      results: RunResult[];
    };
    expect(r.sums.map((s) => s.scenario)).toEqual([
      'single-paced',
      'single-full',
      'batch-paced',
      'batch-full',
    ]);
    for (const s of r.sums) {
      for (const [server, side] of [
        ['floor', s.floor],
        ['controller', s.controller],
      ] as const) {
        const where = `${s.scenario} ${server}`;
        expect({
          where,
          runs: side.runs,
          measured: side.rate > 0 && side.perCpuSecond > 0 && Number.isFinite(side.perCpuSecond),
        }).toEqual({ where, runs: 1, measured: true });
      }
      expect({ scenario: s.scenario, ratio: Number.isFinite(s.controller.ratio) }).toEqual({
        scenario: s.scenario,
        ratio: true,
      });
    }
    // Every generator process wrote prices; at full rate there is more than one of them.
    for (const x of r.results) {
      const where = `${x.scenario} ${x.server}`;
      expect({ where, wrote: x.genRates.length > 0 && x.genRates.every((g) => g > 0) }).toEqual({
        where,
        wrote: true,
      });
      if (x.scenario.endsWith('-full')) expect(x.genRates.length).toBeGreaterThan(1);
    }
    expect(output).toContain('| scenario | floor updates/cpu-s | controller updates/cpu-s |');
  }, 150_000);
});

describe('per-update floor comparison with --pin (CPU affinity), smoke size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-floor-pin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('the servers run pinned to their own CPU and both report updates per CPU-second', async () => {
    const json = join(dir, 'pinned.json');
    const { code, output } = await runScript(
      [
        join(ROOT, 'dist', 'bench', 'bench', 'compare', 'ingest-floor.js'),
        '--smoke',
        '--only',
        // Paced (1,000 updates/s at smoke size): pinning is what is tested here, and a
        // full-rate load would take both cores from the other lanes for another 20 s.
        'batch-paced',
        '--pin',
        '--json',
        json,
      ],
      90_000,
    );
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const r = JSON.parse(readFileSync(json, 'utf8')) as {
      options: { pin: boolean };
      results: RunResult[];
    };
    expect(r.options.pin).toBe(true);
    expect(r.results.map((x) => [x.server, x.perCpuSecond > 0]).sort()).toEqual([
      ['controller', true],
      ['floor', true],
    ]);
  }, 120_000);
});

describe('a graceful stop with a fleet connected (bench/compare/core-stop.js, small size)', () => {
  test('the core stops every node and reports how long it took and what it counted', async () => {
    const { code, output } = await runScript(
      [join(ROOT, 'bench', 'compare', 'core-stop.js'), join(ROOT, 'dist'), '200', '10', '5'],
      60_000,
    );
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const r = JSON.parse(output.trim().split('\n').pop()!) as Record<string, number>;
    expect(r).toMatchObject({ nodes: 200, pairsPerNode: 10, groups: 5, connectedAfter: 0 });
    for (const k of ['stopMs', 'failoversCounted', 'reassignmentsCounted', 'framesWrittenToNodes'])
      expect([k, Number.isFinite(r[k])]).toEqual([k, true]);
  }, 90_000);
});
