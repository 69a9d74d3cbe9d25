/**
 * Ingest: simulated nodes send price updates as fast as their streams drain; measured
 * from the controller's own counter (currency_controller_price_updates_total) over
 * fixed windows, with the controller's CPU use in each window. On a 2-core machine the
 * load generators share the CPU with the controller, so the table also gives updates per
 * controller CPU-second (what one core of controller can take).
 *
 * Two runs, each with its own controller: one update per frame (NodePriceUpdateV1Notify,
 * what every node sends to a controller that predates batches, and what a node streaming
 * few pairs mostly sends), and batches (NodePriceUpdatesV1Notify with one update for each
 * pair the node streams, as a node sends the updates that fall due together).
 */
import { freePort } from '../../tests/support/ports';
import { sleep, waitUntil } from '../lib/clock';
import { scrape, metricSum } from '../lib/metrics';
import { startController, waitReady } from '../lib/procs';
import { G, newSims, profileArgs, stopGracefully } from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult, Row } from '../lib/types';

export const name = 'ingest';
const SUPERSEDED = 'currency_controller_prices_superseded_total';
export const title = 'Price updates ingested by one controller process';

interface Run {
  label: string;
  nodesPer: number;
  pairsPerNode: number;
  batch: boolean;
}

interface Measured {
  rates: number[];
  cores: number[];
  perCpuSecond: number[];
  received: number[];
  receivedPerCpuSecond: number[];
  sent: number;
  frames: number;
}

async function measure(ctx: BenchContext, run: Run, procs: number): Promise<Measured> {
  const windowMs = ctx.smoke ? 500 : 2000;
  const windows = ctx.smoke ? 2 : 10;
  const ctl = startController(
    await freePort(),
    await freePort(),
    {},
    profileArgs(`${name}-${run.label}`),
  );
  try {
    await waitReady(ctl.metricsUrl, ctl.program);
    const sims = newSims(procs, ctl);
    await Promise.all(
      sims.map((sim, s) =>
        sim.request({
          type: 'add',
          nodes: Array.from({ length: run.nodesPer }, (_, i) => ({
            uuid: crypto.randomUUID(),
            name: `ingest-${s}-${i}`,
            pairs: Array.from({ length: run.pairsPerNode }, (_, k) => `I${s}N${i}K${k}_USD`),
          })),
        }),
      ),
    );
    const streams = procs * run.nodesPer * run.pairsPerNode;
    await waitUntil(
      'every pair streaming',
      async () =>
        (await Promise.all(sims.map((s) => s.status()))).reduce(
          (a, s) => a + s.streamingPairs,
          0,
        ) === streams,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await Promise.all(
      sims.map((s) => s.request({ type: 'prices', mode: 'max', batch: run.batch })),
    );
    await sleep(ctx.smoke ? 300 : 2000);
    const m: Measured = {
      rates: [],
      cores: [],
      perCpuSecond: [],
      received: [],
      receivedPerCpuSecond: [],
      sent: 0,
      frames: 0,
    };
    for (let w = 0; w < windows; w++) {
      const c0 = ctl.program.cpuSeconds();
      const t0 = performance.now();
      const s0 = await scrape(ctl.metricsUrl);
      const u0 = metricSum(s0, G.updates);
      const x0 = metricSum(s0, SUPERSEDED) || 0;
      await sleep(windowMs);
      const s1 = await scrape(ctl.metricsUrl);
      const u1 = metricSum(s1, G.updates);
      const x1 = metricSum(s1, SUPERSEDED) || 0;
      const t1 = performance.now();
      const c1 = ctl.program.cpuSeconds();
      const secs = (t1 - t0) / 1000;
      m.rates.push((u1 - u0) / secs);
      m.cores.push((c1 - c0) / secs);
      if (c1 > c0) m.perCpuSecond.push((u1 - u0) / (c1 - c0));
      m.received.push((u1 - u0 + x1 - x0) / secs);
      if (c1 > c0) m.receivedPerCpuSecond.push((u1 - u0 + x1 - x0) / (c1 - c0));
    }
    await Promise.all(sims.map((s) => s.request({ type: 'prices', mode: 'off' })));
    for (const s of await Promise.all(sims.map((x) => x.status()))) {
      m.sent += s.sent;
      m.frames += s.frames;
    }
    ctx.log(
      `${run.label}: stored/s: ${m.rates.map((r) => Math.round(r)).join(' ')}; received/s: ${m.received.map((r) => Math.round(r)).join(' ')}; controller cores: ${m.cores.map((c) => c.toFixed(2)).join(' ')}`,
    );
    return m;
  } finally {
    await stopGracefully(ctl);
  }
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const procs = ctx.smoke ? 1 : 2;
  const runs: Run[] = [
    { label: 'singles', nodesPer: ctx.smoke ? 4 : 50, pairsPerNode: 2, batch: false },
    { label: 'batches', nodesPer: ctx.smoke ? 4 : 50, pairsPerNode: 10, batch: true },
  ];
  const rows: Row[] = [];
  const notes: string[] = [];
  const data: Record<string, unknown> = {};
  for (const r of runs) {
    const m = await measure(ctx, r, procs);
    const nodes = procs * r.nodesPer;
    const streams = nodes * r.pairsPerNode;
    const how = r.batch
      ? `batches of ${r.pairsPerNode}, ${nodes} nodes, ${streams} streams`
      : `one per frame, ${nodes} nodes, ${streams} streams`;
    rows.push(
      {
        metric: `updates ingested per second (${how})`,
        unit: 'updates/s',
        target: '>= 100,000/s',
        summary: summarize(m.rates),
      },
      {
        metric: `controller CPU while ingesting (${r.label})`,
        unit: 'cores',
        summary: summarize(m.cores),
      },
      {
        metric: `updates per controller CPU-second (${r.label})`,
        unit: 'updates/cpu-s',
        summary: summarize(m.perCpuSecond),
      },
      {
        metric: `updates received (stored + superseded) per second (${r.label})`,
        unit: 'updates/s',
        summary: summarize(m.received),
      },
      {
        metric: `updates received (stored + superseded) per controller CPU-second (${r.label})`,
        unit: 'updates/cpu-s',
        summary: summarize(m.receivedPerCpuSecond),
      },
    );
    notes.push(
      `${r.label}: ${procs} load-generator process(es) x ${r.nodesPer} nodes x ${r.pairsPerNode} pairs, each stream written ` +
        `whenever it drains${r.batch ? `, each write one NodePriceUpdatesV1Notify with an update for each of the node's ${r.pairsPerNode} pairs` : ''}; ` +
        `${m.rates.length} windows; ${m.sent} updates sent in ${m.frames} frames.`,
    );
    data[r.label] = {
      ratesPerSec: m.rates,
      controllerCores: m.cores,
      sent: m.sent,
      frames: m.frames,
    };
  }
  notes.push(
    'Generators and controller share the machine; p99 of a throughput is its 99th-percentile window.',
  );
  return { name, title, rows, notes, data };
}
