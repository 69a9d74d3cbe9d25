/**
 * CONTROLLER_LEADER_ELECTION and the Lease variables (CONTRACT.md section 2) -> a typed,
 * validated config. Defaults are chosen for a takeover within a few seconds: see
 * docs/leader-election.md.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, type Env, decimalIntSchema, readVar } from '../../shared/config';

export type LeaderElectionMode = 'off' | 'kubernetes';

export interface LeaderElectionConfig {
  mode: LeaderElectionMode;
  leaseName: string;
  leaseNamespace: string;
  /** This controller's holderIdentity in the Lease; must differ between replicas. */
  identity: string;
  /** How long a Lease not renewed stays valid for the others. */
  leaseDurationMs: number;
  /** A leader that has not renewed within this since its last successful renew stops leading. */
  renewDeadlineMs: number;
  /** Time between attempts (renewals by the leader, acquisition attempts by a standby). */
  retryPeriodMs: number;
}

export const DEFAULT_LEASE_NAME = 'currency-controller';
export const DEFAULT_LEASE_DURATION_MS = 3000;
export const DEFAULT_RENEW_DEADLINE_MS = 2000;
export const DEFAULT_RETRY_PERIOD_MS = 500;
/** Where a pod's service account mount says which namespace the pod runs in. */
export const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

// DNS-1123 subdomain: what the API server accepts as a Lease's name.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const leaseNameSchema = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(DNS_SUBDOMAIN, 'must be a DNS subdomain name: lower-case letters, digits, "-" and "."');
// DNS-1123 label: what a namespace name is.
const namespaceSchema = z
  .string()
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits, "-"');
const identitySchema = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^\S+$/, 'must not contain white space');
const modeSchema = z.enum(['off', 'kubernetes'], { message: 'must be "off" or "kubernetes"' });
// Whole seconds go into the Lease's leaseDurationSeconds, so at least one.
const durationSchema = decimalIntSchema(1000, 3_600_000);
const periodSchema = decimalIntSchema(1, 3_600_000);

export interface LeaderConfigDeps {
  /** Reads the pod's namespace file; undefined when not in a pod. */
  podNamespace?: () => string | undefined;
  hostname?: () => string;
}

export function readPodNamespace(file = POD_NAMESPACE_FILE): string | undefined {
  try {
    const ns = readFileSync(file, 'utf8').trim();
    return ns === '' ? undefined : ns;
  } catch {
    return undefined;
  }
}

/**
 * KUBECONFIG, when set, must name readable YAML mappings: checked at start so that a typo
 * exits 2 naming the variable, not 1 with a bare ENOENT once the Kubernetes client loads.
 * What is inside (clusters, server) is checked when the client loads it (kube-lease-api.ts).
 */
function checkKubeconfig(raw: string | undefined): void {
  if (raw === undefined || raw.trim() === '') return;
  for (const file of raw.split(delimiter).filter((f) => f !== '')) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new ConfigError('KUBECONFIG', `${file} cannot be read (${code})`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      throw new ConfigError('KUBECONFIG', `${file} is not valid YAML: ${why}`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      throw new ConfigError(
        'KUBECONFIG',
        `${file} is not a kubeconfig (a YAML mapping with clusters, contexts and users)`,
      );
  }
}

/** Raw environment -> validated config; throws ConfigError naming the variable. */
export function loadLeaderElectionConfig(
  env: Env,
  deps: LeaderConfigDeps = {},
): LeaderElectionConfig {
  const mode = readVar(env, 'CONTROLLER_LEADER_ELECTION', modeSchema, 'off');
  if (mode === 'kubernetes') checkKubeconfig(env.KUBECONFIG);
  const leaseName = readVar(env, 'CONTROLLER_LEASE_NAME', leaseNameSchema, DEFAULT_LEASE_NAME);
  // Only looked up when the variable is unset, so a bad pod file never hides a good variable.
  const nsFallback = () => (deps.podNamespace ?? readPodNamespace)() ?? 'default';
  const nsRaw = env.CONTROLLER_LEASE_NAMESPACE;
  const leaseNamespace = readVar(
    env,
    'CONTROLLER_LEASE_NAMESPACE',
    namespaceSchema,
    nsRaw === undefined || nsRaw.trim() === '' ? nsFallback() : undefined,
  );
  const identity = readVar(
    env,
    'CONTROLLER_LEADER_IDENTITY',
    identitySchema,
    (deps.hostname ?? hostname)(),
  );
  const leaseDurationMs = readVar(
    env,
    'CONTROLLER_LEASE_DURATION_MS',
    durationSchema,
    String(DEFAULT_LEASE_DURATION_MS),
  );
  const renewDeadlineMs = readVar(
    env,
    'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
    periodSchema,
    String(Math.min(DEFAULT_RENEW_DEADLINE_MS, leaseDurationMs - 1)),
  );
  const retryPeriodMs = readVar(
    env,
    'CONTROLLER_LEASE_RETRY_PERIOD_MS',
    periodSchema,
    String(Math.min(DEFAULT_RETRY_PERIOD_MS, renewDeadlineMs - 1)),
  );
  // Fencing is only safe when the leader gives up before the others may take the Lease.
  if (renewDeadlineMs >= leaseDurationMs) {
    throw new ConfigError(
      'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
      `${renewDeadlineMs} must be less than CONTROLLER_LEASE_DURATION_MS (${leaseDurationMs})`,
    );
  }
  if (retryPeriodMs >= renewDeadlineMs) {
    throw new ConfigError(
      'CONTROLLER_LEASE_RETRY_PERIOD_MS',
      `${retryPeriodMs} must be less than CONTROLLER_LEASE_RENEW_DEADLINE_MS (${renewDeadlineMs})`,
    );
  }
  return {
    mode,
    leaseName,
    leaseNamespace,
    identity,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
  };
}
