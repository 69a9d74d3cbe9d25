/** A real controller in this process on port 0, with a registry of its own. */
import { randomUUID } from 'node:crypto';
import type { ChannelOptions } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { type RunningController, startController } from '../../services/controller/controller';
import { type ControllerLimits, loadControllerConfig } from '../../services/controller/config';
import type { LeaderElectionConfig } from '../../services/controller/leader';
import type { LeaseApi } from '../../services/controller/leader/lease-api';
import type { SecurityConfig } from '../../services/controller/security';
import { type Logger, silentLogger } from '../../services/shared/logger';
import type { Scheduler } from '../../services/shared/scheduler';

export async function startTestController(
  opts: {
    streamsPerPair?: number;
    random?: () => number;
    limits?: Partial<ControllerLimits>;
    scheduler?: Scheduler;
    maxMessageBytes?: number;
    /** TLS and tokens (off by default, as in a local run). */
    security?: SecurityConfig;
    logger?: Logger;
    /**
     * Leader election on `api` (e.g. tests/support/memory-lease.ts) as `identity`; a
     * standby follows the leader's prices at `follow`, if given.
     */
    leader?: { api: LeaseApi; identity: string; follow?: string } & Partial<LeaderElectionConfig>;
    /** gRPC server options over the program's (ControllerDeps.serverOptions). */
    serverOptions?: ChannelOptions;
  } = {},
): Promise<{
  controller: RunningController;
  address: string;
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
}> {
  const registry = new Registry();
  // The program's own defaults (config.ts), with what this test changes.
  const defaults = loadControllerConfig({
    CONTROLLER_LISTEN_ADDR: '127.0.0.1:0',
    METRICS_ADDR: '127.0.0.1:0',
    CONTROLLER_SHUTDOWN_GRACE_MS: '2000',
  });
  const controller = await startController(
    {
      ...defaults,
      streamsPerPair: opts.streamsPerPair ?? defaults.streamsPerPair,
      limits: { ...defaults.limits, ...opts.limits },
      maxMessageBytes: opts.maxMessageBytes ?? defaults.maxMessageBytes,
      security: opts.security ?? defaults.security,
      ...(opts.leader && leaderConfig(defaults.leader, opts.leader)),
    },
    {
      logger: opts.logger ?? silentLogger(),
      registry,
      defaultMetrics: false,
      random: opts.random,
      newId: randomUUID,
      scheduler: opts.scheduler,
      leaseApi: opts.leader?.api,
      serverOptions: opts.serverOptions,
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

/** Election on, with short timings (a takeover within a fraction of a second). */
function leaderConfig(
  defaults: LeaderElectionConfig,
  o: { api: LeaseApi; identity: string; follow?: string } & Partial<LeaderElectionConfig>,
): { leader: LeaderElectionConfig; follow: { address?: string } } {
  const { api: _api, follow, ...timing } = o;
  return {
    leader: {
      ...defaults,
      leaseDurationMs: 1000,
      renewDeadlineMs: 600,
      retryPeriodMs: 100,
      ...timing,
      mode: 'kubernetes',
    },
    follow: { address: follow },
  };
}
