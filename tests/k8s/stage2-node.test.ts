/**
 * Stage 2 of the k8s tier: a working single-node Kubernetes (scripts/k8s/cluster.sh up
 * --stage 2: controller-manager, scheduler, containerd + CNI bridge, kubelet, kube-proxy,
 * CoreDNS), the project's images imported from the Docker engine, and the scenario a user
 * runs: `helm install` with two node groups of different pair sets, `kubectl exec` into the
 * CLI, a deleted pod's pair moving to another pod, a group scaled up, day two (`kubectl
 * rollout restart` of the controller, `helm upgrade` changing a group's pairs), `helm test`,
 * and `helm uninstall` leaving nothing behind.
 *
 * Runs only when the suite runs stage 2 (K8S_STAGE=2, the default);
 * otherwise the file fails with a message saying so rather than passing silently.
 */
import { CHART, type Cluster } from './cluster';
import {
  LOADED_IMAGES,
  cleanUp,
  cliJson,
  expectNothingLeft,
  helmInstall,
  livePods,
  runsStage2,
  stage2Cluster,
} from './support';
import { waitFor } from '../support/wait';

jest.setTimeout(900_000);

const NS = 'currency';
const RELEASE = 'cn';
const FULL = `${RELEASE}-currency-nodes`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;

interface ListedNode {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
}

const runStage2 = runsStage2();
let cluster: Cluster;

beforeAll(() => {
  if (runStage2) cluster = stage2Cluster({ images: true });
});

afterAll(() => cleanUp(cluster, [[RELEASE, NS]]));

/** `currency-cli --json ...` in the CLI pod, through `kubectl exec deploy/...`. */
const cli = (args: string[]): unknown => cliJson(cluster, NS, RELEASE, args);

function nodePods(): string[] {
  return livePods(cluster, NS, `${SELECTOR},app.kubernetes.io/component=node`)
    .map((p) => p.metadata.name)
    .sort();
}

/** Waits until `controller nodes` lists exactly the running node pods (by name). */
async function nodesListedArePods(expectedCount: number): Promise<ListedNode[]> {
  return waitFor(
    `controller nodes to list the ${expectedCount} node pods`,
    () => {
      const pods = nodePods();
      if (pods.length !== expectedCount) return false;
      const listed = cli(['controller', 'nodes']) as ListedNode[];
      const names = listed.map((n) => n.name).sort();
      return JSON.stringify(names) === JSON.stringify(pods) ? listed : false;
    },
    { timeoutMs: 180_000, intervalMs: 2_000 },
  );
}

(runStage2 ? describe : describe.skip)('stage 2 (a working node): the user scenario', () => {
  const values = {
    image: LOADED_IMAGES,
    controller: { streamsPerPair: 1 },
    node: { priceIntervalMs: '300-600' },
    nodeGroups: [
      { name: 'majors', replicas: 2, pairs: ['EUR_USD', 'USD_JPY', 'GBP_USD'] },
      { name: 'asia', replicas: 2, pairs: ['USD_HKD', 'USD_SGD', 'USD_JPY'] },
    ],
  };

  /** `helm upgrade` with the install's values, the asia group at 3 replicas, and `setJson`. */
  function upgrade(setJson: string[] = []): void {
    cluster.helmOk(
      [
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        NS,
        '--values',
        '-',
        '--set',
        'nodeGroups[1].replicas=3',
        ...setJson.flatMap((v) => ['--set-json', v]),
        '--wait',
        '--timeout',
        '4m',
      ],
      JSON.stringify(values),
    );
  }

  test('helm install with two node groups: every pod is ready', () => {
    const out = helmInstall(cluster, RELEASE, NS, values);
    expect(out).toMatch(/STATUS: deployed/);
    const deployments = cluster.json(['get', 'deployments', '-n', NS, '-l', SELECTOR]);
    const ready = Object.fromEntries(
      (
        deployments.items as { metadata: { name: string }; status: { readyReplicas?: number } }[]
      ).map((d) => [d.metadata.name, d.status.readyReplicas ?? 0]),
    );
    expect(ready).toEqual({
      [`${FULL}-controller`]: 1,
      [`${FULL}-cli`]: 1,
      [`${FULL}-node-majors`]: 2,
      [`${FULL}-node-asia`]: 2,
    });
  });

  test('kubectl exec ... currency-cli controller nodes lists every node pod with its group pairs', async () => {
    const listed = await nodesListedArePods(4);
    for (const n of listed) {
      const group = n.name.includes('-node-majors-') ? values.nodeGroups[0] : values.nodeGroups[1];
      expect([...n.knownCurrencyPairs].sort()).toEqual([...group.pairs].sort());
    }
    // Every known pair is streamed by exactly one pod (streamsPerPair: 1).
    const streaming = listed.flatMap((n) => n.streamingCurrencyPairs).sort();
    expect(streaming).toEqual(['EUR_USD', 'GBP_USD', 'USD_HKD', 'USD_JPY', 'USD_SGD']);
  });

  test('the pod streaming USD_HKD is deleted: the pair streams again from another pod', async () => {
    const before = cli(['controller', 'nodes']) as ListedNode[];
    const streamer = before.find((n) => n.streamingCurrencyPairs.includes('USD_HKD'));
    expect(streamer).toBeDefined();
    cluster.kubectlOk(['delete', 'pod', '-n', NS, streamer!.name, '--wait=false']);
    // Another pod of the group streams it and its prices reach the controller. (When the
    // Deployment's replacement pod joins, the controller may rebalance the pair onto it: so
    // the streamer and the price are read together, whichever pod that is.)
    const moved = await waitFor(
      'USD_HKD to stream from another pod, with its prices at the controller',
      () => {
        const now = cli(['controller', 'nodes']) as ListedNode[];
        const s = now.find((n) => n.streamingCurrencyPairs.includes('USD_HKD'));
        if (!s || s.name === streamer!.name) return false;
        const prices = cli(['controller', 'prices']) as {
          currencyPair: string;
          nodeUuid: string;
        }[];
        const p = prices.find((x) => x.currencyPair === 'USD_HKD');
        return p?.nodeUuid === s.nodeUuid ? s : false;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    expect(moved.name).toMatch(new RegExp(`^${FULL}-node-asia-`));
    // The Deployment replaced the pod, and the replacement registered.
    await nodesListedArePods(4);
  });

  test('scaling a group up: the new pods join', async () => {
    upgrade();
    const listed = await nodesListedArePods(5);
    expect(listed.filter((n) => n.name.includes('-node-asia-'))).toHaveLength(3);
  });

  // Day two: what an operator does after the install.
  type Price = { currencyPair: string; nodeUuid: string; priceUpdatedAt: string };

  /** Every node pod listed, every pair in `pairs` streamed, each priced by its streamer after `afterMs`. */
  async function everyPairStreamedAndPriced(
    pods: number,
    pairs: string[],
    afterMs: number,
  ): Promise<ListedNode[]> {
    let lastSeen = '';
    return waitFor(
      `every node pod listed, ${pairs.join(', ')} streamed and priced by their streamers`,
      () => {
        const names = nodePods();
        const listed = cli(['controller', 'nodes']) as ListedNode[];
        lastSeen = JSON.stringify(listed.map((n) => [n.name, n.streamingCurrencyPairs]));
        if (names.length !== pods) return false;
        if (JSON.stringify(listed.map((n) => n.name).sort()) !== JSON.stringify(names))
          return false;
        const prices = cli(['controller', 'prices']) as Price[];
        const ok = pairs.every((pair) => {
          const streamer = listed.find((n) => n.streamingCurrencyPairs.includes(pair));
          const p = prices.find((x) => x.currencyPair === pair);
          return (
            streamer && p?.nodeUuid === streamer.nodeUuid && Date.parse(p.priceUpdatedAt) > afterMs
          );
        });
        return ok ? listed : false;
      },
      { timeoutMs: 180_000, intervalMs: 2_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast seen: ${lastSeen}`);
    });
  }

  function controllerPods(): string[] {
    const pods = cluster.json([
      'get',
      'pods',
      '-n',
      NS,
      '-l',
      `${SELECTOR},app.kubernetes.io/component=controller`,
    ]);
    return (pods.items as { metadata: { name: string; deletionTimestamp?: string } }[])
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name);
  }

  test('day two: kubectl rollout restart of the controller: every node pod registers with the new one, every pair streams again with fresh prices', async () => {
    const before = controllerPods();
    expect(before).toHaveLength(1);
    const restartedAt = Date.now();
    cluster.kubectlOk(['rollout', 'restart', '-n', NS, `deployment/${FULL}-controller`]);
    cluster.kubectlOk(
      ['rollout', 'status', '-n', NS, `deployment/${FULL}-controller`, '--timeout=4m'],
      undefined,
      300_000,
    );
    await waitFor(
      'the old controller pod to be gone',
      () => !controllerPods().includes(before[0]!),
      {
        timeoutMs: 120_000,
        intervalMs: 1_000,
      },
    );
    const after = controllerPods();
    expect(after).toHaveLength(1);
    // The new controller knows only what the nodes told it since it started.
    const listed = await everyPairStreamedAndPriced(
      5,
      ['EUR_USD', 'GBP_USD', 'USD_HKD', 'USD_JPY', 'USD_SGD'],
      restartedAt,
    );
    expect(listed.flatMap((n) => n.streamingCurrencyPairs).sort()).toEqual([
      'EUR_USD',
      'GBP_USD',
      'USD_HKD',
      'USD_JPY',
      'USD_SGD',
    ]);
  });

  test("day two: helm upgrade changes a group's pairs: its pods roll, announce the new set, and the assignment follows", async () => {
    const upgradedAt = Date.now();
    const asia = ['USD_HKD', 'USD_JPY', 'AUD_USD']; // USD_SGD dropped, AUD_USD added
    upgrade([`nodeGroups[1].pairs=${JSON.stringify(asia)}`]);
    const listed = await everyPairStreamedAndPriced(
      5,
      ['AUD_USD', 'EUR_USD', 'GBP_USD', 'USD_HKD', 'USD_JPY'],
      upgradedAt,
    );
    const asiaPods = listed.filter((n) => n.name.includes('-node-asia-'));
    expect(asiaPods).toHaveLength(3);
    for (const n of asiaPods) expect([...n.knownCurrencyPairs].sort()).toEqual([...asia].sort());
    // AUD_USD only the asia group can stream; USD_SGD nobody can any more.
    const audStreamer = listed.find((n) => n.streamingCurrencyPairs.includes('AUD_USD'));
    expect(audStreamer?.name).toMatch(new RegExp(`^${FULL}-node-asia-`));
    expect(listed.some((n) => n.streamingCurrencyPairs.includes('USD_SGD'))).toBe(false);
    // Back to the install's pairs for the tests that follow.
    upgrade();
  });

  test('helm test passes', () => {
    // (No --logs: the chart deletes a test pod that succeeded, so there are none to fetch.)
    const out = cluster.helmOk(['test', RELEASE, '-n', NS, '--timeout', '3m']);
    expect(out).toMatch(/TEST SUITE:\s+cn-currency-nodes-test-nodes/);
    expect(out).toMatch(/Phase:\s+Succeeded/);
  });

  test('helm uninstall leaves nothing behind', async () => {
    cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
    await expectNothingLeft(cluster, NS, [SELECTOR]);
  });
});
