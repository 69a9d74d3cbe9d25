/**
 * Stage 2 of the k8s tier, the highly available controller on the working node: `helm
 * install` with `controller.replicas=2` (leader election on a Lease), nodes streaming
 * through the controller Service; the pod the Lease names is deleted while the nodes stream,
 * and every pair streams again with prices through the Service, `kubectl exec ...
 * currency-cli controller nodes` answering from the new leader. At no sampled instant do two
 * controllers say they lead (`/readyz`), nor may the Service route to two. `helm uninstall` leaves nothing of the release behind, and the
 * last leader released the Lease on its way out.
 *
 * The controllers reach the API server from their pods (the `kubernetes` Service, with the
 * pod's service account). The test cluster's API server listens on 127.0.0.1 only and
 * writes no endpoint for that Service, so when the cluster provides none the file bridges
 * it (`bridgeApiServer` in tests/k8s/support.ts: a forwarder on the pod bridge's host
 * address to the API server, and an EndpointSlice for `default/kubernetes` pointing at it).
 *
 * Runs only when the suite runs stage 2 (K8S_STAGE=2, the default); otherwise the file
 * fails with a message saying so rather than passing silently.
 */
import { type Cluster } from './cluster';
import {
  LOADED_IMAGES,
  type Pod,
  bridgeApiServer,
  cleanUp,
  cliJson,
  expectNothingLeft,
  followLogs,
  helmInstall,
  livePods,
  runsStage2,
  stage2Cluster,
} from './support';
import { waitFor } from '../support/wait';

jest.setTimeout(900_000);

const NS = 'currency-ha';
const RELEASE = 'ha';
const FULL = `${RELEASE}-currency-nodes`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const CONTROLLERS = `${SELECTOR},app.kubernetes.io/component=controller`;
/** The chart's default Lease name: the controller's full name. */
const LEASE = `${FULL}-controller`;

interface ListedNode {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
}
type Price = { currencyPair: string; priceUpdatedAt: string; nodeUuid: string };

const runStage2 = runsStage2();
let cluster: Cluster;

const values = {
  image: LOADED_IMAGES,
  controller: { replicas: 2, streamsPerPair: 1 },
  node: { priceIntervalMs: '300-600' },
  nodeGroups: [
    { name: 'majors', replicas: 2, pairs: ['EUR_USD', 'USD_JPY', 'GBP_USD'] },
    { name: 'asia', replicas: 1, pairs: ['USD_HKD', 'USD_SGD', 'USD_JPY'] },
  ],
};
const PAIRS = [...new Set(values.nodeGroups.flatMap((g) => g.pairs))].sort();

beforeAll(async () => {
  if (!runStage2) return;
  cluster = stage2Cluster({ images: true });
  await bridgeApiServer(cluster);
});

afterAll(() => cleanUp(cluster, [[RELEASE, NS]]));

/** `currency-cli --json ...` in the CLI pod (through the controller Service). */
const cli = <T>(args: string[]): T => cliJson<T>(cluster, NS, RELEASE, args);

function controllerPods(): Pod[] {
  return cluster.json(['get', 'pods', '-n', NS, '-l', CONTROLLERS]).items as Pod[];
}

const isReady = (p: Pod) =>
  p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function holder(): string {
  return cluster
    .kubectlOk(['get', 'lease', '-n', NS, LEASE, '-o', 'jsonpath={.spec.holderIdentity}'])
    .trim();
}

function nodePods(): string[] {
  return livePods(cluster, NS, `${SELECTOR},app.kubernetes.io/component=node`)
    .map((p) => p.metadata.name)
    .sort();
}

/**
 * Two samples of "who leads", each taken whenever the test looks: (1) each controller's own
 * `/readyz` (200 only while it leads), fetched from its pod IP; (2) the pods the Service may
 * route to (Ready and not terminating). Two at once in either is a failure of the whole file.
 * (A terminating pod's Ready condition lags its probe by up to a period after SIGTERM, but
 * the EndpointSlice already marks it not ready, so (2) leaves terminating pods out.)
 */
const readiness = { samples: 0, twoReady: [] as string[] };
async function sampleReady(): Promise<string[]> {
  const pods = controllerPods();
  const leading = await Promise.all(
    pods.map(async (p) => {
      if (!p.status.podIP) return false;
      try {
        const r = await fetch(`http://${p.status.podIP}:9464/readyz`, {
          signal: AbortSignal.timeout(1000),
        });
        return r.status === 200;
      } catch {
        return false;
      }
    }),
  );
  const selfReported = pods.filter((_, i) => leading[i]).map((p) => p.metadata.name);
  const routable = pods
    .filter((p) => isReady(p) && !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name);
  readiness.samples++;
  const at = new Date().toISOString();
  if (selfReported.length > 1)
    readiness.twoReady.push(`${at}: /readyz 200 at ${selfReported.join(', ')}`);
  if (routable.length > 1) readiness.twoReady.push(`${at}: Ready pods ${routable.join(', ')}`);
  return routable;
}

/** The Lease holder once it is the one Ready controller pod. */
async function oneReadyLeader(timeoutMs: number, not?: string): Promise<string> {
  return waitFor(
    `one Ready controller pod, named by the Lease${not ? `, not ${not}` : ''}`,
    async () => {
      const ready = await sampleReady();
      const h = holder();
      return ready.length === 1 && ready[0] === h && h !== not ? h : false;
    },
    { timeoutMs, intervalMs: 1_000 },
  );
}

/** The last lines of every pod of the release, for the message when a wait times out. */
function podLogs(): string {
  const pods = cluster
    .kubectlOk(['get', 'pods', '-n', NS, '-o', 'jsonpath={.items[*].metadata.name}'])
    .split(/\s+/)
    .filter(Boolean);
  return pods
    .map((pod) => {
      const r = cluster.kubectl(['logs', '-n', NS, pod, '--all-containers', '--tail=15']);
      return `[${pod}]\n${r.stdout}${r.stderr}`;
    })
    .join('\n');
}

/** Every node pod listed by `controller nodes` (through the Service), every pair streamed
 * and priced after `afterMs`. */
/** What the last check saw, for the message when a wait times out. */
let lastSeen = '';

function streamingEverywhere(afterMs: number): ListedNode[] | false {
  const pods = nodePods();
  const listed = cli<ListedNode[]>(['controller', 'nodes']);
  lastSeen = `pods ${JSON.stringify(pods)}; listed ${JSON.stringify(listed.map((n) => [n.name, n.streamingCurrencyPairs]))}`;
  if (JSON.stringify(listed.map((n) => n.name).sort()) !== JSON.stringify(pods)) return false;
  const streamed = [...new Set(listed.flatMap((n) => n.streamingCurrencyPairs))].sort();
  if (JSON.stringify(streamed) !== JSON.stringify(PAIRS)) return false;
  const prices = cli<Price[]>(['controller', 'prices']);
  lastSeen += `; prices ${JSON.stringify(prices.map((p) => [p.currencyPair, p.priceUpdatedAt]))} (after ${new Date(afterMs).toISOString()})`;
  const fresh = prices.filter(
    (p) => PAIRS.includes(p.currencyPair) && Date.parse(p.priceUpdatedAt) > afterMs,
  );
  return fresh.length === PAIRS.length ? listed : false;
}

(runStage2 ? describe : describe.skip)(
  'stage 2 (a working node): two controllers, the leader pod deleted',
  () => {
    let leader = '';

    test('helm install with controller.replicas=2: two controller pods, one Ready, the one the Lease names', async () => {
      const out = helmInstall(cluster, RELEASE, NS, values);
      expect(out).toMatch(/STATUS: deployed/);
      leader = await oneReadyLeader(180_000);
      const pods = controllerPods();
      expect(pods).toHaveLength(2);
      expect(pods.map((p) => p.metadata.name)).toContain(leader);
      expect(pods.every((p) => p.status.phase === 'Running')).toBe(true);
    });

    test('nodes stream through the Service: controller nodes lists every node pod, every pair priced', async () => {
      const started = Date.now();
      const listed = await waitFor(
        'every node pod streaming, every pair priced',
        () => streamingEverywhere(started),
        { timeoutMs: 180_000, intervalMs: 2_000 },
      );
      expect(listed).toHaveLength(3);
      await sampleReady();
    });

    test('the leader pod is deleted while nodes stream: the Lease moves, every pair streams again through the Service with prices newer than the takeover, controller nodes answers from the new leader; never two Ready', async () => {
      expect(holder()).toBe(leader);
      const deletedAt = Date.now();
      cluster.kubectlOk(['delete', 'pod', '-n', NS, leader, '--wait=false']);
      const next = await oneReadyLeader(120_000, leader);
      const readyAt = Date.now();
      const leadMs = readyAt - deletedAt;
      // Dated after the new leader was seen Ready: during its preStop sleep the old leader
      // still took prices (and the standby followed them), so "after the deletion" alone
      // could be satisfied by the old leader's nodes.
      const listed = await waitFor(
        'every node pod streaming again through the Service, every pair priced after the takeover',
        async () => {
          await sampleReady();
          return streamingEverywhere(readyAt);
        },
        // Usually 4-6 s; the time is printed below. A node's dial after the takeover can
        // hang in a TCP connect (73 s once, until EHOSTUNREACH); the node gives it up after
        // NODE_CONNECT_TIMEOUT_MS (10 s) and dials again, so 60 s is ample, and a node
        // waiting for the kernel instead would fail this.
        { timeoutMs: 60_000, intervalMs: 1_000 },
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\nlast seen: ${lastSeen}\n${podLogs()}`);
      });
      const freshMs = Date.now() - deletedAt;
      expect(listed).toHaveLength(3);
      // The old pod gone, the answer can only come from the leader: a standby lists no node.
      await waitFor(
        `the deleted pod ${leader} to be gone`,
        async () => {
          await sampleReady();
          return !controllerPods().some((p) => p.metadata.name === leader);
        },
        { timeoutMs: 120_000, intervalMs: 1_000 },
      );
      expect(holder()).toBe(next);
      expect(await sampleReady()).toEqual([next]);
      const again = cli<ListedNode[]>(['controller', 'nodes']);
      expect(again.map((n) => n.name).sort()).toEqual(nodePods());
      // The Deployment replaced the deleted pod: a standby again.
      await waitFor(
        'two running controller pods again',
        () => {
          const pods = controllerPods().filter(
            (p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp,
          );
          return pods.length === 2;
        },
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
      expect(await oneReadyLeader(30_000)).toBe(next);
      expect(readiness.samples).toBeGreaterThan(5);
      expect(readiness.twoReady).toEqual([]);
      console.log(
        `leader pod ${leader} deleted: ${next} Ready and named by the Lease after ${leadMs} ms; every pair streaming with fresh prices through the Service after ${freshMs} ms (sampled every ~1 s; the chart's preStop sleep and readiness period included)`,
      );
    });

    test('helm uninstall leaves nothing of the release behind; the Lease it leaves is held by no live controller', async () => {
      // The controllers' last words about the Lease (released, or could not be).
      const logs = followLogs(cluster, NS, CONTROLLERS);
      cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
      await expectNothingLeft(cluster, NS, [SELECTOR]);
      logs.stop();
      // The Lease is the controllers' own object, not the chart's, so it stays (as
      // kube-controller-manager's do): released by the last leader's graceful stop, or, when
      // that could not write it any more, expired. Either way no controller keeps it.
      const lease = cluster.json(['get', 'lease', '-n', NS, LEASE]);
      const held = lease.spec.holderIdentity ?? '';
      const renewed = Date.parse(lease.spec.renewTime ?? '1970-01-01T00:00:00Z');
      const expiresAt = renewed + (lease.spec.leaseDurationSeconds ?? 0) * 1000;
      expect({ held, expired: held === '' || expiresAt < Date.now() }).toEqual({
        held,
        expired: true,
      });
      const words = logs
        .text()
        .split('\n')
        .filter((l) => /lease released|could not release/.test(l))
        .map((l) => l.slice(0, 400));
      console.log(
        `after helm uninstall the Lease names '${held}' (renewed ${lease.spec.renewTime}); the controllers said:\n${words.join('\n') || '(nothing about the release)'}`,
      );
    });
  },
);
