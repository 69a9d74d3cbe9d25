/**
 * Silent node: the streaming node is frozen with SIGSTOP (its TCP connection stays open);
 * measured from the stop to the first price for its pair from another node, at the
 * controller. Detection rests on the gRPC keepalive (ping every 1 s, 1 s to answer).
 */
import { nowMs } from '../lib/clock';
import { RealNodeSetup } from '../lib/real-nodes';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'silent-node';
export const title = 'Silent node (SIGSTOP) -> its pairs reassigned';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const runs = ctx.smoke ? 1 : 12;
  const setup = await RealNodeSetup.start(3);
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const victim = await setup.streamer();
      const replaced = setup.nextPriceNotFrom(victim.uuid, 15_000);
      const t0 = nowMs();
      victim.program.signal('SIGSTOP');
      const seen = await replaced;
      samples.push(seen.receivedAtMs - t0);
      await victim.program.kill();
      setup.forget(victim);
      await setup.addNode();
    }
  } finally {
    setup.close();
  }
  ctx.log(`silent samples (ms): ${samples.map((s) => s.toFixed(0)).join(' ')}`);
  return {
    name,
    title,
    rows: [
      {
        metric: 'SIGSTOP -> first price from the replacement (watch at controller)',
        unit: 'ms',
        target: 'p99 <= 3000 ms',
        summary: summarize(samples),
      },
    ],
    notes: ['3 real node programs, one pair; keepalive 1 s + 1 s timeout.'],
    data: { samplesMs: samples },
  };
}
