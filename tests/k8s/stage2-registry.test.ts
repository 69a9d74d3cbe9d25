/**
 * Stage 2 of the k8s tier, the install path from a registry as a user takes it: the images
 * pushed with `npm run images -- --push` and the chart with `npm run chart -- --push` to an
 * OCI registry (the e2e tier's throw-away one, tests/support/registry.ts, on 127.0.0.1),
 * then `helm install oci://...` on the working node with `image.registry` pointing at it.
 * Nothing is side-loaded in this file: the kubelet's containerd pulls every image from the
 * registry (plain HTTP, as containerd does for a loopback registry), and the test checks
 * each container runs the digest that was pushed.
 *
 * Runs only when the suite runs stage 2 (K8S_STAGE=2, the default); otherwise the file
 * fails with a message saying so rather than passing silently.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRegistry } from '../support/registry';
import { waitFor } from '../support/wait';
import { Cluster, ROOT } from './cluster';
import { cleanUp, helmInstall, runsStage2, stage2Cluster } from './support';

jest.setTimeout(900_000);

const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const NS = 'from-registry';
const RELEASE = 'oci';
const FULL = `${RELEASE}-currency-nodes`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const ROLES = ['controller', 'node', 'cli'] as const;

const runStage2 = runsStage2();
let cluster: Cluster;
let registry: LocalRegistry | undefined;
let tmp = '';
/** What `npm run images -- --push` printed: reference and registry digest per image. */
let pushed: { ref: string; digest: string }[] = [];
let chartRef = '';

/** npm with this file's own helm state (no login or cache of the user's touched). */
function npmRun(script: string, args: string[], extra: NodeJS.ProcessEnv, timeoutMs: number) {
  const r = spawnSync('npm', ['run', '--silent', script, '--', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, ...extra },
  });
  if (r.status !== 0)
    throw new Error(`npm run ${script} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** Image references in the working node's containerd (the kubelet's namespace). */
function containerdImages(): string[] {
  const sock = join(cluster.state, 'containerd', 'containerd.sock');
  const r = spawnSync('ctr', ['--address', sock, '--namespace', 'k8s.io', 'images', 'ls', '-q'], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`ctr images ls failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

beforeAll(() => {
  if (!runStage2) return;
  tmp = mkdtempSync(join(tmpdir(), 'cn-k8s-registry-'));
  for (const [k, d] of [
    ['HELM_CONFIG_HOME', 'config'],
    ['HELM_CACHE_HOME', 'cache'],
    ['HELM_DATA_HOME', 'data'],
  ] as const)
    process.env[k] = join(tmp, 'helm', d);
  cluster = stage2Cluster({ images: false });
}, 900_000);

afterAll(async () => {
  try {
    cleanUp(cluster, [[RELEASE, NS]]);
  } finally {
    await registry?.stop();
    if (registry) {
      const left = spawnSync('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'], {
        encoding: 'utf8',
      }).stdout.split('\n');
      const ours = left.filter((r) => r.startsWith(`${registry!.host}/`));
      if (ours.length > 0) spawnSync('docker', ['rmi', ...ours]);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    // The images pulled from the registry have the same image IDs as the side-loaded ones
    // (same config, another manifest), and containerd's CRI then no longer finds the
    // side-loaded names: a later file's pods would fail with ErrImageNeverPull, and loading
    // the images again does not mend it. So this file's cluster is not handed on.
    if (runStage2) Cluster.retireShared(2);
  }
}, 300_000);

(runStage2 ? describe : describe.skip)(
  'stage 2: helm install oci://, images pulled from the registry',
  () => {
    test('npm run images -- --push and npm run chart -- --push fill a registry', async () => {
      registry = await LocalRegistry.start(LocalRegistry.binary(ROOT), tmp);
      const host = registry.host;
      // IMAGES_OFFLINE: this machine reaches no container registry for node:24 (docs/offline-images.md).
      pushed = npmRun(
        'images',
        ['--push'],
        { IMAGE_PREFIX: `${host}/cn`, IMAGES_OFFLINE: '1' },
        900_000,
      )
        .trim()
        .split('\n')
        .map((line) => {
          const [ref, digest] = line.split(' ');
          return { ref: ref!, digest: digest! };
        });
      expect(pushed.map((p) => p.ref)).toEqual(
        ROLES.map((r) => `${host}/cn/currency-nodes/${r}:${VERSION}`),
      );
      const out = npmRun(
        'chart',
        ['--push', `oci://${host}/charts`, '--plain-http', '--destination', join(tmp, 'chart')],
        {},
        120_000,
      );
      expect(out.trim()).toBe(`oci://${host}/charts/currency-nodes:${VERSION}`);
      chartRef = `oci://${host}/charts/currency-nodes`;
      // The images are not in the cluster's containerd: the install below must pull them.
      expect(containerdImages().filter((i) => i.startsWith(`${host}/`))).toEqual([]);
    });

    test('helm install oci://... --set image.registry=<registry>: every pod runs the pushed digest, nodes stream', async () => {
      if (!chartRef) throw new Error('nothing was pushed (the test before failed)');
      const host = registry!.host;
      const values = {
        image: { registry: `${host}/cn`, pullPolicy: 'Always' },
        nodeGroups: [{ name: 'majors', replicas: 2, pairs: ['EUR_USD', 'USD_JPY'] }],
      };
      const out = helmInstall(cluster, RELEASE, NS, values, {
        chart: [chartRef, '--version', VERSION, '--plain-http'],
      });
      expect(out).toMatch(/STATUS: deployed/);
      const pods = cluster.json(['get', 'pods', '-n', NS, '-l', SELECTOR]).items as {
        metadata: { name: string };
        spec: { containers: { image: string }[] };
        status: { containerStatuses?: { image: string; imageID: string }[] };
      }[];
      expect(pods.length).toBe(4); // controller, cli, two nodes
      for (const p of pods) {
        for (const c of p.status.containerStatuses ?? []) {
          const role = ROLES.find((r) => c.image.includes(`/currency-nodes/${r}:`));
          expect({ pod: p.metadata.name, role }).toEqual({
            pod: p.metadata.name,
            role: expect.any(String),
          });
          const want = pushed.find((x) => x.ref.includes(`/currency-nodes/${role}:`))!;
          expect(c.image).toBe(want.ref);
          // The kubelet reports the repo digest it pulled: the registry's, as pushed.
          expect(c.imageID).toBe(`${host}/cn/currency-nodes/${role}@${want.digest}`);
        }
      }
      // And the system works from there: both node pods stream through the controller.
      const listed = await waitFor(
        'controller nodes to list both node pods streaming',
        () => {
          const r = cluster.kubectl(
            [
              'exec',
              '-n',
              NS,
              `deploy/${FULL}-cli`,
              '--',
              'currency-cli',
              '--json',
              'controller',
              'nodes',
            ],
            undefined,
            60_000,
          );
          if (r.status !== 0) return false;
          const nodes = JSON.parse(r.stdout) as { streamingCurrencyPairs: string[] }[];
          const streamed = nodes.flatMap((n) => n.streamingCurrencyPairs).sort();
          return nodes.length === 2 && JSON.stringify(streamed) === '["EUR_USD","USD_JPY"]'
            ? nodes
            : false;
        },
        { timeoutMs: 180_000, intervalMs: 2_000 },
      );
      expect(listed).toHaveLength(2);
      // Pulled, not side-loaded: containerd holds the three references from the registry.
      expect(
        containerdImages()
          .filter((i) => i.startsWith(`${host}/`))
          .sort(),
      ).toEqual(expect.arrayContaining(pushed.map((p) => p.ref).sort()));
      cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
    });
  },
);
