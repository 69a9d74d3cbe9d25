/**
 * What the stage-2 files (a working node) share: the run's stage-2 cluster with the project's
 * images loaded once, the API server bridge for pods, `helm install` of the chart and the
 * check that `helm uninstall` left nothing, the CLI in its pod, and the clean-up that leaves
 * the shared cluster to the next file as this one found it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProjectImages } from '../../tests-e2e/support/docker';
import { waitFor } from '../support/wait';
import { CHART, Cluster, KUBECTL, stage } from './cluster';

export const IMAGE_TAG = process.env.IMAGE_TAG ?? 'e2e';
export const IMAGE_PREFIX = process.env.IMAGE_PREFIX ?? 'currency-nodes';
const IMAGES = ['controller', 'node', 'cli'].map((r) => `${IMAGE_PREFIX}/${r}:${IMAGE_TAG}`);
/** The chart's `image` values for the side-loaded images. */
export const LOADED_IMAGES = { tag: IMAGE_TAG, pullPolicy: 'Never' };
/** The pod bridge's address on the host (scripts/k8s/node.sh). */
const BRIDGE_IP = '10.244.0.1';

export interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { restartCount: number }[];
  };
}

/**
 * True when the suite runs stage 2 (K8S_STAGE=2, the default); otherwise registers a test
 * that fails saying so, rather than letting the file pass silently.
 */
export function runsStage2(): boolean {
  if (stage() === 2) return true;
  test('stage 2 (a working node) was not run', () => {
    throw new Error(
      'K8S_STAGE is 1: set K8S_STAGE=2 (the suite default) to run the stage 2 scenario',
    );
  });
  return false;
}

/**
 * The run's stage-2 cluster; with `images`, the project's images as this tree builds them
 * (not left to the e2e tier, whose files may run before or after) loaded into it, once per
 * cluster.
 */
export function stage2Cluster({ images }: { images: boolean }): Cluster {
  const cluster = Cluster.shared(2);
  const marker = join(cluster.state, 'tests-images-loaded');
  if (images && !existsSync(marker)) {
    buildProjectImages();
    const r = cluster.script(['load-image', ...IMAGES], 300_000);
    if (r.status !== 0) throw new Error(`load-image failed:\n${r.stderr}`);
    writeFileSync(marker, IMAGES.join('\n'));
  }
  return cluster;
}

/**
 * Pods reach the API server through `default/kubernetes`, which the test cluster's API
 * server (loopback only) gives no endpoint: when nothing does, a forwarder on the pod
 * bridge's host address and an EndpointSlice pointing at it. The forwarder is a process
 * of the cluster's own (its pid with the components', so `cluster.sh down` stops it and
 * `down()` checks it is gone), so it serves every file that shares the cluster.
 */
export async function bridgeApiServer(cluster: Cluster): Promise<void> {
  const slices = cluster.json([
    'get',
    'endpointslices',
    '-n',
    'default',
    '-l',
    'kubernetes.io/service-name=kubernetes',
  ]);
  if ((slices.items as unknown[]).length > 0) return;
  const server = /server:\s*https:\/\/127\.0\.0\.1:(\d+)/.exec(
    readFileSync(cluster.kubeconfig, 'utf8'),
  );
  if (!server) throw new Error(`no loopback API server URL in ${cluster.kubeconfig}`);
  // A separate process: the tests' kubectl and helm calls block this one's event loop.
  const script = `
    const net = require('node:net');
    const s = net.createServer((c) => {
      const u = net.connect(${server[1]}, '127.0.0.1');
      c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
      c.pipe(u).pipe(c);
    });
    s.listen(0, '${BRIDGE_IP}', () => console.log(process.pid, s.address().port));`;
  // `setsid -f`: in a session of its own and not this process's child, as the components
  // are (a child of the jest process would linger as a zombie after `down` until reaped).
  const launcher = spawn('setsid', ['-f', process.execPath, '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [pid, port] = await new Promise<number[]>((resolve, reject) => {
    launcher.stdout.setEncoding('utf8').once('data', (d: string) => {
      resolve(d.trim().split(' ').map(Number));
    });
    launcher.stdout.once('end', () => reject(new Error('API server bridge exited')));
  });
  launcher.stdout.destroy();
  // As scripts/k8s/lib.sh's `spawn` records a component (stop_all stops them in reverse order).
  writeFileSync(join(cluster.state, 'pids', 'api-bridge.pid'), `${pid}\n`);
  appendFileSync(join(cluster.state, 'pids', 'order'), 'api-bridge\n');
  const svc = cluster.json(['get', 'service', '-n', 'default', 'kubernetes']);
  const portName = (svc.spec.ports as { name?: string }[])[0]?.name ?? 'https';
  cluster.kubectlOk(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kubernetes-test-bridge',
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'kubernetes',
          'endpointslice.kubernetes.io/managed-by': 'currency-nodes-tests',
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [BRIDGE_IP], conditions: { ready: true } }],
      ports: [{ name: portName, port, protocol: 'TCP' }],
    }),
  );
}

/** `helm install` of the chart (or `chart`) with `values`, waiting for every pod; helm's output. */
export function helmInstall(
  cluster: Cluster,
  release: string,
  ns: string,
  values: unknown,
  { chart = [CHART], createNamespace = true, timeout = '6m' } = {},
): string {
  const r = cluster.helm(
    [
      'install',
      release,
      ...chart,
      '-n',
      ns,
      ...(createNamespace ? ['--create-namespace'] : []),
      '--values',
      '-',
      '--wait',
      '--timeout',
      timeout,
    ],
    JSON.stringify(values),
    // Beyond helm's own --timeout, so that helm reports what it waited for.
    (parseInt(timeout, 10) + 1) * 60_000,
  );
  if (r.status === 0) return r.stdout;
  // What the pods were doing: the cause of a wait that ran out is there, not in helm's line.
  const show = (args: string[]) => {
    const k = cluster.kubectl(args, undefined, 30_000);
    return `$ kubectl ${args.join(' ')}\n${k.stdout}${k.stderr}`;
  };
  throw new Error(
    [
      `helm install ${release} -n ${ns} failed (${r.status}):\n${r.stderr}${r.stdout}`,
      show(['get', 'pods', '-A', '-o', 'wide']),
      show(['describe', 'pods', '-n', ns]),
      show(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp']),
      show(['get', 'endpointslices', '-n', 'default']),
    ].join('\n'),
  );
}

/** `currency-cli --json ...` in the release's CLI pod (through the controller Service). */
export function cliJson<T>(cluster: Cluster, ns: string, release: string, args: string[]): T {
  const out = cluster.kubectlOk(
    [
      'exec',
      '-n',
      ns,
      `deploy/${release}-currency-nodes-cli`,
      '--',
      'currency-cli',
      '--json',
      ...args,
    ],
    undefined,
    60_000,
  );
  return JSON.parse(out) as T;
}

/** Pods matching `selector` that run and are not terminating. */
export function livePods(cluster: Cluster, ns: string, selector: string): Pod[] {
  return (cluster.json(['get', 'pods', '-n', ns, '-l', selector]).items as Pod[]).filter(
    (p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp,
  );
}

/** `kubectl logs -f` of the pods matching `selector`, from now on, collected until `stop()`. */
export function followLogs(cluster: Cluster, ns: string, selector: string) {
  const child = spawn(
    KUBECTL,
    [
      '--kubeconfig',
      cluster.kubeconfig,
      'logs',
      '-f',
      '--tail=0',
      '-n',
      ns,
      '-l',
      selector,
      '--prefix',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  return { text: () => text, stop: () => void child.kill('SIGKILL') };
}

const RELEASE_KINDS =
  'all,jobs,configmaps,secrets,serviceaccounts,poddisruptionbudgets,networkpolicies,endpointslices,roles,rolebindings';

/**
 * After `helm uninstall`: nothing labelled with any of `selectors` is left in the namespace
 * (hooks included), no pod at all, and no helm release record.
 */
export async function expectNothingLeft(
  cluster: Cluster,
  ns: string,
  selectors: string[],
): Promise<void> {
  await waitFor(
    'every object of the release to be gone',
    () =>
      selectors.every(
        (l) => cluster.kubectlOk(['get', RELEASE_KINDS, '-n', ns, '-l', l, '-o', 'name']) === '',
      ),
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
  await waitFor(
    'every pod in the namespace to be gone',
    () => cluster.kubectlOk(['get', 'pods', '-n', ns, '-o', 'name']) === '',
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
  expect(cluster.kubectlOk(['get', 'secrets', '-n', ns, '-l', 'owner=helm', '-o', 'name'])).toBe(
    '',
  );
}

/**
 * For afterAll: the file's releases uninstalled (if a test failed before doing it) and its
 * namespaces deleted and gone, so the next file finds the shared cluster as this one did.
 */
export function cleanUp(cluster: Cluster | undefined, releases: [string, string][]): void {
  if (!cluster) return;
  for (const [release, ns] of releases) {
    if (cluster.helm(['status', release, '-n', ns]).status === 0) {
      cluster.helmOk(['uninstall', release, '-n', ns, '--wait', '--timeout', '3m']);
    }
  }
  cluster.removeNamespaces([...new Set(releases.map(([, ns]) => ns))]);
}
