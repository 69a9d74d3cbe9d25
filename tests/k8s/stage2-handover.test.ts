/**
 * Stage 2 of the k8s tier, the two signals of a leader controller's graceful stop on a real
 * cluster (controller.replicas=2, leader election on a Lease):
 *
 * - `kubectl delete pod` of the leader: a standby leads (its own `/readyz` turns 200) within
 *   about two seconds. The leader's `preStop` must not hold its SIGTERM back, since that
 *   SIGTERM is the handover (it ends the node streams and releases the Lease); a 5 s sleep
 *   there made the takeover wait 5 s and more.
 * - `helm uninstall`: the last leader releases the Lease (holderIdentity emptied, and it says
 *   `lease released`) instead of leaving it to expire, which is what happened while its Role,
 *   RoleBinding and ServiceAccount were deleted before its pod stopped.
 *
 * Measurements are printed. The run's stage-2 cluster, the images and the API server bridge as
 * in stage2-leader.test.ts (the test cluster's API server listens on loopback only and gives
 * the `kubernetes` Service no endpoint, so pods reach it through a forwarder on the pod
 * bridge). Runs only when the suite runs stage 2 (K8S_STAGE=2, the default); otherwise the
 * file fails with a message saying so.
 */
import { type Cluster } from './cluster';
import {
  LOADED_IMAGES,
  type Pod,
  bridgeApiServer,
  cleanUp,
  expectNothingLeft,
  followLogs,
  helmInstall,
  livePods as running,
  runsStage2,
  stage2Cluster,
} from './support';
import { sleep, waitFor } from '../support/wait';

jest.setTimeout(900_000);

const NS = 'currency-handover';
const RELEASE = 'ho';
const FULL = `${RELEASE}-currency-nodes`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const CONTROLLERS = `${SELECTOR},app.kubernetes.io/component=controller`;
/** The chart's default Lease name: the controller's full name. */
const LEASE = `${FULL}-controller`;
/** The bound for "a standby leads" after the leader pod is deleted (generous: ~1 s measured). */
const TAKEOVER_BOUND_MS = 2000;

const runStage2 = runsStage2();
let cluster: Cluster;

const values = {
  image: LOADED_IMAGES,
  controller: { replicas: 2 },
  // One node streaming, so that the old leader has a stream to end.
  nodeGroups: [{ name: 'one', replicas: 1, pairs: ['EUR_USD'] }],
};

beforeAll(async () => {
  if (!runStage2) return;
  cluster = stage2Cluster({ images: true });
  await bridgeApiServer(cluster);
});

afterAll(() => cleanUp(cluster, [[RELEASE, NS]]));

/** Running controller pods that are not terminating. */
function livePods(): Pod[] {
  return running(cluster, NS, CONTROLLERS).filter((p) => p.status.podIP);
}

function lease(): { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string } {
  return cluster.json(['get', 'lease', '-n', NS, LEASE]).spec;
}

/** The HTTP status of a controller pod's health endpoint, or 0 when it does not answer. */
async function health(ip: string, path: '/readyz' | '/healthz', timeoutMs = 1000) {
  try {
    const r = await fetch(`http://${ip}:9464${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    return r.status;
  } catch {
    return 0;
  }
}

/** Two live controller pods, the leader (named by the Lease, /readyz 200) and an answering standby. */
async function leaderAndStandby(timeoutMs: number): Promise<{ leader: Pod; standby: Pod }> {
  return waitFor(
    'a leader named by the Lease and a live standby',
    async () => {
      const pods = livePods();
      if (pods.length !== 2) return false;
      const holder = lease().holderIdentity ?? '';
      const leader = pods.find((p) => p.metadata.name === holder);
      const standby = pods.find((p) => p.metadata.name !== holder);
      if (!leader || !standby) return false;
      const [l, s, sAlive] = await Promise.all([
        health(leader.status.podIP!, '/readyz'),
        health(standby.status.podIP!, '/readyz'),
        health(standby.status.podIP!, '/healthz'),
      ]);
      return l === 200 && s === 503 && sAlive === 200 ? { leader, standby } : false;
    },
    { timeoutMs, intervalMs: 1000 },
  );
}

(runStage2 ? describe : describe.skip)(
  'stage 2 (a working node): a leader controller stops gracefully',
  () => {
    test('helm install with controller.replicas=2: a leader and a standby', async () => {
      const out = helmInstall(cluster, RELEASE, NS, values);
      expect(out).toMatch(/STATUS: deployed/);
      await leaderAndStandby(180_000);
    });

    test(`the leader pod is deleted: the standby leads within ${TAKEOVER_BOUND_MS} ms (no preStop pause before the handover)`, async () => {
      const { leader, standby } = await leaderAndStandby(60_000);
      // Let the standby's follower settle on the leader (it takes over at once when the
      // leader's stream ends with `shutdown`, else at its next retry period, 0.5 s).
      await sleep(2000);
      const deletedAt = Date.now();
      cluster.kubectlOk(['delete', 'pod', '-n', NS, leader.metadata.name, '--wait=false']);
      await waitFor(
        `${standby.metadata.name} to lead (/readyz 200)`,
        async () => (await health(standby.status.podIP!, '/readyz', 500)) === 200,
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      const leadMs = Date.now() - deletedAt;
      expect(lease().holderIdentity).toBe(standby.metadata.name);
      console.log(
        `leader pod ${leader.metadata.name} deleted: ${standby.metadata.name} leads (/readyz 200, named by the Lease) after ${leadMs} ms (polled every 50 ms; bound ${TAKEOVER_BOUND_MS} ms)`,
      );
      expect(leadMs).toBeLessThan(TAKEOVER_BOUND_MS);
    });

    test('helm uninstall: the last leader releases the Lease (holder emptied, "lease released"), nothing of the release is left', async () => {
      // The Deployment replaced the deleted pod: a leader and a standby again.
      const { leader } = await leaderAndStandby(180_000);
      const logs = followLogs(cluster, NS, CONTROLLERS);
      await sleep(1000); // kubectl logs -f attached
      const started = Date.now();
      cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m']);
      const uninstallMs = Date.now() - started;
      await expectNothingLeft(cluster, NS, [SELECTOR]);
      logs.stop();
      const spec = lease();
      const words = logs
        .text()
        .split('\n')
        .filter((l) => /lease released|could not release|not leading|leading/.test(l))
        .map((l) => l.slice(0, 300));
      console.log(
        `helm uninstall took ${uninstallMs} ms; the Lease names '${spec.holderIdentity ?? ''}' (leaseDurationSeconds ${spec.leaseDurationSeconds}, renewed ${spec.renewTime}); leader was ${leader.metadata.name}; the controllers said:\n${words.join('\n') || '(nothing)'}`,
      );
      // Released, not expired: the release empties holderIdentity (services/controller/leader/
      // elector.ts); a Lease left to expire still names the last leader.
      expect(spec.holderIdentity ?? '').toBe('');
      expect(logs.text()).not.toMatch(/could not release the lease/);
      expect(logs.text()).toMatch(/lease released/);
    });
  },
);
