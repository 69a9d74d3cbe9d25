/**
 * Controller restart: with N simulated nodes connected and every pair streamed, the
 * controller is SIGKILLed and started again on the same address; measured from the new
 * controller answering /readyz to all N nodes re-registered and every pair streamed
 * (its own gauges, scraped every 20 ms).
 */
import { freePort } from '../../tests/support/ports';
import { BenchCli } from '../lib/cli';
import { sleep, waitUntil } from '../lib/clock';
import { type ControllerHandle, type Sim, startController, waitReady } from '../lib/procs';
import { addSpread, fleetSpecs, newSims, stopGracefully, waitFleet } from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'controller-restart';
export const title = 'Controller restart -> all nodes re-registered and every pair streamed';

/**
 * Every node registered (each simulated node saw the controller's first frame, which the
 * controller sends on registration) and every pair with a streamer by the controller's
 * own `controller streams`. Cheap to poll every 20 ms, unlike a /metrics scrape.
 */
async function waitRestored(
  ctl: ControllerHandle,
  sims: Sim[],
  n: number,
  pool: number,
): Promise<number> {
  let cli: BenchCli | undefined;
  try {
    return await waitUntil(
      'fleet restored',
      async () => {
        const registered = (await Promise.all(sims.map((s) => s.status()))).reduce(
          (a, s) => a + s.registered,
          0,
        );
        if (registered !== n) return undefined;
        if (!cli || cli.ended) {
          cli?.close();
          cli = new BenchCli(ctl.grpcAddr);
          await cli.open();
        }
        const r = await cli.request('ControllerStreamsV1Req', {}, 2000).catch((err: unknown) => {
          // Start over on a new stream rather than wait on one that may be dead.
          cli?.close();
          cli = undefined;
          throw err;
        });
        if (r.name !== 'ControllerStreamsV1Reply') return undefined;
        const streamed = r.message.pairs.filter((p) => p.nodeUuids.length > 0).length;
        return streamed === pool ? Date.now() : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
  } finally {
    (cli as BenchCli | undefined)?.close();
  }
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const n = ctx.smoke ? 20 : 1000;
  const pool = ctx.smoke ? 10 : 200;
  const runs = ctx.smoke ? 1 : 6;
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  let ctl = startController(grpcPort, metricsPort);
  await waitReady(ctl.metricsUrl, ctl.program);
  const sims = newSims(ctx.smoke ? 1 : 2, ctl);
  await addSpread(sims, fleetSpecs(0, n, pool, 3, 'restart'), ctx.smoke ? undefined : 500);
  await waitFleet(ctl, n, pool, 120_000);
  const afterReady: number[] = [];
  const toReady: number[] = [];
  for (let i = 0; i < runs; i++) {
    ctl.program.signal('SIGKILL');
    await ctl.program.exited;
    const spawnedAt = Date.now();
    ctl = startController(grpcPort, metricsPort);
    const readyAt = await waitReady(ctl.metricsUrl, ctl.program, {
      timeoutMs: 15_000,
      intervalMs: 5,
    });
    const doneAt = await waitRestored(ctl, sims, n, pool);
    toReady.push(readyAt - spawnedAt);
    afterReady.push(doneAt - readyAt);
    ctx.log(
      `run ${i + 1}: ready after ${readyAt - spawnedAt} ms, fleet back ${doneAt - readyAt} ms later`,
    );
    await sleep(ctx.smoke ? 100 : 1000);
  }
  await stopGracefully(ctl);
  return {
    name,
    title,
    rows: [
      {
        metric: `controller ready -> all ${n} nodes back, every pair streamed`,
        unit: 'ms',
        target: '<= 3000 ms (1,000 nodes)',
        summary: summarize(afterReady),
      },
      {
        metric: 'controller respawn -> ready (under reconnect load)',
        unit: 'ms',
        summary: summarize(toReady),
      },
    ],
    notes: [
      `${n} simulated nodes (real gRPC clients, one connection each) in ${sims.length} load-generator process(es), ` +
        `3 pairs each from a pool of ${pool}; nodes reconnect with the real node's backoff (100 ms doubling to 2 s, half jitter).`,
    ],
    data: { afterReadyMs: afterReady, toReadyMs: toReady },
  };
}
