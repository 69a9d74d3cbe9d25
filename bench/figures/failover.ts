/**
 * Failover: the streaming node of a pair is SIGKILLed; measured from just before the kill
 * to the first price for that pair from the replacement, as seen by a watch subscription
 * at the controller. Real node programs; each run replaces the killed node.
 */
import { nowMs } from '../lib/clock';
import { RealNodeSetup } from '../lib/real-nodes';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'failover';
export const title = 'Failover: streaming node SIGKILLed -> first price from the replacement';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const runs = ctx.smoke ? 2 : 40;
  const setup = await RealNodeSetup.start(3);
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const victim = await setup.streamer();
      const replaced = setup.nextPriceNotFrom(victim.uuid, 10_000);
      const t0 = nowMs();
      victim.program.signal('SIGKILL');
      const seen = await replaced;
      samples.push(seen.receivedAtMs - t0);
      await victim.program.exited;
      setup.forget(victim);
      await setup.addNode();
    }
  } finally {
    setup.close();
  }
  ctx.log(`failover samples (ms): ${samples.map((s) => s.toFixed(1)).join(' ')}`);
  return {
    name,
    title,
    rows: [
      {
        metric: 'SIGKILL -> first price from the replacement (watch at controller)',
        unit: 'ms',
        target: 'p99 <= 100 ms',
        summary: summarize(samples),
      },
    ],
    notes: ['3 real node programs, one pair; the killed node is replaced before the next run.'],
    data: { samplesMs: samples },
  };
}
