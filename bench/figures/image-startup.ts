/**
 * Image start to ready: `docker run` of the controller and node images until their
 * /readyz answers 200 (controller: serving; node: registered with the controller), and the
 * same from the moment the engine reports the container started. Host networking on
 * loopback ports, so no port proxy is timed.
 *
 * Opt-in (`npm run bench -- --only image-startup`): it needs a Docker engine and the
 * images, built with scripts/setup/docker/build-images.sh (IMAGE_PREFIX and IMAGE_TAG
 * select them, as there; DOCKER the client). `npm run setup:e2e` provides both.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { freePort } from '../../tests/support/ports';
import { waitUntil } from '../lib/clock';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'image-startup';
export const title = 'Image start to ready (controller; node registered)';
export const optIn = true;

const DOCKER = process.env.DOCKER ?? 'docker';

function docker(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(DOCKER, args, { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker ${args[0]}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

/** RFC 3339 with nanoseconds (docker inspect) -> ms since the epoch, sub-ms kept. */
function epochMs(rfc3339: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(rfc3339.trim());
  if (!m) throw new Error(`unexpected timestamp ${rfc3339}`);
  return Date.parse(`${m[1]}${m[3]}`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

interface Started {
  container: string;
  /** `docker run` issued -> /readyz 200. */
  runMs: number;
  /** The engine's StartedAt -> /readyz 200. */
  startedMs: number;
}

async function runUntilReady(
  image: string,
  env: Record<string, string>,
  metricsPort: number,
  containers: Set<string>,
): Promise<Started> {
  const container = `cn-bench-${randomUUID().slice(0, 8)}`;
  containers.add(container);
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const t0 = performance.timeOrigin + performance.now();
  await docker(['run', '-d', '--network', 'host', '--name', container, ...envArgs, image]);
  const readyAt = await waitUntil(
    `${container} /readyz`,
    async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined);
      await res?.arrayBuffer();
      return res?.status === 200 ? performance.timeOrigin + performance.now() : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 5 },
  );
  const startedAt = epochMs(await docker(['inspect', '-f', '{{.State.StartedAt}}', container]));
  return { container, runMs: readyAt - t0, startedMs: readyAt - startedAt };
}

async function remove(container: string, containers: Set<string>): Promise<void> {
  await docker(['rm', '-f', container]).catch(() => undefined);
  containers.delete(container);
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const prefix = process.env.IMAGE_PREFIX ?? 'currency-nodes';
  const tag = process.env.IMAGE_TAG ?? 'e2e';
  const image = (role: string) => `${prefix}/${role}:${tag}`;
  for (const role of ['controller', 'node']) {
    await docker(['image', 'inspect', image(role)]).catch(() => {
      throw new Error(
        `image ${image(role)} not found: build it with scripts/setup/docker/build-images.sh`,
      );
    });
  }
  const runs = ctx.smoke ? 2 : 10;
  const containers = new Set<string>();
  const ctlRun: number[] = [];
  const ctlStarted: number[] = [];
  const nodeRun: number[] = [];
  const nodeStarted: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const metricsPort = await freePort();
      const s = await runUntilReady(
        image('controller'),
        {
          CONTROLLER_LISTEN_ADDR: `127.0.0.1:${await freePort()}`,
          METRICS_ADDR: `127.0.0.1:${metricsPort}`,
          LOG_LEVEL: 'warn',
        },
        metricsPort,
        containers,
      );
      ctlRun.push(s.runMs);
      ctlStarted.push(s.startedMs);
      await remove(s.container, containers);
    }
    // One controller (an image too) for the nodes to register with.
    const grpcPort = await freePort();
    const ctlMetrics = await freePort();
    await runUntilReady(
      image('controller'),
      {
        CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
        METRICS_ADDR: `127.0.0.1:${ctlMetrics}`,
        LOG_LEVEL: 'warn',
      },
      ctlMetrics,
      containers,
    );
    for (let i = 0; i < runs; i++) {
      const metricsPort = await freePort();
      const s = await runUntilReady(
        image('node'),
        {
          NODE_CONTROLLER_ADDR: `127.0.0.1:${grpcPort}`,
          NODE_CURRENCY_PAIRS: 'EUR_USD',
          METRICS_ADDR: `127.0.0.1:${metricsPort}`,
          LOG_LEVEL: 'warn',
        },
        metricsPort,
        containers,
      );
      nodeRun.push(s.runMs);
      nodeStarted.push(s.startedMs);
      await remove(s.container, containers);
    }
  } finally {
    await Promise.all([...containers].map((c) => remove(c, containers)));
  }
  ctx.log(`images ${image('controller')}, ${image('node')}`);
  return {
    name,
    title,
    rows: [
      {
        metric: 'controller image: `docker run` -> /readyz 200',
        unit: 'ms',
        target: '<= 1000 ms',
        summary: summarize(ctlRun),
      },
      {
        metric: 'controller image: container started -> /readyz 200',
        unit: 'ms',
        summary: summarize(ctlStarted),
      },
      {
        metric: 'node image: `docker run` -> registered (/readyz 200)',
        unit: 'ms',
        target: '<= 1000 ms',
        summary: summarize(nodeRun),
      },
      {
        metric: 'node image: container started -> registered (/readyz 200)',
        unit: 'ms',
        summary: summarize(nodeStarted),
      },
    ],
    notes: [
      `Images ${image('controller')} and ${image('node')}; \`docker run -d --network host\` (loopback ports), ` +
        `/readyz polled every 5 ms; each container removed before the next run; the node registers with a controller container.`,
    ],
    data: {
      controllerRunMs: ctlRun,
      controllerStartedMs: ctlStarted,
      nodeRunMs: nodeRun,
      nodeStartedMs: nodeStarted,
    },
  };
}
