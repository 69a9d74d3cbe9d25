/**
 * Every manifest the chart renders, with the default values and every ci/*-values.yaml
 * variant (monitoring CRDs served), is valid against the Kubernetes API: tools/k8s-validate
 * runs the API server's own defaulting and validation (and strict decoding into the
 * prometheus-operator types) offline. It must also fail on bad manifests, or passing
 * proves nothing.
 */
import { basename } from 'node:path';
import {
  MONITORING_API_VERSIONS,
  ciValuesFiles,
  parseManifests,
  renderRaw,
  run,
  validatorBin,
} from './support';

jest.setTimeout(60_000);

// Every pod the chart makes also meets the Pod Security Standards' restricted level.
const RESTRICTED = ['--pod-security=restricted'];

function validate(yamlText: string, flags: string[] = []): { status: number; out: string } {
  const r = run(validatorBin(), [...flags, '-'], yamlText);
  return { status: r.status, out: r.stdout + r.stderr };
}

function rendered(valuesFiles: string[] = []): string {
  const r = renderRaw({ valuesFiles, apiVersions: MONITORING_API_VERSIONS });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

describe('rendered manifests are valid Kubernetes objects', () => {
  test('default values (every kind the chart renders)', () => {
    const text = rendered();
    const count = parseManifests(text).length;
    expect(count).toBeGreaterThanOrEqual(14);
    const { status, out } = validate(text, RESTRICTED);
    expect(out).toContain(`\n${count} document(s) checked, 0 invalid\n`);
    expect(status).toBe(0);
    for (const kind of [
      'apps/v1/Deployment',
      'v1/Service',
      'v1/ServiceAccount',
      'v1/ConfigMap',
      'v1/Pod',
      'policy/v1/PodDisruptionBudget',
      'monitoring.coreos.com/v1/ServiceMonitor',
      'monitoring.coreos.com/v1/PodMonitor',
      'monitoring.coreos.com/v1/PrometheusRule',
    ]) {
      expect(out).toMatch(new RegExp(`^ok +\\S+ ${kind.replace(/[./]/g, '\\$&')} `, 'm'));
    }
  });

  test.each(ciValuesFiles().map((f) => [basename(f), f]))('ci/%s', (_name, file) => {
    const { status, out } = validate(rendered([file]), RESTRICTED);
    expect(out).toMatch(/document\(s\) checked, 0 invalid$/m);
    expect(out).not.toContain('INVALID');
    expect(status).toBe(0);
  });

  test('the longest names allowed (a 53-character release, a 20-character group) stay valid', () => {
    const r = renderRaw({
      release: 'r'.repeat(53),
      values: { nodeGroups: [{ name: 'g'.repeat(20), replicas: 1, pairs: ['A_B'] }] },
      apiVersions: MONITORING_API_VERSIONS,
    });
    expect(r.status).toBe(0);
    const { status, out } = validate(r.stdout, RESTRICTED);
    // The API server warns about names that are not DNS labels; warnings fail here.
    expect(out).not.toContain('INVALID');
    expect(out).toMatch(/Deployment r{37}-node-g{20}\n/);
    expect(status).toBe(0);
  });

  test('NetworkPolicies (hardened values) are among the validated kinds', () => {
    const file = ciValuesFiles().find((f) => f.endsWith('hardened-values.yaml'));
    expect(file).toBeDefined();
    const { out } = validate(rendered([file as string]));
    expect(out).toMatch(/^ok +\S+ networking\.k8s\.io\/v1\/NetworkPolicy /m);
  });
});

describe('the validator rejects invalid manifests', () => {
  const deployment = (patch: { spec?: string; meta?: string } = {}): string => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
${patch.meta ?? ''}
spec:
  selector:
    matchLabels: {app: d}
  template:
    metadata:
      labels: {app: d}
    spec:
${
  patch.spec ??
  `      containers:
        - name: c
          image: busybox`
}
`;

  test('a valid Deployment passes (the fixture itself is fine)', () => {
    const { status, out } = validate(deployment());
    expect(out).toContain('1 document(s) checked, 0 invalid');
    expect(status).toBe(0);
  });

  const bad: [string, string, RegExp][] = [
    [
      'an unknown field',
      deployment({
        spec: `      containers:
        - name: c
          image: busybox
          imagePulPolicy: Always`,
      }),
      /unknown field "spec\.template\.spec\.containers\[0\]\.imagePulPolicy"/,
    ],
    [
      'a field of the wrong type',
      deployment({
        spec: `      containers:
        - name: c
          image: busybox
          ports:
            - containerPort: "http"`,
      }),
      /containerPort/,
    ],
    [
      'a container without an image',
      deployment({ spec: `      containers:\n        - name: c` }),
      /spec\.template\.spec\.containers\[0\]\.image: Required value/,
    ],
    [
      'a selector that does not match the pod labels',
      deployment().replace('labels: {app: d}', 'labels: {app: other}'),
      /`selector` does not match template `labels`/,
    ],
    [
      'an invalid label value',
      deployment({ meta: '  labels: {team: "a b"}' }),
      /metadata\.labels: Invalid value: "a b"/,
    ],
    [
      'a port out of range',
      deployment({
        spec: `      containers:
        - name: c
          image: busybox
          ports:
            - containerPort: 70000`,
      }),
      /containerPort: Invalid value: 70000/,
    ],
    [
      'a probe with two handlers',
      deployment({
        spec: `      containers:
        - name: c
          image: busybox
          readinessProbe:
            grpc: {port: 5160}
            tcpSocket: {port: 5160}`,
      }),
      /readinessProbe.*may not specify more than 1 handler type/,
    ],
    [
      'a duplicate key',
      deployment().replace('  name: d\n', '  name: d\n  name: e\n'),
      /YAML:[\s\S]*key "name" already set in map/,
    ],
    [
      'an unknown kind',
      'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n',
      /unknown apiVersion\/kind example\.com\/v1, Kind=Widget/,
    ],
    [
      'a PodDisruptionBudget with both minAvailable and maxUnavailable',
      `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: p}
spec:
  minAvailable: 1
  maxUnavailable: 1
  selector: {matchLabels: {app: d}}
`,
      /minAvailable and maxUnavailable cannot be both set/,
    ],
    [
      'a ServiceMonitor with an unknown field',
      `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: s}
spec:
  selector: {matchLabels: {app: d}}
  endpoints:
    - port: metrics
      intervall: 30s
`,
      /unknown field "spec\.endpoints\[0\]\.intervall"/,
    ],
    [
      'a ServiceMonitor against its CRD schema (a duration Prometheus cannot parse)',
      `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: s}
spec:
  selector: {matchLabels: {app: d}}
  endpoints:
    - port: metrics
      interval: 30 seconds
`,
      /spec\.endpoints\[0\]\.interval: Invalid value: "30 seconds": .*should match/,
    ],
    [
      'a PrometheusRule against its CRD schema (a `for` that is no duration)',
      `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: r}
spec:
  groups:
    - name: g
      rules:
        - alert: A
          expr: up == 0
          for: soon
`,
      /spec\.groups\[0\]\.rules\[0\]\.for: Invalid value: "soon": .*should match/,
    ],
    [
      'a Service without ports',
      'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: d}\n',
      /spec\.ports: Required value/,
    ],
  ];

  test.each(bad)('%s', (_what, manifest, message) => {
    const { status, out } = validate(manifest);
    expect(out).toContain('INVALID');
    expect(out).toMatch(message);
    expect(status).toBe(1);
  });

  test('a pod template below the restricted Pod Security Standard (the chart with hardening undone)', () => {
    const r = renderRaw({
      values: {
        podSecurityContext: { runAsNonRoot: false, seccompProfile: null },
        containerSecurityContext: { allowPrivilegeEscalation: true, capabilities: null },
      },
    });
    expect(r.status).toBe(0);
    // Valid API objects, so without the flag they pass ...
    expect(validate(r.stdout).status).toBe(0);
    // ... but not the restricted level.
    const { status, out } = validate(r.stdout, RESTRICTED);
    expect(out).toMatch(/INVALID \S+ apps\/v1\/Deployment cn-currency-nodes-controller/);
    expect(out).toContain('pod security "restricted": allowPrivilegeEscalation != false');
    expect(out).toContain('pod security "restricted": unrestricted capabilities');
    expect(out).toContain('pod security "restricted": runAsNonRoot != true');
    expect(status).toBe(1);
  });

  test('an unknown --pod-security level is bad usage', () => {
    const { status, out } = validate('', ['--pod-security=strict']);
    expect(out).toContain('"strict" is not baseline or restricted');
    expect(status).toBe(2);
  });

  test('one bad document among good ones fails the whole input', () => {
    const good = rendered();
    const text = good + '\n---\n' + deployment({ spec: `      containers:\n        - name: c` });
    const { status, out } = validate(text);
    expect(out).toContain(`\n${parseManifests(good).length + 1} document(s) checked, 1 invalid\n`);
    expect(status).toBe(1);
  });

  test('an input with no object at all is an error, not a pass', () => {
    const { status, out } = validate('# nothing here\n---\n');
    expect(out).toContain('no Kubernetes object in the input');
    expect(status).toBe(2);
  });
});
