/**
 * The chart's controller replicas and leader election (docs/leader-election.md): one
 * replica renders exactly what it did before; two or more turn election on with the Lease
 * variables, the Role and RoleBinding for the Lease, a PodDisruptionBudget, spreading, and
 * HTTP probes so that only the leader is Ready.
 */
import { join } from 'node:path';
import { CHART, type K8sObject, byKind, env, one, render, renderNotes, renderRaw } from './support';

jest.setTimeout(60_000);

const CONTROLLER = 'cn-currency-nodes-controller';
const ROLE = `${CONTROLLER}-leader-election`;
const ELECTION_ENV = [
  'CONTROLLER_LEADER_ELECTION',
  'CONTROLLER_LEASE_NAME',
  'CONTROLLER_LEASE_NAMESPACE',
  'CONTROLLER_LEADER_IDENTITY',
  'CONTROLLER_LEASE_DURATION_MS',
  'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
  'CONTROLLER_LEASE_RETRY_PERIOD_MS',
];

const controller = (objs: K8sObject[]) => one(objs, 'Deployment', CONTROLLER);
const pod = (objs: K8sObject[]) => controller(objs).spec.template.spec;
const container = (objs: K8sObject[]) => pod(objs).containers[0];

describe('controller.replicas 1 (the default): one controller, no election', () => {
  const objs = render();

  test('one replica, Recreate, no token, native gRPC probes, no election variables', () => {
    const d = controller(objs);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(pod(objs).automountServiceAccountToken).toBe(false);
    const c = container(objs);
    for (const name of ELECTION_ENV) expect(env(c, name)).toBeUndefined();
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(c[probe].grpc).toEqual({ port: 5160 });
    }
    expect(pod(objs).affinity).toBeUndefined();
    expect(pod(objs).topologySpreadConstraints).toBeUndefined();
  });

  test('no Role, RoleBinding or controller PodDisruptionBudget', () => {
    expect(byKind(objs, 'Role')).toEqual([]);
    expect(byKind(objs, 'RoleBinding')).toEqual([]);
    const pdbs = byKind(objs, 'PodDisruptionBudget').map((p) => p.metadata.name as string);
    expect(pdbs).not.toContain(CONTROLLER);
  });
});

describe('controller.replicas 2: leader election on a Lease', () => {
  const objs = render({ set: ['controller.replicas=2'] });

  test('a standby follows the leader through the controller Service (warm standby)', () => {
    expect(env(container(objs), 'CONTROLLER_FOLLOW_ADDR')).toBe(`${CONTROLLER}:5160`);
    expect(env(container(objs), 'CLI_TLS_CA_FILE')).toBeUndefined();
    expect(env(container(render({ set: [] })), 'CONTROLLER_FOLLOW_ADDR')).toBeUndefined();
  });

  test('with TLS, mutual TLS and tokens the standby follows as the CLI does: its CA, client certificate and token', () => {
    const secured = render({
      valuesFiles: [join(CHART, 'ci', 'security-values.yaml')],
      set: ['controller.replicas=2'],
    });
    const c = container(secured);
    expect(env(c, 'CONTROLLER_LEADER_ELECTION')).toBe('kubernetes');
    expect(env(c, 'CONTROLLER_FOLLOW_ADDR')).toBe(`${CONTROLLER}:5160`);
    expect(env(c, 'CLI_TLS_CA_FILE')).toBe('/etc/currency-nodes/tls/ca.crt');
    expect(env(c, 'CLI_TLS_SERVER_NAME')).toBe('cn-currency-nodes-controller');
    expect(env(c, 'CLI_TLS_CERT_FILE')).toBe('/etc/currency-nodes/client-tls/tls.crt');
    expect(env(c, 'CLI_TLS_KEY_FILE')).toBe('/etc/currency-nodes/client-tls/tls.key');
    expect(env(c, 'CLI_TOKEN_FILE')).toBe('/etc/currency-nodes/auth/cli-token');
    const volumes = pod(secured).volumes as {
      name: string;
      secret?: { secretName: string; items: { key: string }[] };
    }[];
    const mounts = c.volumeMounts as { name: string; mountPath: string }[];
    expect(volumes.find((v) => v.name === 'follow-client-tls')?.secret?.secretName).toBe(
      'cn-cli-client-tls',
    );
    expect(mounts).toContainEqual({
      name: 'follow-client-tls',
      mountPath: '/etc/currency-nodes/client-tls',
      readOnly: true,
    });
    const auth = volumes.find((v) => v.name === 'auth')!.secret!.items.map((i) => i.key);
    expect(auth).toContain('cli-token');
    // TLS without mutual TLS: the CA still reaches the controller, for the standby's check.
    const tlsOnly = render({
      set: [
        'controller.replicas=2',
        'security.tls.enabled=true',
        'security.tls.existingSecret=cn-controller-tls',
      ],
    });
    const tlsItems = (
      pod(tlsOnly).volumes as { name: string; secret?: { items: { key: string }[] } }[]
    )
      .find((v) => v.name === 'tls')!
      .secret!.items.map((i) => i.key);
    expect(tlsItems).toEqual(['tls.crt', 'tls.key', 'ca.crt']);
    expect(env(container(tlsOnly), 'CLI_TLS_CA_FILE')).toBe('/etc/currency-nodes/tls/ca.crt');
    expect(env(container(tlsOnly), 'CLI_TLS_CERT_FILE')).toBeUndefined();
    expect(pod(tlsOnly).volumes.map((v: { name: string }) => v.name)).not.toContain(
      'follow-client-tls',
    );
  });

  test('two replicas with the election variables; identity is the pod name, namespace the pod namespace', () => {
    expect(controller(objs).spec.replicas).toBe(2);
    const c = container(objs);
    expect(env(c, 'CONTROLLER_LEADER_ELECTION')).toBe('kubernetes');
    expect(env(c, 'CONTROLLER_LEASE_NAME')).toBe(CONTROLLER);
    expect(env(c, 'CONTROLLER_LEADER_IDENTITY')).toEqual({
      fieldRef: { fieldPath: 'metadata.name' },
    });
    expect(env(c, 'CONTROLLER_LEASE_NAMESPACE')).toEqual({
      fieldRef: { fieldPath: 'metadata.namespace' },
    });
    expect(env(c, 'CONTROLLER_LEASE_DURATION_MS')).toBe('3000');
    expect(env(c, 'CONTROLLER_LEASE_RENEW_DEADLINE_MS')).toBe('2000');
    expect(env(c, 'CONTROLLER_LEASE_RETRY_PERIOD_MS')).toBe('500');
  });

  test('only the controller mounts a service account token; nodes and the CLI still do not', () => {
    expect(pod(objs).automountServiceAccountToken).toBe(true);
    expect(pod(objs).serviceAccountName).toBe('cn-currency-nodes');
    const others = byKind(objs, 'Deployment').filter((d) => d.metadata.name !== CONTROLLER);
    expect(others.length).toBeGreaterThan(0);
    for (const d of others) expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
    expect(one(objs, 'ServiceAccount', 'cn-currency-nodes').automountServiceAccountToken).toBe(
      false,
    );
  });

  test("a Role for the one named Lease (get, update) plus create, bound to the pods' account", () => {
    const role = one(objs, 'Role', ROLE);
    expect(role.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: [CONTROLLER],
        verbs: ['get', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    ]);
    const binding = one(objs, 'RoleBinding', ROLE);
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: ROLE,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'cn-currency-nodes', namespace: 'default' },
    ]);
  });

  test('a PodDisruptionBudget keeps one controller; standbys (never Ready) may always go', () => {
    const pdb = one(objs, 'PodDisruptionBudget', CONTROLLER);
    expect(pdb.spec).toEqual({
      minAvailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: controller(objs).spec.selector.matchLabels },
    });
  });

  test('readiness is HTTP /readyz (503 on a standby), liveness and startup HTTP /healthz', () => {
    const c = container(objs);
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'metrics' });
    expect(c.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'metrics' });
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(c[probe].grpc).toBeUndefined();
    }
  });

  test('the replicas spread over Kubernetes nodes (preferred, so one node still schedules)', () => {
    const selector = controller(objs).spec.selector.matchLabels;
    expect(pod(objs).affinity).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              topologyKey: 'kubernetes.io/hostname',
              labelSelector: { matchLabels: selector },
            },
          },
        ],
      },
    });
    expect(pod(objs).topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selector },
      },
    ]);
  });

  test('a rollout replaces all pods at once: a standby never turns Ready, so waiting for it would stall', () => {
    expect(controller(objs).spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 0, maxUnavailable: '100%' },
    });
  });

  test('NOTES say how many controllers there are and how to see the leader', () => {
    const notes = renderNotes({ set: ['controller.replicas=2'] });
    expect(notes).toContain('2 controllers');
    expect(notes).toContain(`kubectl get lease ${CONTROLLER}`);
    expect(renderNotes()).not.toContain('kubectl get lease');
  });
});

describe('controller.replicas: the values say the rest', () => {
  test('lease name, timing, affinity, spread and the PDB can be set', () => {
    const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } };
    const spread = [{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' }];
    const objs = render({
      values: {
        controller: {
          replicas: 3,
          leaderElection: {
            leaseName: 'fx.lease',
            leaseDurationMs: 15000,
            renewDeadlineMs: 10000,
            retryPeriodMs: 2000,
          },
          pdb: { minAvailable: 2 },
          affinity,
          topologySpreadConstraints: spread,
        },
      },
    });
    const c = container(objs);
    expect(controller(objs).spec.replicas).toBe(3);
    expect(env(c, 'CONTROLLER_LEASE_NAME')).toBe('fx.lease');
    expect(env(c, 'CONTROLLER_LEASE_DURATION_MS')).toBe('15000');
    expect(env(c, 'CONTROLLER_LEASE_RENEW_DEADLINE_MS')).toBe('10000');
    expect(env(c, 'CONTROLLER_LEASE_RETRY_PERIOD_MS')).toBe('2000');
    expect(one(objs, 'Role', ROLE).rules[0].resourceNames).toEqual(['fx.lease']);
    expect(one(objs, 'PodDisruptionBudget', CONTROLLER).spec.minAvailable).toBe(2);
    expect(pod(objs).affinity).toEqual(affinity);
    expect(pod(objs).topologySpreadConstraints).toEqual(spread);
  });

  test('the PDB can be turned off', () => {
    const objs = render({ set: ['controller.replicas=2', 'controller.pdb.enabled=false'] });
    const pdbs = byKind(objs, 'PodDisruptionBudget').map((p) => p.metadata.name as string);
    expect(pdbs).not.toContain(CONTROLLER);
    expect(one(objs, 'Role', ROLE)).toBeDefined();
  });

  test('an existing service account is the one bound', () => {
    const objs = render({
      set: ['controller.replicas=2', 'serviceAccount.create=false', 'serviceAccount.name=ops'],
    });
    expect(one(objs, 'RoleBinding', ROLE).subjects[0].name).toBe('ops');
    expect(pod(objs).serviceAccountName).toBe('ops');
  });

  test.each<[string, string[], RegExp]>([
    ['replicas 0', ['controller.replicas=0'], /controller\/replicas.*minimum: got 0, want 1/],
    [
      'renew deadline not below the duration',
      ['controller.replicas=2', 'controller.leaderElection.renewDeadlineMs=3000'],
      /controller\.leaderElection\.renewDeadlineMs \(3000\) must be less than leaseDurationMs \(3000\)/,
    ],
    [
      'retry period not below the renew deadline',
      ['controller.replicas=2', 'controller.leaderElection.retryPeriodMs=2000'],
      /controller\.leaderElection\.retryPeriodMs \(2000\) must be less than renewDeadlineMs \(2000\)/,
    ],
    [
      'a lease name that is not a DNS name',
      ['controller.replicas=2', 'controller.leaderElection.leaseName=Bad_Name'],
      /leaseName.*does not match pattern/,
    ],
    [
      'a lease shorter than a second',
      ['controller.replicas=2', 'controller.leaderElection.leaseDurationMs=500'],
      /leaseDurationMs.*minimum: got 500, want 1,?000/,
    ],
  ])('refuses %s, naming the value', (_name, set, message) => {
    const r = renderRaw({ set });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
