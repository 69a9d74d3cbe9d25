/**
 * Template unit tests: render the chart with `helm template` and assert the objects.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHART,
  MONITORING_API_VERSIONS,
  type K8sObject,
  byKind,
  env,
  one,
  render,
  renderNotes,
  renderRaw,
} from './support';
import { type Rule, loadRules, scopeRuleExpr } from '../support/observability-promql';

jest.setTimeout(60_000);

const CONTROLLER = 'cn-currency-nodes-controller';
const CLI = 'cn-currency-nodes-cli';

const container = (d: K8sObject, i = 0): K8sObject => d.spec.template.spec.containers[i];
const podAnnotations = (d: K8sObject): Record<string, string> =>
  d.spec.template.metadata.annotations ?? {};

const THREE_GROUPS = {
  nodeGroups: [
    { name: 'fx', replicas: 3, pairs: ['USD_HKD', 'EUR_USD'] },
    { name: 'crypto', replicas: 2, pairs: ['BTC_USD', 'EUR_USD'], priceIntervalMs: 500 },
    {
      name: 'asia',
      replicas: 0,
      pairs: ['USD_JPY'],
      uuidFromPodUID: false,
      pdb: { minAvailable: 1 },
      image: { tag: '9.9.9' },
      nodeSelector: { 'topology.kubernetes.io/region': 'ap' },
    },
  ],
};

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

describe('node groups', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: THREE_GROUPS });
  });

  test('three groups make three Deployments with their own pairs and replicas (0 allowed)', () => {
    const want: Record<string, [number, string]> = {
      fx: [3, 'USD_HKD,EUR_USD'],
      crypto: [2, 'BTC_USD,EUR_USD'],
      asia: [0, 'USD_JPY'],
    };
    for (const [g, [replicas, pairs]] of Object.entries(want)) {
      const d = one(objs, 'Deployment', `cn-currency-nodes-node-${g}`);
      expect(d.spec.replicas).toBe(replicas);
      expect(env(container(d), 'NODE_CURRENCY_PAIRS')).toBe(pairs);
    }
    expect(
      byKind(objs, 'Deployment').filter(
        (d) => d.metadata.labels['app.kubernetes.io/component'] === 'node',
      ),
    ).toHaveLength(3);
  });

  test('a group overrides the node defaults for itself only', () => {
    const fx = container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx'));
    const crypto = container(one(objs, 'Deployment', 'cn-currency-nodes-node-crypto'));
    const asiaD = one(objs, 'Deployment', 'cn-currency-nodes-node-asia');
    const asia = container(asiaD);
    expect(env(fx, 'NODE_PRICE_INTERVAL_MS')).toBe('2000-10000');
    expect(env(crypto, 'NODE_PRICE_INTERVAL_MS')).toBe('500');
    expect(env(fx, 'NODE_UUID')).toEqual({ fieldRef: { fieldPath: 'metadata.uid' } });
    expect(env(asia, 'NODE_UUID')).toBeUndefined();
    expect(asia.image).toBe('currency-nodes/node:9.9.9');
    expect(fx.image).toBe('currency-nodes/node:0.1.0');
    expect(asiaD.spec.template.spec.nodeSelector).toEqual({
      'topology.kubernetes.io/region': 'ap',
    });
    expect(
      one(objs, 'Deployment', 'cn-currency-nodes-node-fx').spec.template.spec.nodeSelector,
    ).toBeUndefined();
    // A group's resources stay the defaults unless it sets its own.
    expect(asia.resources).toEqual(fx.resources);
  });

  test('minAvailable in a group replaces the default maxUnavailable in its PodDisruptionBudget', () => {
    const asia = one(objs, 'PodDisruptionBudget', 'cn-currency-nodes-node-asia');
    expect(asia.spec).toMatchObject({ minAvailable: 1 });
    expect(asia.spec.maxUnavailable).toBeUndefined();
    expect(one(objs, 'PodDisruptionBudget', 'cn-currency-nodes-node-fx').spec.maxUnavailable).toBe(
      1,
    );
  });

  test('a group without a PodDisruptionBudget gets none', () => {
    const o = render({
      values: {
        nodeGroups: [{ name: 'solo', replicas: 1, pairs: ['A_B'], pdb: { enabled: false } }],
      },
    });
    expect(byKind(o, 'PodDisruptionBudget')).toEqual([]);
    expect(byKind(o, 'Deployment').map((d) => d.metadata.name)).toContain(
      'cn-currency-nodes-node-solo',
    );
  });

  test('scaling a group with --set changes only its replicas', () => {
    const o = render({ set: ['nodeGroups[0].replicas=7'], values: THREE_GROUPS });
    // --set on a list element merges into the list given in values.
    expect(one(o, 'Deployment', 'cn-currency-nodes-node-fx').spec.replicas).toBe(7);
    expect(one(o, 'Deployment', 'cn-currency-nodes-node-crypto').spec.replicas).toBe(2);
  });

  test('topology spread constraints get the group’s own selector', () => {
    const o = render({
      values: {
        ...THREE_GROUPS,
        node: {
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
            },
          ],
        },
      },
    });
    const d = one(o, 'Deployment', 'cn-currency-nodes-node-crypto');
    expect(d.spec.template.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: d.spec.selector.matchLabels },
      },
    ]);
  });
});

describe('monitoring', () => {
  test('with the CRDs served (--api-versions): ServiceMonitor, PodMonitor and PrometheusRule, and no scrape annotations', () => {
    const objs = render({ apiVersions: MONITORING_API_VERSIONS });
    const sm = one(objs, 'ServiceMonitor', CONTROLLER);
    expect(sm.spec.selector.matchLabels).toEqual(one(objs, 'Service', CONTROLLER).spec.selector);
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect(sm.spec.endpoints[0].relabelings).toContainEqual({
      action: 'replace',
      targetLabel: 'job',
      replacement: 'currency-controller',
    });
    const pm = one(objs, 'PodMonitor', 'cn-currency-nodes-node');
    expect(pm.spec.selector.matchLabels['app.kubernetes.io/component']).toBe('node');
    expect(pm.spec.selector.matchLabels['currency-nodes/node-group']).toBeUndefined();
    expect(pm.spec.podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
    expect(pm.spec.podMetricsEndpoints[0].relabelings).toContainEqual({
      action: 'replace',
      targetLabel: 'job',
      replacement: 'currency-node',
    });
    const rule = one(objs, 'PrometheusRule', 'cn-currency-nodes');
    expect(rule.spec.groups.length).toBeGreaterThan(0);
    for (const d of byKind(objs, 'Deployment')) {
      expect(podAnnotations(d)['prometheus.io/scrape']).toBeUndefined();
    }
  });

  test('only the CRDs the cluster serves are used: ServiceMonitor alone leaves the nodes annotated', () => {
    const objs = render({ apiVersions: ['monitoring.coreos.com/v1/ServiceMonitor'] });
    expect(byKind(objs, 'ServiceMonitor')).toHaveLength(1);
    expect(byKind(objs, 'PodMonitor')).toEqual([]);
    expect(byKind(objs, 'PrometheusRule')).toEqual([]);
    expect(
      podAnnotations(one(objs, 'Deployment', CONTROLLER))['prometheus.io/scrape'],
    ).toBeUndefined();
    expect(
      podAnnotations(one(objs, 'Deployment', 'cn-currency-nodes-node-fx'))['prometheus.io/scrape'],
    ).toBe('true');
  });

  test('monitoring objects switched off stay off even where the CRDs exist', () => {
    const objs = render({
      apiVersions: MONITORING_API_VERSIONS,
      values: {
        metrics: {
          serviceMonitor: { enabled: false },
          podMonitor: { enabled: false },
          prometheusRule: { enabled: false },
          scrapeAnnotations: 'never',
        },
        grafana: { dashboards: { enabled: false } },
      },
    });
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap']) {
      expect(byKind(objs, k)).toEqual([]);
    }
    for (const d of byKind(objs, 'Deployment')) {
      expect(podAnnotations(d)['prometheus.io/scrape']).toBeUndefined();
    }
  });

  test('scrapeAnnotations "always" annotates even pods a monitor scrapes', () => {
    const objs = render({
      apiVersions: MONITORING_API_VERSIONS,
      values: { metrics: { scrapeAnnotations: 'always' } },
    });
    expect(podAnnotations(one(objs, 'Deployment', CONTROLLER))['prometheus.io/scrape']).toBe(
      'true',
    );
  });

  test('monitor labels and intervals from values reach the objects', () => {
    const objs = render({
      apiVersions: MONITORING_API_VERSIONS,
      valuesFiles: [join(CHART, 'ci', 'monitoring-values.yaml')],
    });
    const sm = one(objs, 'ServiceMonitor', CONTROLLER);
    expect(sm.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(sm.spec.endpoints[0].interval).toBe('15s');
    expect(sm.spec.endpoints[0].metricRelabelings).toHaveLength(1);
    expect(one(objs, 'PrometheusRule', 'cn-currency-nodes').metadata.labels.release).toBe(
      'kube-prometheus-stack',
    );
    for (const cm of byKind(objs, 'ConfigMap')) {
      expect(cm.metadata.annotations).toEqual({ grafana_folder: 'currency-nodes' });
    }
  });
});

describe('alerting rules (PrometheusRule)', () => {
  const rulesOf = (o: { namespace?: string; values?: unknown } = {}): Map<string, Rule> => {
    const objs = render({ apiVersions: MONITORING_API_VERSIONS, ...o });
    const groups = one(objs, 'PrometheusRule', 'cn-currency-nodes').spec.groups as {
      rules: Rule[];
    }[];
    return new Map(groups.flatMap((g) => g.rules).map((r) => [r.alert ?? '', r]));
  };
  const source = new Map(loadRules().map((r) => [r.alert ?? '', r]));

  test('scope every selector to the release namespace, so two releases never see each other’s series', () => {
    const a = rulesOf({ namespace: 'team-a' });
    const b = rulesOf({ namespace: 'team-b' });
    expect([...a.keys()]).toEqual([...source.keys()]);
    for (const [name, src] of source) {
      expect({ name, expr: a.get(name)!.expr }).toEqual({
        name,
        expr: scopeRuleExpr(src.expr, 'team-a'),
      });
      expect(b.get(name)!.expr).toContain('namespace="team-b"');
      expect(b.get(name)!.expr).not.toContain('team-a');
      // Every selector: the namespace scoping reached it.
      for (const m of a.get(name)!.expr.matchAll(/\{([^}]*)\}/g))
        expect({ name, sel: m[1], scoped: m[1].includes('namespace="team-a"') }).toEqual({
          name,
          sel: m[1],
          scoped: true,
        });
    }
    // absent(): with the namespace matcher, "no controller in this namespace".
    expect(a.get('CurrencyControllerDown')!.expr).toContain(
      'absent(up{job="currency-controller", namespace="team-a"})',
    );
  });

  test('scopeToNamespace: false leaves the expressions as in the source', () => {
    const r = rulesOf({ values: { metrics: { prometheusRule: { scopeToNamespace: false } } } });
    for (const [name, src] of source)
      expect({ name, expr: r.get(name)!.expr }).toEqual({ name, expr: src.expr });
  });

  test('switch single alerts off and override their for, severity and threshold', () => {
    const r = rulesOf({
      values: {
        metrics: {
          prometheusRule: {
            alerts: {
              CurrencyNodeDown: { enabled: false },
              CurrencyFailoverStorm: { threshold: 50, for: '5m' },
              CurrencyPairFlapping: { threshold: 4.5 },
              CurrencyNoLeader: { severity: 'warning' },
              CurrencyPairUnstreamed: { enabled: true, for: '3m' },
            },
          },
        },
      },
    });
    expect(r.has('CurrencyNodeDown')).toBe(false);
    expect(r.size).toBe(source.size - 1);
    const storm = r.get('CurrencyFailoverStorm')!;
    expect(storm.expr).toMatch(/\) > 50$/);
    expect(storm.expr.replace(/ > 50$/, '')).toBe(
      scopeRuleExpr(source.get('CurrencyFailoverStorm')!.expr, 'default').replace(/ > 10$/, ''),
    );
    expect(storm.for).toBe('5m');
    expect(storm.labels?.severity).toBe('warning');
    expect(r.get('CurrencyPairFlapping')!.expr).toMatch(/\) >= 4\.5$/);
    expect(r.get('CurrencyNoLeader')!.labels?.severity).toBe('warning');
    expect(r.get('CurrencyPairUnstreamed')!.for).toBe('3m');
    // The rest as shipped.
    for (const name of [
      'CurrencyNoNodesConnected',
      'CurrencyControllerDown',
      'CurrencyStaleStreams',
    ]) {
      const src = source.get(name)!;
      expect({ name, for: r.get(name)!.for, labels: r.get(name)!.labels }).toEqual({
        name,
        for: src.for,
        labels: src.labels,
      });
    }
  });

  test('refuse an unknown alert, a bad severity or duration, and a threshold where the alert compares with no number', () => {
    const fails = (alerts: unknown) =>
      renderRaw({
        apiVersions: MONITORING_API_VERSIONS,
        values: { metrics: { prometheusRule: { alerts } } },
      });
    const unknown = fails({ CurrencyNope: { enabled: false } });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('CurrencyNope');
    const severity = fails({ CurrencyNodeDown: { severity: 'page' } });
    expect(severity.status).not.toBe(0);
    expect(severity.stderr).toContain('/metrics/prometheusRule/alerts/CurrencyNodeDown/severity');
    const duration = fails({ CurrencyNodeDown: { for: '5 minutes' } });
    expect(duration.status).not.toBe(0);
    expect(duration.stderr).toContain('/metrics/prometheusRule/alerts/CurrencyNodeDown/for');
    const threshold = fails({ CurrencyControllerDown: { threshold: 1 } });
    expect(threshold.status).not.toBe(0);
    expect(threshold.stderr).toContain(
      'metrics.prometheusRule.alerts.CurrencyControllerDown.threshold',
    );
  });

  test('link every alert to its runbook section (runbookBaseUrl in front) and to grafanaUrl', () => {
    const plain = rulesOf();
    for (const [name, r] of plain) {
      expect(r.annotations?.runbook_url).toBe(`docs/runbook.md#${name.toLowerCase()}`);
      expect(r.annotations?.dashboard_url).toMatch(/^http:\/\/localhost:3000\/d\/currency-nodes-/);
    }
    const linked = rulesOf({
      values: {
        metrics: {
          prometheusRule: {
            runbookBaseUrl: 'https://git.example.com/team/currency-nodes/blob/v1/',
            grafanaUrl: 'https://grafana.example.com/sub/',
          },
        },
      },
    });
    for (const [name, r] of linked) {
      expect(r.annotations?.runbook_url).toBe(
        `https://git.example.com/team/currency-nodes/blob/v1/docs/runbook.md#${name.toLowerCase()}`,
      );
      expect(r.annotations?.dashboard_url).toBe(
        source
          .get(name)!
          .annotations!.dashboard_url.replace(
            'http://localhost:3000',
            'https://grafana.example.com/sub',
          ),
      );
    }
  });
});

describe('OpenTelemetry', () => {
  test('otel.enabled sets the OTEL_* variables in every container, with the pod as resource attributes', () => {
    const objs = render({
      values: {
        otel: {
          enabled: true,
          endpoint: 'http://collector:4317',
          resourceAttributes: { 'deployment.environment': 'prod' },
          extraEnv: [{ name: 'OTEL_TRACES_SAMPLER', value: 'always_on' }],
        },
      },
    });
    const deployments = byKind(objs, 'Deployment');
    expect(deployments).toHaveLength(4);
    for (const d of deployments) {
      const c = container(d);
      expect(env(c, 'OTEL_TRACES_EXPORTER')).toBe('otlp');
      expect(env(c, 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBe('http://collector:4317');
      expect(env(c, 'OTEL_EXPORTER_OTLP_PROTOCOL')).toBe('grpc');
      expect(env(c, 'OTEL_TRACES_SAMPLER')).toBe('always_on');
      expect(env(c, 'OTEL_RESOURCE_ATTRIBUTES')).toBe(
        'k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.node.name=$(K8S_NODE_NAME),deployment.environment=prod',
      );
      // $(VAR) expands only variables defined before it in the list.
      const names = (c.env as K8sObject[]).map((e) => e.name);
      expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    }
  });
});

describe('images and extras', () => {
  test('registry, tag and digest per role; digest wins over tag', () => {
    const objs = render({
      values: {
        image: { registry: 'reg.example.com', tag: '1.2.3' },
        controller: { image: { digest: 'sha256:' + 'a'.repeat(64) } },
        cli: { image: { registry: 'other.example.com', tag: '7' } },
      },
    });
    expect(container(one(objs, 'Deployment', CONTROLLER)).image).toBe(
      'reg.example.com/currency-nodes/controller@sha256:' + 'a'.repeat(64),
    );
    expect(container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx')).image).toBe(
      'reg.example.com/currency-nodes/node:1.2.3',
    );
    expect(container(one(objs, 'Deployment', CLI)).image).toBe(
      'other.example.com/currency-nodes/cli:7',
    );
  });

  test('imagePullSecrets, extraEnv, commonLabels and per-role scheduling reach the pods', () => {
    const objs = render({
      values: {
        imagePullSecrets: [{ name: 'regcred' }],
        extraEnv: [{ name: 'TZ', value: 'UTC' }],
        commonLabels: { team: 'fx' },
        controller: {
          extraEnv: [{ name: 'ONLY_CONTROLLER', value: '1' }],
          tolerations: [{ key: 'k', operator: 'Exists' }],
          affinity: { nodeAffinity: {} },
        },
      },
    });
    for (const d of byKind(objs, 'Deployment')) {
      expect(d.spec.template.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
      expect(env(container(d), 'TZ')).toBe('UTC');
      expect(d.metadata.labels.team).toBe('fx');
      // commonLabels are not part of the (immutable) selector.
      expect(d.spec.selector.matchLabels.team).toBeUndefined();
    }
    const ctl = one(objs, 'Deployment', CONTROLLER);
    expect(env(container(ctl), 'ONLY_CONTROLLER')).toBe('1');
    expect(ctl.spec.template.spec.tolerations).toEqual([{ key: 'k', operator: 'Exists' }]);
    expect(env(container(one(objs, 'Deployment', CLI)), 'ONLY_CONTROLLER')).toBeUndefined();
    expect(one(objs, 'Deployment', CLI).spec.template.spec.tolerations).toBeUndefined();
  });

  test('a role’s security context is merged over the global one', () => {
    const objs = render({ values: { node: { containerSecurityContext: { runAsUser: 2000 } } } });
    const sc = container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx')).securityContext;
    expect(sc.runAsUser).toBe(2000);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(container(one(objs, 'Deployment', CONTROLLER)).securityContext.runAsUser).toBe(1000);
  });

  test('preStopSleepSeconds 0 removes the preStop hook', () => {
    const objs = render({ values: { controller: { preStopSleepSeconds: 0 } } });
    expect(container(one(objs, 'Deployment', CONTROLLER)).lifecycle).toBeUndefined();
  });

  test('cli.enabled=false removes the CLI Deployment', () => {
    const objs = render({ values: { cli: { enabled: false } } });
    expect(byKind(objs, 'Deployment').map((d) => d.metadata.name)).not.toContain(CLI);
  });

  test('names follow the release: fullnameOverride and a release named like the chart', () => {
    expect(
      byKind(render({ values: { fullnameOverride: 'prices' } }), 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['prices-cli', 'prices-controller', 'prices-node-crypto', 'prices-node-fx']);
    const o = render({ release: 'currency-nodes' });
    expect(
      env(container(one(o, 'Deployment', 'currency-nodes-node-fx')), 'NODE_CONTROLLER_ADDR'),
    ).toBe('currency-nodes-controller:5160');
  });
});

describe('NetworkPolicy', () => {
  test('only this release’s pods reach the controller; the monitoring namespace reaches 9464', () => {
    const objs = render({ valuesFiles: [join(CHART, 'ci', 'hardened-values.yaml')] });
    const ctl = one(objs, 'NetworkPolicy', CONTROLLER);
    expect(ctl.spec.podSelector.matchLabels).toEqual(
      one(objs, 'Deployment', CONTROLLER).spec.selector.matchLabels,
    );
    expect(ctl.spec.policyTypes).toEqual(['Ingress']);
    expect(ctl.spec.ingress).toHaveLength(2);
    expect(ctl.spec.ingress[0].from).toEqual([
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'currency-nodes',
            'app.kubernetes.io/instance': 'cn',
          },
        },
      },
    ]);
    expect(ctl.spec.ingress[0].ports.map((p: K8sObject) => p.port)).toEqual(['grpc', 'metrics']);
    expect(ctl.spec.ingress[1].from[0].namespaceSelector.matchLabels).toEqual({
      'kubernetes.io/metadata.name': 'monitoring',
    });
    expect(ctl.spec.ingress[1].ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
    const workers = one(objs, 'NetworkPolicy', 'cn-currency-nodes-workers');
    expect(workers.spec.ingress).toHaveLength(1);
    expect(workers.spec.ingress[0].ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
  });

  test('without monitoring peers the nodes and the CLI take no ingress at all', () => {
    const objs = render({ values: { networkPolicy: { enabled: true } } });
    expect(one(objs, 'NetworkPolicy', 'cn-currency-nodes-workers').spec.ingress).toEqual([]);
    expect(one(objs, 'NetworkPolicy', CONTROLLER).spec.ingress).toHaveLength(1);
  });
});

describe('helm test hook', () => {
  test('a test pod runs `currency-cli --json controller nodes` and fails unless a node is listed', () => {
    const objs = render();
    const pod = one(objs, 'Pod', 'cn-currency-nodes-test-nodes');
    expect(pod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(pod.spec.restartPolicy).toBe('Never');
    const c = pod.spec.containers[0];
    expect(c.image).toBe('currency-nodes/cli:0.1.0');
    expect(env(c, 'CLI_CONTROLLER_ADDR')).toBe(`${CONTROLLER}:5160`);
    const script = [...c.command, ...c.args].join(' ');
    expect(script).toContain('currency-cli --json controller nodes');
    expect(script).toContain('nodes.length === 0');
    expect(script).toMatch(/attempts=30\b/);
  });

  describe('its script, run here against a stand-in currency-cli', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'currency-nodes-hook-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    // The stand-in prints `stdout` and exits with `code`; it records each call.
    function runHook(stdout: string, code: number): { status: number; out: string; calls: number } {
      writeFileSync(
        join(dir, 'currency-cli'),
        `#!/bin/sh\necho call >> "${dir}/calls"\nprintf '%s' '${stdout}'\nexit ${code}\n`,
      );
      chmodSync(join(dir, 'currency-cli'), 0o755);
      const pod = one(
        render({ values: { tests: { attempts: 2, intervalSeconds: 1 } } }),
        'Pod',
        'cn-currency-nodes-test-nodes',
      );
      const c = pod.spec.containers[0];
      expect(c.command).toEqual(['/bin/sh', '-c']);
      const r = spawnSync('/bin/sh', ['-c', c.args[0]], {
        encoding: 'utf8',
        timeout: 20_000,
        env: {
          ...process.env,
          PATH: `${dir}:${process.env.PATH}`,
          CLI_CONTROLLER_ADDR: 'ctl:5160',
        },
      });
      const calls = spawnSync('sh', ['-c', `cat "${dir}/calls" 2>/dev/null | wc -l`], {
        encoding: 'utf8',
      });
      return {
        status: r.status ?? -1,
        out: r.stdout + r.stderr,
        calls: Number(calls.stdout.trim()),
      };
    }

    test('passes at once when a node is listed', () => {
      const r = runHook('[{"nodeUuid":"0b7c1a6e-5d1e-4c2b-9a56-2f1e7c9d8b10","name":"node-a"}]', 0);
      expect(r.out).toContain('1 node(s) listed: node-a');
      expect(r.calls).toBe(1);
      expect(r.status).toBe(0);
    });

    test('fails after the bounded attempts when no node is listed', () => {
      const r = runHook('[]', 0);
      expect(r.out).toContain('FAIL: the controller at ctl:5160 listed no node after 2 attempts');
      expect(r.calls).toBe(2);
      expect(r.status).toBe(1);
    });

    test('fails when the controller cannot be reached (cli exit 3)', () => {
      const r = runHook('', 3);
      expect(r.out).toContain('attempt 1/2: no node listed yet');
      expect(r.calls).toBe(2);
      expect(r.status).toBe(1);
    });
  });

  test('tests.enabled=false renders no test pod', () => {
    expect(byKind(render({ values: { tests: { enabled: false } } }), 'Pod')).toEqual([]);
  });
});

describe('NOTES.txt', () => {
  test('prints the exact kubectl exec command for the release', () => {
    const notes = renderNotes();
    expect(notes.split('\n').map((l) => l.trim())).toContain(
      `kubectl exec deploy/${CLI} -- currency-cli controller nodes`,
    );
    expect(notes).toContain('helm test cn');
    expect(notes).toContain('NOTE: the cluster does not serve monitoring.coreos.com/v1');
  });

  test('names the namespace when the release is not in "default", and follows the release name', () => {
    const notes = renderNotes({ release: 'prices', namespace: 'fx' });
    expect(notes.split('\n').map((l) => l.trim())).toContain(
      'kubectl --namespace fx exec deploy/prices-currency-nodes-cli -- currency-cli controller nodes',
    );
  });

  test('no CRD warning when the monitoring CRDs are served', () => {
    expect(renderNotes({ apiVersions: MONITORING_API_VERSIONS })).not.toContain('does not serve');
  });
});
