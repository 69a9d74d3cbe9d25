/**
 * The benchmark runner: `npm run bench` (full sizes) or `npm run bench -- --smoke`
 * (tiny sizes, seconds each; also BENCH_SMOKE=1). Options: `--only a,b` runs some
 * figures; `--out DIR` writes results elsewhere (the smoke test uses a temp dir).
 * Prints a table, writes bench/results/<figure>.json and latest.json, and on a full run
 * refreshes the table in BENCHMARKS.md. Never fails on a target: figures are figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIGURES } from './figures';
import { machineInfo } from './lib/machine';
import { plotAll } from './lib/plot';
import { killAll, ROOT } from './lib/procs';
import { renderTable, updateBenchmarksMd } from './lib/report';
import type { FigureResult } from './lib/types';

function parseArgs(argv: string[]): { smoke: boolean; only?: Set<string>; out?: string } {
  let smoke = process.env.BENCH_SMOKE === '1';
  let only: Set<string> | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--smoke') smoke = true;
    else if (a === '--only') only = new Set(argv[++i]!.split(','));
    else if (a === '--out') out = argv[++i];
    else {
      console.error(`unknown argument ${a}; use --smoke, --only NAME[,NAME], --out DIR`);
      process.exit(2);
    }
  }
  return { smoke, only, out };
}

// Interrupted (Ctrl-C, or a test's timeout): take every child process down with us.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void killAll().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const { smoke, only, out } = parseArgs(process.argv.slice(2));
  const outDir = out ?? join(ROOT, 'bench', 'results', smoke ? 'smoke' : '');
  mkdirSync(outDir, { recursive: true });
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const results: FigureResult[] = [];
  const failures: { name: string; error: string }[] = [];
  const log = (m: string) => console.error(`[bench] ${m}`);
  log(
    `${smoke ? 'smoke' : 'full'} run on ${machine.cpuModel}, ${machine.nproc} cpu, load ${machine.loadAvg}`,
  );
  for (const fig of FIGURES) {
    if (only ? !only.has(fig.name) : fig.optIn) continue;
    const t0 = Date.now();
    log(`${fig.name}: ${fig.title}`);
    try {
      const r = await fig.run({ smoke, log: (m) => log(`  ${fig.name}: ${m}`) });
      results.push(r);
      writeFileSync(
        join(outDir, `${fig.name}.json`),
        JSON.stringify({ ...r, machine, smoke }, null, 2) + '\n',
      );
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      failures.push({ name: fig.name, error });
      log(`${fig.name} FAILED: ${error}`);
    } finally {
      await killAll();
    }
    log(`${fig.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const finishedAt = new Date().toISOString();
  const loadAfter = machineInfo().loadAvg;
  const combined = { startedAt, finishedAt, smoke, machine, loadAfter, results, failures };
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify(combined, null, 2) + '\n');
  const table = renderTable(results);
  console.log(table);
  if (failures.length)
    console.log(`\nfigures that could not be measured: ${failures.map((f) => f.name).join(', ')}`);
  try {
    const images = plotAll(results, outDir);
    if (images.length) log(`plots: ${images.join(', ')}`);
  } catch (err) {
    log(`plots skipped: ${String(err)}`);
  }
  if (!smoke && !out && !only)
    await updateBenchmarksMd(join(ROOT, 'BENCHMARKS.md'), combined, table);
  // A figure that could not run is a broken benchmark (not a missed target).
  process.exitCode = failures.length ? 1 : 0;
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => void killAll());
