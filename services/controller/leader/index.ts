/**
 * The controller's seam for leader election: `createLeaderElector(config, deps)` gives an
 * elector that always leads when CONTROLLER_LEADER_ELECTION=off, and one over a Kubernetes
 * Lease when it is `kubernetes`. The Kubernetes client is loaded only in the latter case
 * (kube-lease-api.ts explains why it must stay out of jest's module graph).
 */
import type { Logger } from '../../shared/logger';
import { type Scheduler, systemScheduler } from '../../shared/scheduler';
import type { LeaderElectionConfig } from './config';
import { type ElectorMetrics, type LeaderElector, LeaseElector } from './elector';
import type { LeaseApi } from './lease-api';

export { loadLeaderElectionConfig, type LeaderElectionConfig } from './config';
export type { ElectorMetrics, LeaderElector, ChangeReason, AttemptOutcome } from './elector';

export interface LeaderElectorDeps {
  scheduler?: Scheduler;
  logger?: Logger;
  /** Called on every change of (leading, current leader's identity); also once at start. */
  onChange?: (leading: boolean, leaderIdentity?: string) => void;
  metrics?: ElectorMetrics;
  /** Tests and other platforms may bring their own Lease API. */
  api?: LeaseApi;
}

export async function createLeaderElector(
  config: LeaderElectionConfig,
  deps: LeaderElectorDeps = {},
): Promise<LeaderElector> {
  if (config.mode === 'off') return alwaysLeader(config.identity, deps);
  const elector = new LeaseElector({
    api: deps.api ?? (await kubeApi(config)),
    timing: config,
    scheduler: deps.scheduler ?? systemScheduler,
    logger: deps.logger,
    onChange: deps.onChange,
    metrics: deps.metrics,
  });
  return elector;
}

async function kubeApi(config: LeaderElectionConfig): Promise<LeaseApi> {
  const { createKubeLeaseApi } = await import('./kube-lease-api');
  return createKubeLeaseApi({
    name: config.leaseName,
    namespace: config.leaseNamespace,
    requestTimeoutMs: Math.max(config.retryPeriodMs, Math.floor(config.renewDeadlineMs / 2)),
  });
}

/** CONTROLLER_LEADER_ELECTION=off: one controller, always leading, exactly as before. */
export function alwaysLeader(
  identity: string,
  deps: Pick<LeaderElectorDeps, 'onChange' | 'metrics'> = {},
): LeaderElector {
  let started = false;
  return {
    start: () => {
      if (started) return;
      started = true;
      deps.metrics?.leadershipChanged?.(true, 'acquired');
      deps.onChange?.(true, identity);
    },
    stop: () => Promise.resolve(),
    isLeader: () => true,
    leader: () => identity,
    tryNow: () => {},
    failure: () => undefined,
  };
}
