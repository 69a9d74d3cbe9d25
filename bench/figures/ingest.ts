/**
 * Ingest: simulated nodes send price updates as fast as their streams drain; measured
 * from the controller's own counter (currency_controller_price_updates_total) over
 * fixed windows, with the controller's CPU use in each window. On a 2-core machine the
 * load generators share the CPU with the controller, so the table also gives updates per
 * controller CPU-second (what one core of controller can take).
 */
import { freePort } from '../../tests/support/ports';
import { sleep, waitUntil } from '../lib/clock';
import { scrape, metricSum } from '../lib/metrics';
import { startController, waitReady } from '../lib/procs';
import { G, newSims, profileArgs, stopGracefully } from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'ingest';
export const title = 'Price updates ingested by one controller process';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const procs = ctx.smoke ? 1 : 2;
  const nodesPer = ctx.smoke ? 4 : 50;
  const pairsPerNode = 2;
  const windowMs = ctx.smoke ? 500 : 2000;
  const windows = ctx.smoke ? 2 : 10;
  const ctl = startController(await freePort(), await freePort(), {}, profileArgs(name));
  await waitReady(ctl.metricsUrl, ctl.program);
  const sims = newSims(procs, ctl);
  await Promise.all(
    sims.map((sim, s) =>
      sim.request({
        type: 'add',
        nodes: Array.from({ length: nodesPer }, (_, i) => ({
          uuid: crypto.randomUUID(),
          name: `ingest-${s}-${i}`,
          pairs: Array.from({ length: pairsPerNode }, (_, k) => `I${s}N${i}K${k}_USD`),
        })),
      }),
    ),
  );
  const streams = procs * nodesPer * pairsPerNode;
  await waitUntil(
    'every pair streaming',
    async () =>
      (await Promise.all(sims.map((s) => s.status()))).reduce((a, s) => a + s.streamingPairs, 0) ===
      streams,
    { timeoutMs: 30_000, intervalMs: 50 },
  );
  await Promise.all(sims.map((s) => s.request({ type: 'prices', mode: 'max' })));
  await sleep(ctx.smoke ? 300 : 2000);
  const rates: number[] = [];
  const cores: number[] = [];
  const perCpuSecond: number[] = [];
  for (let w = 0; w < windows; w++) {
    const c0 = ctl.program.cpuSeconds();
    const t0 = performance.now();
    const u0 = metricSum(await scrape(ctl.metricsUrl), G.updates);
    await sleep(windowMs);
    const u1 = metricSum(await scrape(ctl.metricsUrl), G.updates);
    const t1 = performance.now();
    const c1 = ctl.program.cpuSeconds();
    const secs = (t1 - t0) / 1000;
    rates.push((u1 - u0) / secs);
    cores.push((c1 - c0) / secs);
    if (c1 > c0) perCpuSecond.push((u1 - u0) / (c1 - c0));
  }
  await Promise.all(sims.map((s) => s.request({ type: 'prices', mode: 'off' })));
  const sent = (await Promise.all(sims.map((s) => s.status()))).reduce((a, s) => a + s.sent, 0);
  await stopGracefully(ctl);
  ctx.log(
    `rates/s: ${rates.map((r) => Math.round(r)).join(' ')}; controller cores: ${cores.map((c) => c.toFixed(2)).join(' ')}`,
  );
  return {
    name,
    title,
    rows: [
      {
        metric: `updates ingested per second (${procs * nodesPer} nodes, ${streams} streams)`,
        unit: 'updates/s',
        target: '>= 100,000/s',
        summary: summarize(rates),
      },
      { metric: 'controller CPU while ingesting', unit: 'cores', summary: summarize(cores) },
      {
        metric: 'updates per controller CPU-second',
        unit: 'updates/cpu-s',
        summary: summarize(perCpuSecond),
      },
    ],
    notes: [
      `${procs} load-generator process(es) x ${nodesPer} nodes x ${pairsPerNode} pairs, each stream written ` +
        `whenever it drains; ${windows} windows of ${windowMs} ms; ${sent} updates sent in all. ` +
        'Generators and controller share the machine; p99 of a throughput is its 99th-percentile window.',
    ],
    data: { ratesPerSec: rates, controllerCores: cores },
  };
}
