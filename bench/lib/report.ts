import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { MachineInfo } from './machine';
import type { FigureResult } from './types';

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A Markdown table: one row per measured quantity. */
export function renderTable(results: FigureResult[]): string {
  const lines = [
    '| figure | measured | median | p99 | min | max | runs | unit | target |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of results) {
    for (const row of r.rows) {
      const s = row.summary;
      lines.push(
        `| ${r.name} | ${row.metric} | ${fmt(s.median)} | ${fmt(s.p99)} | ${fmt(s.min)} | ${fmt(s.max)} | ${s.runs} | ${row.unit} | ${row.target ?? ''} |`,
      );
    }
  }
  return lines.join('\n');
}

const BEGIN = '<!-- bench:latest:begin -->';
const END = '<!-- bench:latest:end -->';

/** Replaces the generated section of BENCHMARKS.md (between markers); the rest is prose. */
export async function updateBenchmarksMd(
  file: string,
  run: {
    startedAt: string;
    finishedAt: string;
    machine: MachineInfo;
    loadAfter: string;
    results: FigureResult[];
    failures: { name: string }[];
  },
  table: string,
): Promise<void> {
  const m = run.machine;
  const notes = run.results.flatMap((r) => r.notes.map((n) => `- **${r.name}**: ${n}`));
  const section = [
    BEGIN,
    `Measured ${run.startedAt} to ${run.finishedAt} (UTC) on: ${m.nproc} CPUs (${m.cpuModel}), ` +
      `${m.memoryGiB} GiB memory, Node ${m.node}, Linux ${m.kernel}. ` +
      `Load average (1/5/15 min) at start: ${m.loadAvg}; at the end: ${run.loadAfter}.`,
    '',
    table,
    '',
    ...(run.failures.length
      ? [`Not measured (failed to run): ${run.failures.map((f) => f.name).join(', ')}`, '']
      : []),
    ...notes,
    END,
  ].join('\n');
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + section + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  // Kept in the project's format, so that `prettier --check .` stays clean after a run.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(next, { ...options, filepath: file }));
}
