/**
 * Template unit tests (`helm template`). The chart with its default values: the objects,
 * labels, probes, hardening, and what is off by default.
 */
import { spawn } from 'node:child_process';
import { CONTROLLER, CLI, container, podAnnotations } from './template-fixtures';
import { type K8sObject, byKind, env, one, render } from './support';

jest.setTimeout(60_000);

describe('default values', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render();
  });

  test('render exactly the expected objects and nothing else', () => {
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names).toEqual(
      [
        'ConfigMap/cn-currency-nodes-dashboard-node',
        'ConfigMap/cn-currency-nodes-dashboard-overview',
        'Deployment/cn-currency-nodes-cli',
        'Deployment/cn-currency-nodes-controller',
        'Deployment/cn-currency-nodes-node-crypto',
        'Deployment/cn-currency-nodes-node-fx',
        'PodDisruptionBudget/cn-currency-nodes-node-crypto',
        'PodDisruptionBudget/cn-currency-nodes-node-fx',
        'Pod/cn-currency-nodes-test-nodes',
        'Service/cn-currency-nodes-controller',
        'ServiceAccount/cn-currency-nodes',
      ].sort(),
    );
  });

  test('every object carries the app.kubernetes.io labels of the release', () => {
    for (const o of objs) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'currency-nodes',
        'app.kubernetes.io/instance': 'cn',
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/version': '0.1.0',
        'helm.sh/chart': 'currency-nodes-0.1.0',
      });
    }
  });

  test('the controller is one replica with a ClusterIP Service on 5160 (grpc) and 9464 (metrics)', () => {
    const d = one(objs, 'Deployment', CONTROLLER);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe('Recreate');
    const svc = one(objs, 'Service', CONTROLLER);
    expect(svc.spec.type).toBe('ClusterIP');
    expect(svc.spec.ports).toEqual([
      expect.objectContaining({ name: 'grpc', port: 5160, targetPort: 'grpc' }),
      expect.objectContaining({ name: 'metrics', port: 9464, targetPort: 'metrics' }),
    ]);
    expect(svc.spec.selector).toEqual(d.spec.selector.matchLabels);
    expect(svc.spec.selector['app.kubernetes.io/component']).toBe('controller');
    const c = container(d);
    expect(c.image).toBe('currency-nodes/controller:0.1.0');
    expect(c.ports).toEqual([
      { name: 'grpc', containerPort: 5160, protocol: 'TCP' },
      { name: 'metrics', containerPort: 9464, protocol: 'TCP' },
    ]);
    expect(env(c, 'CONTROLLER_LISTEN_ADDR')).toBe('0.0.0.0:5160');
    expect(env(c, 'CONTROLLER_STREAMS_PER_PAIR')).toBe('1');
    expect(env(c, 'METRICS_ADDR')).toBe('0.0.0.0:9464');
    expect(env(c, 'LOG_LEVEL')).toBe('info');
  });

  test('the controller has native gRPC startup, readiness and liveness probes on 5160', () => {
    const c = container(one(objs, 'Deployment', CONTROLLER));
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      expect(c[probe].grpc).toEqual({ port: 5160 });
      expect(c[probe].httpGet).toBeUndefined();
      expect(c[probe].exec).toBeUndefined();
    }
  });

  test('the controller pauses in preStop and has a grace period longer than the pause', () => {
    const d = one(objs, 'Deployment', CONTROLLER);
    expect(container(d).lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(30);
  });

  test('one Deployment per node group, each with its own NODE_CURRENCY_PAIRS', () => {
    const nodes = byKind(objs, 'Deployment').filter(
      (d) => d.metadata.labels['app.kubernetes.io/component'] === 'node',
    );
    expect(nodes.map((d) => d.metadata.name).sort()).toEqual([
      'cn-currency-nodes-node-crypto',
      'cn-currency-nodes-node-fx',
    ]);
    const fx = one(objs, 'Deployment', 'cn-currency-nodes-node-fx');
    expect(fx.spec.replicas).toBe(3);
    expect(env(container(fx), 'NODE_CURRENCY_PAIRS')).toBe('USD_HKD,EUR_USD,GBP_USD,USD_JPY');
    const crypto = one(objs, 'Deployment', 'cn-currency-nodes-node-crypto');
    expect(crypto.spec.replicas).toBe(2);
    expect(env(container(crypto), 'NODE_CURRENCY_PAIRS')).toBe('BTC_USD,ETH_USD,EUR_USD,USD_JPY');
  });

  test('a node reaches the controller Service, takes its name and UUID from the pod, and has HTTP probes', () => {
    const c = container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx'));
    expect(c.image).toBe('currency-nodes/node:0.1.0');
    expect(env(c, 'NODE_CONTROLLER_ADDR')).toBe(`${CONTROLLER}:5160`);
    expect(env(c, 'NODE_NAME')).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env(c, 'NODE_UUID')).toEqual({ fieldRef: { fieldPath: 'metadata.uid' } });
    expect(env(c, 'NODE_PRICE_INTERVAL_MS')).toBe('2000-10000');
    expect(env(c, 'METRICS_ADDR')).toBe('0.0.0.0:9464');
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  });

  test('node groups do not select each other’s pods', () => {
    const fx = one(objs, 'Deployment', 'cn-currency-nodes-node-fx');
    const crypto = one(objs, 'Deployment', 'cn-currency-nodes-node-crypto');
    expect(fx.spec.selector.matchLabels['currency-nodes/node-group']).toBe('fx');
    expect(crypto.spec.selector.matchLabels['currency-nodes/node-group']).toBe('crypto');
    for (const d of [fx, crypto]) {
      expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
    }
  });

  test('each node group has a PodDisruptionBudget selecting exactly its pods', () => {
    for (const g of ['fx', 'crypto']) {
      const name = `cn-currency-nodes-node-${g}`;
      const pdb = one(objs, 'PodDisruptionBudget', name);
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(pdb.spec.minAvailable).toBeUndefined();
      expect(pdb.spec.selector.matchLabels).toEqual(
        one(objs, 'Deployment', name).spec.selector.matchLabels,
      );
    }
  });

  test('the CLI pod’s idle command exits 0 at once on SIGTERM', async () => {
    const command = container(one(objs, 'Deployment', CLI)).command as string[];
    // Its own process group, so that nothing it started can outlive the test.
    const child = spawn(command[0], command.slice(1), { stdio: 'ignore', detached: true });
    const pid = child.pid as number;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const groupAlive = (): boolean => {
      try {
        process.kill(-pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      child.kill('SIGTERM');
      const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 3_000).unref());
      const result = await Promise.race([exited, timeout]);
      expect(result).toBe(0);
      expect(Date.now() - t0).toBeLessThan(3_000);
      // The idle `sleep` went with it (in a container it would die anyway; here it must not leak).
      for (let i = 0; i < 20 && groupAlive(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(groupAlive()).toBe(false);
    } finally {
      if (groupAlive()) process.kill(-pid, 'SIGKILL');
    }
  });

  test('the CLI is one idle replica with a shell, pointed at the controller', () => {
    const d = one(objs, 'Deployment', CLI);
    expect(d.spec.replicas).toBe(1);
    const c = container(d);
    expect(c.image).toBe('currency-nodes/cli:0.1.0');
    expect(c.command[0]).toBe('/bin/sh');
    expect(c.command.join(' ')).toContain('sleep infinity');
    expect(env(c, 'CLI_CONTROLLER_ADDR')).toBe(`${CONTROLLER}:5160`);
  });

  test('every pod and container is hardened: non-root 1000, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    const pods = [
      ...byKind(objs, 'Deployment').map((d) => d.spec.template.spec),
      ...byKind(objs, 'Pod').map((p) => p.spec),
    ];
    expect(pods).toHaveLength(5);
    for (const spec of pods) {
      expect(spec.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } });
      for (const c of spec.containers as K8sObject[]) {
        expect(c.securityContext).toMatchObject({
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          privileged: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(c.resources.requests).toEqual(
          expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
        );
        expect(c.resources.limits).toEqual(
          expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
        );
      }
    }
  });

  test('no OTEL_* variable is set while otel is disabled (tracing off and silent)', () => {
    for (const d of byKind(objs, 'Deployment')) {
      const names = ((container(d).env ?? []) as K8sObject[]).map((e) => e.name as string);
      expect(names.filter((n) => n.startsWith('OTEL_'))).toEqual([]);
    }
  });

  test('without the monitoring CRDs: no ServiceMonitor/PodMonitor/PrometheusRule, scrape annotations instead', () => {
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule']) {
      expect(byKind(objs, k)).toEqual([]);
    }
    for (const name of [CONTROLLER, 'cn-currency-nodes-node-fx', 'cn-currency-nodes-node-crypto']) {
      expect(podAnnotations(one(objs, 'Deployment', name))).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9464',
        'prometheus.io/path': '/metrics',
      });
    }
    expect(podAnnotations(one(objs, 'Deployment', CLI))).toEqual({});
  });

  test('the Grafana dashboards are ConfigMaps with the sidecar label grafana_dashboard: "1"', () => {
    const cms = byKind(objs, 'ConfigMap');
    expect(cms).toHaveLength(2);
    for (const cm of cms) {
      expect(cm.metadata.labels.grafana_dashboard).toBe('1');
      const [key] = Object.keys(cm.data);
      expect(key).toMatch(/^currency-nodes-[a-z-]+\.json$/);
      const dashboard = JSON.parse(cm.data[key]);
      expect(typeof dashboard.title).toBe('string');
      expect(Array.isArray(dashboard.panels)).toBe(true);
    }
  });

  test('no NetworkPolicy unless enabled', () => {
    expect(byKind(objs, 'NetworkPolicy')).toEqual([]);
  });
});
