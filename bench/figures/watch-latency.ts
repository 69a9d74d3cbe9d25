/**
 * Watch latency: simulated nodes send a paced total of R updates/s; a watch subscription
 * (the protocol the CLI's `watch` uses) timestamps each update on arrival. Latency is
 * arrival time minus the node's price timestamp (set just before the write, with
 * sub-millisecond precision; both clocks are this machine's).
 *
 * Measured twice on the same controller and load, one watcher at a time: as the CLI
 * subscribes (ControllerWatchPricesV2Req: the updates of one event-loop turn in one
 * frame), then as CLIs before it did (V1: one frame per update). The controller runs with
 * its default limits, so a watcher that falls behind loses updates; drops are reported.
 */
import { freePort } from '../../tests/support/ports';
import { BenchCli } from '../lib/cli';
import { sleep, waitUntil } from '../lib/clock';
import { metricSum, scrape } from '../lib/metrics';
import { type ControllerHandle, Sim, startController, waitReady } from '../lib/procs';
import { profileArgs, stopGracefully } from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult, Row } from '../lib/types';

export const name = 'watch-latency';
export const title = 'node -> controller -> watch latency at 10,000 updates/s';

const DROPPED = 'currency_controller_watch_updates_dropped_total';

interface Phase {
  latencies: number[];
  achievedPerSec: number;
  dropped: number;
}

async function measureWatcher(
  ctx: BenchContext,
  ctl: ControllerHandle,
  batched: boolean,
  measureMs: number,
): Promise<Phase> {
  const cli = new BenchCli(ctl.grpcAddr);
  const latencies: number[] = [];
  let measuring = false;
  try {
    await cli.open();
    await cli.watch(
      [],
      (p) => {
        if (measuring) latencies.push(p.receivedAtMs - p.sentAtMs);
      },
      batched,
    );
    await sleep(ctx.smoke ? 300 : 1500);
    const d0 = metricSum(await scrape(ctl.metricsUrl), DROPPED);
    measuring = true;
    const t0 = performance.now();
    await sleep(measureMs);
    measuring = false;
    const secs = (performance.now() - t0) / 1000;
    const d1 = metricSum(await scrape(ctl.metricsUrl), DROPPED);
    if (latencies.length === 0)
      throw new Error(`the watcher received nothing: ${ctl.program.output()}`);
    return { latencies, achievedPerSec: latencies.length / secs, dropped: d1 - d0 };
  } finally {
    cli.close();
  }
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const rate = ctx.smoke ? 500 : 10_000;
  const nodes = ctx.smoke ? 4 : 20;
  const measureMs = ctx.smoke ? 1000 : 10_000;
  const ctl = startController(await freePort(), await freePort(), {}, profileArgs(name));
  try {
    await waitReady(ctl.metricsUrl, ctl.program);
    const sim = new Sim(ctl.grpcAddr);
    await sim.request({
      type: 'add',
      nodes: Array.from({ length: nodes }, (_, i) => ({
        uuid: crypto.randomUUID(),
        name: `watch-${i}`,
        pairs: [`W${i}_USD`],
      })),
    });
    await waitUntil(
      'every pair streaming',
      async () => (await sim.status()).streamingPairs === nodes,
      { timeoutMs: 30_000 },
    );
    await sim.request({ type: 'prices', mode: 'paced', perSec: rate });
    const phases: { label: string; batched: boolean }[] = [
      { label: 'batched watch (V2, as the CLI subscribes)', batched: true },
      { label: 'one frame per update (V1)', batched: false },
    ];
    const rows: Row[] = [];
    const data: Record<string, unknown> = {};
    const logs: string[] = [];
    for (const ph of phases) {
      const m = await measureWatcher(ctx, ctl, ph.batched, measureMs);
      const delivered = Math.round(m.achievedPerSec).toLocaleString('en-US');
      rows.push(
        {
          metric: `update latency node -> controller -> watch, ${ph.label} (${delivered} updates/s delivered)`,
          unit: 'ms',
          target: 'p99 <= 5 ms',
          summary: summarize(m.latencies),
        },
        {
          metric: `updates dropped for the watcher (not draining), ${ph.batched ? 'V2' : 'V1'} watcher`,
          unit: 'updates',
          summary: summarize([m.dropped]),
        },
      );
      data[ph.batched ? 'v2' : 'v1'] = {
        achievedPerSec: m.achievedPerSec,
        dropped: m.dropped,
        p999: summarizeTail(m.latencies, 0.999),
      };
      logs.push(`${ph.batched ? 'V2' : 'V1'}: ${delivered} updates/s, ${m.dropped} dropped`);
    }
    await sim.request({ type: 'prices', mode: 'off' });
    const sent = (await sim.status()).sent;
    ctx.log(logs.join('; '));
    return {
      name,
      title,
      rows,
      notes: [
        `${nodes} simulated nodes, one pair each, paced to ${rate} updates/s in total; one watch subscribed to every pair at a time, ` +
          `first batched (V2) then one frame per update (V1); runs = updates measured over ${measureMs / 1000} s each; ` +
          `${sent} updates sent in all; controller at its default limits.`,
      ],
      data,
    };
  } finally {
    await stopGracefully(ctl);
  }
}

function summarizeTail(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
}
