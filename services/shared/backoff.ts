import type { Random } from './scheduler';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

/**
 * Capped exponential backoff with "equal jitter": half the step is fixed, half random,
 * so retries from many nodes spread out but none retries at once in a tight loop.
 * `attempt` counts from 0. Written here rather than taken from a library because the
 * reconnect loop needs cancellable sleeps on an injected clock (tests advance time).
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: Random): number {
  const step = backoffStepMs(attempt, policy);
  return Math.round(step / 2 + random() * (step / 2));
}

/**
 * The capped exponential step alone, without jitter: for a single retrier (a standby
 * following its leader) that has no crowd to spread out from.
 */
export function backoffStepMs(attempt: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
}
