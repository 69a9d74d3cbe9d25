/**
 * The real LeaseApi on the official @kubernetes/client-node. That package is ESM only: the
 * compiled CommonJS programs load it through Node 24's require(esm), but jest's CommonJS
 * runtime cannot, so it is only ever loaded inside the factory below (type imports are
 * erased) and no jest test calls the factory: tests/k8s drives real processes instead
 * (elect-main.ts). See docs/leader-election.md.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig, ObservableMiddleware, V1Lease } from '@kubernetes/client-node';
import { ConfigError } from '../../shared/config';
import { type Lease, type LeaseApi, LeaseConflictError, type LeaseRecord } from './lease-api';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeLeaseApiOptions {
  name: string;
  namespace: string;
  /** Every HTTP request is aborted after this (the elector bounds its rounds anyway). */
  requestTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** In a pod (and without an explicit KUBECONFIG): the service account; else KUBECONFIG. */
export async function createKubeLeaseApi(o: KubeLeaseApiOptions): Promise<LeaseApi> {
  const k8s = await import('@kubernetes/client-node');
  const env = o.env ?? process.env;
  const kc = new k8s.KubeConfig();
  const inPod = env.KUBERNETES_SERVICE_HOST !== undefined && existsSync(SA_TOKEN);
  if (inPod && !env.KUBECONFIG) kc.loadFromCluster();
  else loadKubeconfig(kc, env);
  const server = kc.getCurrentCluster()?.server ?? '';
  const api = kc.makeApiClient(k8s.CoordinationV1Api);
  // Aborts a request that hangs (a dead connection), so it does not hold a socket for minutes.
  // The object-parameter API takes the generator's Observable middleware, not promises.
  const timeout: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(o.requestTimeoutMs));
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (res) => new k8s.Observable(Promise.resolve(res)),
  };
  const options = { middleware: [timeout], middlewareMergeStrategy: 'append' as const };
  const micro = (ms: number | undefined) =>
    ms === undefined ? undefined : new k8s.V1MicroTime(ms);
  const body = (record: LeaseRecord, resourceVersion?: string): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: o.name, namespace: o.namespace, resourceVersion },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      acquireTime: micro(record.acquireTimeMs),
      renewTime: micro(record.renewTimeMs),
      leaseTransitions: record.leaseTransitions,
    },
  });
  const ref = { name: o.name, namespace: o.namespace };
  return {
    describe: () => `${server} lease ${o.namespace}/${o.name}`,
    get: async () => {
      try {
        return fromV1(await api.readNamespacedLease(ref, options));
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },
    create: (record) =>
      conflictsAsErrors(() =>
        api.createNamespacedLease({ namespace: o.namespace, body: body(record) }, options),
      ),
    replace: (resourceVersion, record) =>
      conflictsAsErrors(() =>
        api.replaceNamespacedLease({ ...ref, body: body(record, resourceVersion) }, options),
      ),
  };
}

/**
 * KUBECONFIG (or ~/.kube/config) into `kc`. Whatever is wrong with it is a ConfigError
 * naming KUBECONFIG (the controller exits 2): without one the client would fall back to
 * http://localhost:8080, and a server it refuses would keep the controller a standby for ever.
 */
function loadKubeconfig(kc: KubeConfig, env: NodeJS.ProcessEnv): void {
  const set = env.KUBECONFIG !== undefined && env.KUBECONFIG.trim() !== '';
  const source = set ? env.KUBECONFIG! : join(homedir(), '.kube', 'config');
  if (!set && !existsSync(source))
    throw new ConfigError(
      'KUBECONFIG',
      `is not set, this is not a pod (no service account) and there is no ${source}: set ` +
        'KUBECONFIG to the kubeconfig of the cluster that holds the Lease',
    );
  try {
    kc.loadFromDefault();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError('KUBECONFIG', `${source} does not load: ${why}`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server)
    throw new ConfigError(
      'KUBECONFIG',
      `${source} names no cluster with a server (current-context: ${kc.getCurrentContext() || 'none'})`,
    );
  // The client refuses these on every request; say so once, at start.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify && !cluster.proxyUrl)
    throw new ConfigError(
      'KUBECONFIG',
      `${source}: the server ${cluster.server} is plain HTTP, which the Kubernetes client ` +
        'refuses unless the cluster sets insecure-skip-tls-verify: true; use https',
    );
}

async function conflictsAsErrors(call: () => Promise<V1Lease>): Promise<Lease> {
  try {
    return fromV1(await call());
  } catch (err) {
    if (statusOf(err) === 409) throw new LeaseConflictError();
    throw err;
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function timeOf(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = new Date(t).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

function fromV1(lease: V1Lease): Lease {
  const spec = lease.spec ?? {};
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    record: {
      holderIdentity: spec.holderIdentity,
      leaseDurationSeconds: spec.leaseDurationSeconds,
      acquireTimeMs: timeOf(spec.acquireTime),
      renewTimeMs: timeOf(spec.renewTime),
      leaseTransitions: spec.leaseTransitions,
    },
  };
}
