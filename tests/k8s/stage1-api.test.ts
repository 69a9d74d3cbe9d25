/**
 * Stage 1 of the k8s tier: a real API server (kube-apiserver built from k8s.io/kubernetes,
 * Debian's etcd) started by scripts/k8s/cluster.sh. Every manifest the chart renders is
 * accepted by `kubectl apply --dry-run=server` (the server's own admission, defaulting and
 * validation, with the monitoring CRDs installed), a broken one is refused, and `helm
 * install` / `upgrade` / `uninstall` work against it and leave nothing behind.
 *
 * No pod runs at this stage (no scheduler, no kubelet): that is stage 2 (stage2-node.test.ts).
 */
import { basename, join } from 'node:path';
import { waitFor } from '../support/wait';
import { CHART, Cluster, ROOT, ciValuesFiles, parseManifests, type K8sObject } from './cluster';

jest.setTimeout(600_000);

const CRDS = join(ROOT, 'tools', 'k8s-validate', 'crds');
let cluster: Cluster;
/** The namespaces this file creates, removed when it ends (the cluster is shared). */
const namespaces: string[] = ['helm-lifecycle'];

beforeAll(async () => {
  // The API server alone, whatever stage the suite runs: the run's stage-1 cluster, shared
  // with the leader files (tests/k8s/cluster.ts).
  cluster = Cluster.shared(1);
  cluster.kubectlOk(['apply', '--server-side', '-f', CRDS]);
  // Polled rather than `kubectl wait`, which errors out on a CRD whose status has no
  // conditions yet (right after creation).
  for (const crd of ['servicemonitors', 'podmonitors', 'prometheusrules']) {
    await waitFor(
      `crd/${crd}.monitoring.coreos.com to be Established`,
      () =>
        cluster.kubectlOk([
          'get',
          `crd/${crd}.monitoring.coreos.com`,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Established")].status}',
        ]) === 'True',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }
});

afterAll(() => {
  cluster?.removeNamespaces(namespaces);
});

describe('stage 1 (API server): the server itself', () => {
  test('reports the pinned Kubernetes version and serves the monitoring CRDs', () => {
    const v = cluster.json(['version']);
    expect(v.serverVersion.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(v.serverVersion.gitVersion).toBe(v.clientVersion.gitVersion);
    const resources = cluster.kubectlOk([
      'api-resources',
      '--api-group=monitoring.coreos.com',
      '-o',
      'name',
    ]);
    expect(resources.split('\n').sort()).toEqual(
      expect.arrayContaining([
        'podmonitors.monitoring.coreos.com',
        'prometheusrules.monitoring.coreos.com',
        'servicemonitors.monitoring.coreos.com',
      ]),
    );
  });
});

describe('stage 1 (API server): kubectl apply --dry-run=server', () => {
  // Rendered with the capabilities of this very server (helm template --kube-version is not
  // needed: helm asks the API server) into a namespace of its own.
  function renderFor(ns: string, valuesFiles: string[]): string {
    const args = ['template', 'cn', CHART, '--namespace', ns, '--validate'];
    for (const f of valuesFiles) args.push('--values', f);
    return cluster.helmOk(args);
  }

  function serviceAccountsNamed(objects: K8sObject[]): string[] {
    const names = new Set<string>();
    for (const o of objects) {
      const pod = o.kind === 'Pod' ? o.spec : o.spec?.template?.spec;
      if (pod?.serviceAccountName) names.add(pod.serviceAccountName as string);
    }
    expect(names.size).toBeGreaterThan(0);
    return [...names];
  }

  function dryRun(ns: string, manifests: string) {
    return cluster.kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], manifests);
  }

  const variants: [string, string[]][] = [
    ['default values', []],
    ...ciValuesFiles().map((f): [string, string[]] => [`ci/${basename(f)}`, [f]]),
  ];

  test.each(variants)('%s: every object is accepted', (name, files) => {
    const ns = `dry-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`
      .replace(/-+$/, '')
      .slice(0, 50);
    namespaces.push(ns);
    cluster.kubectlOk(['create', 'namespace', ns]);
    try {
      const manifests = renderFor(ns, files);
      const objects = parseManifests(manifests);
      expect(objects.length).toBeGreaterThan(5);
      // Admission looks a Pod's ServiceAccount up in storage, and a dry run stores nothing:
      // so the accounts the pods name (the chart's own, or an existing one the values point
      // at) are created for real first, as they would exist before a pod in a real install.
      for (const sa of serviceAccountsNamed(objects)) {
        cluster.kubectlOk(['create', 'serviceaccount', sa, '-n', ns, '--save-config']);
      }
      const r = dryRun(ns, manifests);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // One "(server dry run)" line per object: none was silently dropped.
      const lines = r.stdout.split('\n').filter((l) => l.endsWith('(server dry run)'));
      expect(lines).toHaveLength(objects.length);
      // Nothing was stored.
      expect(
        cluster.kubectlOk(['get', 'deployments,services,configmaps', '-n', ns, '-o', 'name']),
      ).toBe('');
    } finally {
      cluster.kubectlOk(['delete', 'namespace', ns, '--wait=false']);
    }
  });

  test('a manifest the API server rejects fails the dry run (so passing means something)', () => {
    const manifests = renderFor('default', []);
    const objects = parseManifests(manifests);
    const deploy = objects.find((o) => o.kind === 'Deployment');
    expect(deploy).toBeDefined();
    deploy!.spec.replicas = -1;
    deploy!.spec.template.spec.containers[0].ports = [{ containerPort: 70000 }];
    const r = dryRun('default', JSON.stringify(deploy));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.replicas: Invalid value: -1/);
    expect(r.stderr).toMatch(/containerPort: Invalid value: 70000/);
  });
});

describe('stage 1 (API server): helm install, upgrade, uninstall', () => {
  const ns = 'helm-lifecycle';
  const release = 'cn';
  const groups = join(CHART, 'ci', 'groups-values.yaml');
  const selector = `app.kubernetes.io/instance=${release}`;
  const kinds =
    'all,configmaps,secrets,serviceaccounts,poddisruptionbudgets,networkpolicies,servicemonitors,podmonitors,prometheusrules';

  function replicasByName(): Record<string, number> {
    const list = cluster.json(['get', 'deployments', '-n', ns, '-l', selector]);
    return Object.fromEntries(
      (list.items as { metadata: { name: string }; spec: { replicas: number } }[]).map((d) => [
        d.metadata.name,
        d.spec.replicas,
      ]),
    );
  }

  test('install stores every object; upgrade changes them; uninstall removes them all', () => {
    const installed = cluster.helmOk([
      'install',
      release,
      CHART,
      '--namespace',
      ns,
      '--create-namespace',
      '--values',
      groups,
    ]);
    expect(installed).toMatch(/STATUS: deployed/);
    expect(replicasByName()).toEqual({
      'cn-currency-nodes-cli': 1,
      'cn-currency-nodes-controller': 1,
      'cn-currency-nodes-node-fx-majors': 4,
      'cn-currency-nodes-node-fx-asia': 2,
      'cn-currency-nodes-node-crypto': 0,
    });
    const stored = cluster.kubectlOk(['get', kinds, '-n', ns, '-l', selector, '-o', 'name']);
    expect(stored).toMatch(/^service\/cn-currency-nodes-controller$/m);
    expect(stored).toMatch(/^poddisruptionbudget\.policy\/cn-currency-nodes-node-fx-majors$/m);

    cluster.helmOk([
      'upgrade',
      release,
      CHART,
      '--namespace',
      ns,
      '--values',
      groups,
      '--set',
      'nodeGroups[2].replicas=3',
      '--set',
      'controller.streamsPerPair=1',
    ]);
    expect(replicasByName()['cn-currency-nodes-node-crypto']).toBe(3);
    const history = JSON.parse(cluster.helmOk(['history', release, '-n', ns, '-o', 'json']));
    expect(
      history.map((h: { revision: number; status: string }) => [h.revision, h.status]),
    ).toEqual([
      [1, 'superseded'],
      [2, 'deployed'],
    ]);

    cluster.helmOk(['uninstall', release, '--namespace', ns, '--wait', '--timeout', '120s']);
    expect(cluster.kubectlOk(['get', kinds, '-n', ns, '-l', selector, '-o', 'name'])).toBe('');
    // Helm's own release records are gone too.
    expect(cluster.kubectlOk(['get', 'secrets', '-n', ns, '-l', 'owner=helm', '-o', 'name'])).toBe(
      '',
    );
    expect(cluster.helm(['status', release, '-n', ns]).status).not.toBe(0);
  });
});
