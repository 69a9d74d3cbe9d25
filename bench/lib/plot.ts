/**
 * Plots as SVG written by hand (no plotting dependency), turned into PNG with
 * `rsvg-convert` (Debian: librsvg2-bin) when it is installed; otherwise the SVG stays and
 * the PNG step is skipped with a message. Optional: the figures never depend on it.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './stats';
import type { FigureResult } from './types';

const W = 720;
const H = 420;
const M = { left: 70, right: 30, top: 50, bottom: 60 };

interface Axis {
  min: number;
  max: number;
  log?: boolean;
}

function scale(a: Axis, lo: number, hi: number): (v: number) => number {
  const f = (v: number) => (a.log ? Math.log10(v) : v);
  return (v) => lo + ((f(v) - f(a.min)) / (f(a.max) - f(a.min) || 1)) * (hi - lo);
}

function niceTicks(a: Axis, count = 6): number[] {
  if (a.log) {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(a.min)); e <= Math.ceil(Math.log10(a.max)); e++)
      ticks.push(10 ** e);
    return ticks.filter((t) => t >= a.min && t <= a.max);
  }
  const raw = (a.max - a.min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(a.min / step) * step; t <= a.max + 1e-9 && ticks.length < 50; t += step)
    ticks.push(+t.toFixed(10));
  return ticks;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function frame(
  title: string,
  xLabel: string,
  yLabel: string,
  x: Axis,
  y: Axis,
  body: string,
): string {
  const sx = scale(x, M.left, W - M.right);
  const sy = scale(y, H - M.bottom, M.top);
  const grid: string[] = [];
  for (const t of niceTicks(y)) {
    grid.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e3e3e3"/>`,
    );
    grid.push(
      `<text x="${M.left - 8}" y="${sy(t) + 4}" text-anchor="end">${t.toLocaleString('en-US')}</text>`,
    );
  }
  for (const t of niceTicks(x)) {
    grid.push(
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}" stroke="#333"/>`,
    );
    grid.push(
      `<text x="${sx(t)}" y="${H - M.bottom + 20}" text-anchor="middle">${t.toLocaleString('en-US')}</text>`,
    );
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`,
    ...grid,
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 15}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    body,
    '</svg>',
  ].join('\n');
}

/** Histogram of failover latencies with the median and p99 marked. */
export function failoverSvg(samples: number[], subtitle: string, targetMs = 100): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const hi = Math.max(1, sorted[sorted.length - 1] ?? 1);
  const bins = Math.min(30, Math.max(5, Math.ceil(Math.sqrt(sorted.length)) * 2));
  const width = hi / bins;
  const counts = new Array<number>(bins).fill(0);
  for (const s of sorted) counts[Math.min(bins - 1, Math.floor(s / width))]!++;
  const x: Axis = { min: 0, max: Math.max(hi, targetMs) * 1.08 };
  const y: Axis = { min: 0, max: Math.max(...counts) * 1.15 };
  const sx = scale(x, M.left, W - M.right);
  const sy = scale(y, H - M.bottom, M.top);
  const bars = counts.map(
    (c, i) =>
      `<rect x="${sx(i * width) + 1}" y="${sy(c)}" width="${Math.max(1, sx((i + 1) * width) - sx(i * width) - 2)}" height="${sy(0) - sy(c)}" fill="#4c78a8"/>`,
  );
  const med = percentile(sorted, 0.5);
  const p99 = percentile(sorted, 0.99);
  const mark = (v: number, label: string, color: string, dy: number) => {
    // Labels go left of their line near the right edge, so that they are not cut off.
    const right = sx(v) > W - M.right - 160;
    return (
      `<line x1="${sx(v)}" x2="${sx(v)}" y1="${M.top}" y2="${H - M.bottom}" stroke="${color}" stroke-dasharray="5,4" stroke-width="2"/>` +
      `<text x="${sx(v) + (right ? -6 : 6)}" y="${M.top + dy}" fill="${color}" text-anchor="${right ? 'end' : 'start'}">${esc(label)} ${v.toFixed(1)} ms</text>`
    );
  };
  return frame(
    `Failover latency: SIGKILL -> first price from replacement (${sorted.length} runs)`,
    `milliseconds (${subtitle})`,
    'runs',
    x,
    y,
    [
      ...bars,
      mark(targetMs, 'target p99 <=', '#888888', 52),
      mark(med, 'median', '#2a9d2a', 16),
      mark(p99, 'p99', '#d62728', 34),
    ].join('\n'),
  );
}

/** Failover latency (median, p99) and nodes told, against the number of connected nodes. */
export function curveSvg(
  curve: { n: number; medianMs: number; p99Ms: number; nodesToldMedian: number }[],
): string {
  const x: Axis = {
    min: Math.min(...curve.map((c) => c.n)) / 1.5,
    max: Math.max(...curve.map((c) => c.n)) * 1.5,
    log: true,
  };
  const yMax = Math.max(10, ...curve.map((c) => c.p99Ms)) * 1.2;
  const y: Axis = { min: 0, max: yMax };
  const sx = scale(x, M.left, W - M.right);
  const sy = scale(y, H - M.bottom, M.top);
  const line = (key: 'medianMs' | 'p99Ms', color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${curve.map((c) => `${sx(c.n)},${sy(c[key])}`).join(' ')}"/>` +
    curve
      .map((c) => `<circle cx="${sx(c.n)}" cy="${sy(c[key])}" r="4.5" fill="${color}"/>`)
      .join('');
  const labels = curve.map(
    (c) =>
      `<text x="${sx(c.n)}" y="${sy(c.p99Ms) - 10}" text-anchor="middle" font-size="11" fill="#555">${c.nodesToldMedian} node(s) told</text>`,
  );
  const legend =
    `<rect x="${W - M.right - 170}" y="${M.top + 4}" width="14" height="4" fill="#4c78a8"/><text x="${W - M.right - 150}" y="${M.top + 10}">median</text>` +
    `<rect x="${W - M.right - 170}" y="${M.top + 22}" width="14" height="4" fill="#d62728"/><text x="${W - M.right - 150}" y="${M.top + 28}">p99</text>`;
  return frame(
    'One node of N leaves: kill -> replacement streaming (ms)',
    'connected nodes N (log scale)',
    'milliseconds',
    x,
    y,
    [line('medianMs', '#4c78a8'), line('p99Ms', '#d62728'), ...labels, legend].join('\n'),
  );
}

function toPng(svgFile: string): string | undefined {
  const png = svgFile.replace(/\.svg$/, '.png');
  const r = spawnSync('rsvg-convert', ['-o', png, svgFile], { stdio: 'pipe' });
  return r.status === 0 ? png : undefined;
}

/** Writes the plots a run has data for; returns the files written. */
export function plotAll(results: FigureResult[], dir: string): string[] {
  const written: string[] = [];
  const emit = (name: string, svg: string) => {
    const file = join(dir, `${name}.svg`);
    writeFileSync(file, svg);
    written.push(file);
    const png = toPng(file);
    if (png) written.push(png);
    else
      console.error(
        `[bench] ${name}.png not made: install rsvg-convert (Debian: librsvg2-bin); the SVG is there`,
      );
  };
  const fo = results.find((r) => r.name === 'failover');
  const samples = fo?.data?.samplesMs as number[] | undefined;
  if (samples?.length)
    emit('failover-latency', failoverSvg(samples, 'watch subscription at the controller'));
  const rc = results.find((r) => r.name === 'reassign-curve');
  const curve = rc?.data?.curve as Parameters<typeof curveSvg>[0] | undefined;
  if (curve?.length) emit('scale-curve', curveSvg(curve));
  return written;
}
