/**
 * Start to ready: spawning the built program until its /readyz answers 200 (controller:
 * serving; node: connected and registered with a running controller). Polled every 2 ms.
 */
import { randomUUID } from 'node:crypto';
import { freePort } from '../../tests/support/ports';
import { startController, startProgram, waitReady } from '../lib/procs';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'startup';
export const title = 'Process start to ready (controller; node registered)';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const runs = ctx.smoke ? 2 : 15;
  const controllerMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const grpcPort = await freePort();
    const metricsPort = await freePort();
    const t0 = Date.now();
    const c = startController(grpcPort, metricsPort);
    controllerMs.push((await waitReady(c.metricsUrl, c.program, { intervalMs: 2 })) - t0);
    await c.program.kill();
  }
  const ctl = startController(await freePort(), await freePort());
  await waitReady(ctl.metricsUrl, ctl.program);
  const nodeMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const metricsPort = await freePort();
    const t0 = Date.now();
    const node = startProgram('node', {
      NODE_CONTROLLER_ADDR: ctl.grpcAddr,
      NODE_CURRENCY_PAIRS: 'EUR_USD',
      NODE_UUID: randomUUID(),
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    });
    nodeMs.push((await waitReady(`http://127.0.0.1:${metricsPort}`, node, { intervalMs: 2 })) - t0);
    await node.kill();
  }
  await ctl.program.kill();
  return {
    name,
    title,
    rows: [
      {
        metric: 'controller: spawn -> /readyz 200',
        unit: 'ms',
        target: '<= 300 ms',
        summary: summarize(controllerMs),
      },
      {
        metric: 'node: spawn -> registered (/readyz 200)',
        unit: 'ms',
        target: '<= 300 ms',
        summary: summarize(nodeMs),
      },
    ],
    notes: [
      'Built programs (`node dist/services/...`), tracing off. Image start to ready is the opt-in ' +
        'figure `image-startup` (needs Docker).',
    ],
    data: { controllerMs, nodeMs },
  };
}
