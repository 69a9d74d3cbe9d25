/**
 * How the chart lets a leader controller stop (docs/leader-election.md):
 *
 * - `preStop`: one controller keeps its pause (`sleep controller.preStopSleepSeconds`) while
 *   the endpoint leaves the Service. With leader election the hook asks the pod's own
 *   `/readyz` (200 only while it leads) and returns at once on the leader, whose SIGTERM is
 *   the handover (it ends the node streams and releases the Lease); a standby still pauses.
 *   The hook is run here, as rendered, against a local /readyz.
 * - `helm uninstall`: a pre-delete hook Job scales the controllers to 0 and waits for them to
 *   stop, so that the last leader still has its Role, RoleBinding and ServiceAccount token
 *   when it releases the Lease (they are deleted after the hook). Its own ServiceAccount,
 *   Role and RoleBinding are hooks too, with only the rights it needs.
 */
import { spawn } from 'node:child_process';
import { type Server, createServer } from 'node:http';
import { type K8sObject, byKind, one, render } from './support';

jest.setTimeout(60_000);

const CONTROLLER = 'cn-currency-nodes-controller';
const STOP = `${CONTROLLER}-stop`;

const controllerContainer = (objs: K8sObject[]) =>
  one(objs, 'Deployment', CONTROLLER).spec.template.spec.containers[0];
const preStop = (objs: K8sObject[]) => controllerContainer(objs).lifecycle?.preStop;

/** A /readyz answering `status`, on a free loopback port. */
async function readyz(status: number): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/readyz' ? status : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, server };
}

/**
 * Runs a rendered exec hook with this Node (the image's `node`), its metrics port replaced by
 * `port`; resolves with its exit code and how long it took.
 */
function runHook(command: string[], port: number): Promise<{ code: number | null; ms: number }> {
  expect(command[0]).toBe('node');
  const args = command.slice(1).map((a) => (a === '9464' ? String(port) : a));
  const started = Date.now();
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, ms: Date.now() - started });
    }),
  );
}

describe('preStop', () => {
  test('one controller (no election): a plain pause of preStopSleepSeconds', () => {
    expect(preStop(render()).exec.command).toEqual(['sleep', '5']);
  });

  test('with leader election the hook asks its own /readyz on the metrics port', () => {
    const command = preStop(render({ set: ['controller.replicas=2'] })).exec.command as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command.slice(3)).toEqual(['http', '9464', '5']);
    expect(command[2]).toContain('/readyz');
    // HTTPS when the metrics port is (security.metrics): the probes are HTTPS there too.
    const tls = render({
      set: [
        'controller.replicas=2',
        'security.metrics.webConfigSecret=web',
        'security.metrics.tls=true',
      ],
    });
    expect((preStop(tls).exec.command as string[]).slice(3)).toEqual(['https', '9464', '5']);
  });

  test('the leader (/readyz 200) returns at once; a standby (503) or an unanswered check pauses', async () => {
    const command = preStop(
      render({ set: ['controller.replicas=2', 'controller.preStopSleepSeconds=2'] }),
    ).exec.command as string[];
    const leader = await readyz(200);
    const standby = await readyz(503);
    try {
      const [l, s] = await Promise.all([
        runHook(command, leader.port),
        runHook(command, standby.port),
      ]);
      const closed = await readyz(200);
      await new Promise((r) => closed.server.close(r));
      const none = await runHook(command, closed.port); // nothing listens there any more
      console.log(
        `preStop (pause 2 s): leader ${l.ms} ms, standby ${s.ms} ms, no answer ${none.ms} ms`,
      );
      expect(l).toMatchObject({ code: 0 });
      expect(l.ms).toBeLessThan(1500);
      expect(s).toMatchObject({ code: 0 });
      expect(s.ms).toBeGreaterThanOrEqual(2000);
      expect(none).toMatchObject({ code: 0 });
      expect(none.ms).toBeGreaterThanOrEqual(2000);
    } finally {
      await new Promise((r) => leader.server.close(r));
      await new Promise((r) => standby.server.close(r));
    }
  });

  test('preStopSleepSeconds 0: no hook, with or without election', () => {
    expect(preStop(render({ set: ['controller.preStopSleepSeconds=0'] }))).toBeUndefined();
    expect(
      preStop(render({ set: ['controller.replicas=2', 'controller.preStopSleepSeconds=0'] })),
    ).toBeUndefined();
  });
});

describe('helm uninstall: the controllers stop before their RBAC goes', () => {
  const objs = render({ set: ['controller.replicas=2'] });
  const hooks = objs.filter((o) => o.metadata?.annotations?.['helm.sh/hook']);

  test('a pre-delete Job, with its ServiceAccount, Role and RoleBinding, all hooks created before it', () => {
    const kinds = hooks
      .filter((h) => h.metadata.name === STOP)
      .map((h) => [h.kind, h.metadata.annotations['helm.sh/hook-weight']]);
    expect(kinds.sort()).toEqual([
      ['Job', '0'],
      ['Role', '-1'],
      ['RoleBinding', '-1'],
      ['ServiceAccount', '-1'],
    ]);
    for (const h of hooks.filter((x) => x.metadata.name === STOP)) {
      expect(h.metadata.annotations['helm.sh/hook']).toBe('pre-delete');
      // Removed once it succeeded, and replaced by a new run: nothing left after an uninstall.
      expect(h.metadata.annotations['helm.sh/hook-delete-policy']).toBe(
        'before-hook-creation,hook-succeeded',
      );
      expect(h.metadata.labels['app.kubernetes.io/instance']).toBe('cn');
    }
  });

  test('the Role allows scaling the controller Deployment and listing pods, nothing else', () => {
    expect(one(objs, 'Role', STOP).rules).toEqual([
      {
        apiGroups: ['apps'],
        resources: ['deployments/scale'],
        resourceNames: [CONTROLLER],
        verbs: ['get', 'patch'],
      },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ]);
    const binding = one(objs, 'RoleBinding', STOP);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: STOP,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: STOP, namespace: 'default' },
    ]);
  });

  test("the Job runs once with the controller image and its own account, and names the controllers' Deployment and pods", () => {
    const job = one(objs, 'Job', STOP);
    expect(job.spec.backoffLimit).toBe(0);
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.serviceAccountName).toBe(STOP);
    expect(pod.automountServiceAccountToken).toBe(true);
    const c = pod.containers[0];
    expect(c.image).toBe(controllerContainer(objs).image);
    expect(c.command.slice(0, 2)).toEqual(['node', '-e']);
    const selector = one(objs, 'Deployment', CONTROLLER).spec.selector.matchLabels as Record<
      string,
      string
    >;
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(',');
    // Deployment, its pods, and how long to wait for them: the grace period and a margin.
    expect(c.command.slice(3)).toEqual([CONTROLLER, labelSelector, '60']);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(60);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });

  test('no hook with one controller (no Lease), nor when turned off', () => {
    const none = (o: K8sObject[]) => byKind(o, 'Job').filter((j) => j.metadata.name === STOP);
    expect(none(render())).toEqual([]);
    expect(
      none(
        render({
          set: ['controller.replicas=2', 'controller.leaderElection.stopOnUninstall=false'],
        }),
      ),
    ).toEqual([]);
  });
});
