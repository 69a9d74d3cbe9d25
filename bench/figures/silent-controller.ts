/**
 * Silent controller: a real node program reaches the real controller through a loopback
 * proxy that stops all traffic without closing anything (a pulled cable, a frozen host);
 * measured from the cut to the node reporting itself disconnected
 * (`currency_node_connected` 0 on its metrics port). Detection rests on the node's own
 * pings, which it sends fast (1 s, 1 s to answer) only because our controller permits
 * them in its response headers (docs/failure-detection.md).
 */
import { randomUUID } from 'node:crypto';
import { BlackholeProxy } from '../../tests/support/blackhole-proxy';
import { freePort } from '../../tests/support/ports';
import { nowMs, sleep, waitUntil } from '../lib/clock';
import { gauges } from '../lib/metrics';
import { startController, startProgram, waitReady } from '../lib/procs';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'silent-controller';
export const title = 'Silent controller (traffic cut, nothing closed) -> the node notices';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const runs = ctx.smoke ? 1 : 12;
  const controller = startController(await freePort(), await freePort());
  await waitReady(controller.metricsUrl, controller.program);
  const proxy = await BlackholeProxy.start(Number(controller.grpcAddr.split(':')[1]));
  const metricsPort = await freePort();
  const node = startProgram('node', {
    NODE_CONTROLLER_ADDR: `127.0.0.1:${proxy.port}`,
    NODE_CURRENCY_PAIRS: 'EUR_USD',
    NODE_UUID: randomUUID(),
    NODE_PRICE_INTERVAL_MS: '600000',
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  });
  const connected = async () =>
    (await gauges(`http://127.0.0.1:${metricsPort}`, ['currency_node_connected']))
      .currency_node_connected;
  const samples: number[] = [];
  const teardowns: (() => void)[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      await waitUntil('the node connected', async () => (await connected()) === 1, {
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      // A few pings' worth of a settled connection before the cut.
      await sleep(1_500);
      const t0 = nowMs();
      teardowns.push(proxy.cut());
      await waitUntil('the node notices', async () => (await connected()) === 0, {
        timeoutMs: 15_000,
        intervalMs: 10,
      });
      samples.push(nowMs() - t0);
      // The cut sockets go; the node reconnects through the proxy on its own.
      teardowns.pop()!();
    }
  } finally {
    for (const t of teardowns) t();
    await node.kill();
    await controller.program.kill();
    await proxy.close();
  }
  ctx.log(`silent controller samples (ms): ${samples.map((s) => s.toFixed(0)).join(' ')}`);
  return {
    name,
    title,
    rows: [
      {
        metric: 'traffic cut -> the node reports itself disconnected (currency_node_connected 0)',
        unit: 'ms',
        target: 'p99 <= 3000 ms',
        summary: summarize(samples),
      },
    ],
    notes: [
      'One real node program and the real controller, through a loopback proxy that stops forwarding without closing either socket; the node pings every 1 s with 1 s to answer because the controller permits it (x-currency-keepalive-permit-ms).',
    ],
    data: { samplesMs: samples },
  };
}
