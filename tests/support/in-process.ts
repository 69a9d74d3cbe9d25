/** A real controller in this process on port 0, with a registry of its own. */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { type RunningController, startController } from '../../services/controller/controller';
import { DEFAULT_LIMITS, type HubLimits } from '../../services/controller/hub';
import type { SecurityConfig } from '../../services/controller/security';
import { type Logger, silentLogger } from '../../services/shared/logger';

export async function startTestController(
  opts: {
    streamsPerPair?: number;
    random?: () => number;
    limits?: Partial<HubLimits>;
    maxMessageBytes?: number;
    /** TLS and tokens (off by default, as in a local run). */
    security?: SecurityConfig;
    logger?: Logger;
  } = {},
): Promise<{
  controller: RunningController;
  address: string;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}> {
  const registry = new Registry();
  const controller = await startController(
    {
      listenAddr: { host: '127.0.0.1', port: 0 },
      metricsAddr: { host: '127.0.0.1', port: 0 },
      streamsPerPair: opts.streamsPerPair ?? 1,
      logLevel: 'silent',
      shutdownGraceMs: 2000,
      limits: { ...DEFAULT_LIMITS, ...opts.limits },
      maxMessageBytes: opts.maxMessageBytes,
      security: opts.security,
    },
    {
      logger: opts.logger ?? silentLogger(),
      registry,
      defaultMetrics: false,
      random: opts.random,
      newId: randomUUID,
    },
  );
  return {
    controller,
    address: `127.0.0.1:${controller.grpcPort}`,
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      const v = m?.values.find(
        (x) =>
          Object.entries(labels).every(([k, val]) => x.labels[k] === val) &&
          (Object.keys(labels).length > 0 || Object.keys(x.labels).length === 0),
      );
      return v?.value;
    },
  };
}
