/**
 * security.* (TLS, mutual TLS, tokens) and the NetworkPolicies, as rendered objects: which
 * Secret each pod mounts and how (a read-only directory, never subPath, 0440, only the keys it
 * needs), the variables pointing at the files (the names the programs read), the generated
 * token Secret, the controller's probes under TLS, the helm test pod's credentials, the
 * schema rejecting bad combinations, and ci/security-values.yaml against the API validation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CHART,
  MONITORING_API_VERSIONS,
  ROOT,
  type K8sObject,
  byKind,
  env,
  one,
  render,
  renderNotes,
  renderRaw,
  run,
  validatorBin,
} from './support';

jest.setTimeout(60_000);

const FULL = 'cn-currency-nodes';
const CONTROLLER = `${FULL}-controller`;
const CLI = `${FULL}-cli`;
const TEST_POD = `${FULL}-test-nodes`;
const AUTH_SECRET = `${FULL}-auth`;
const SECURITY_VALUES = join(CHART, 'ci', 'security-values.yaml');

/** TLS with mutual TLS and roles, tokens generated (ci/security-values.yaml). */
const ALL_ON = {
  security: {
    tls: {
      enabled: true,
      existingSecret: 'cn-controller-tls',
      serverName: 'controller.example',
      mutual: {
        enabled: true,
        nodeSecret: 'cn-node-client-tls',
        cliSecret: 'cn-cli-client-tls',
        clientCertRoles: true,
      },
    },
    auth: { enabled: true },
  },
};
const TLS_AND_TOKENS = {
  security: {
    tls: { enabled: true, existingSecret: 'cn-controller-tls' },
    auth: { enabled: true, existingSecret: 'my-tokens' },
  },
};

const podSpec = (o: K8sObject): K8sObject => (o.kind === 'Pod' ? o.spec : o.spec.template.spec);
const podLabels = (o: K8sObject): Record<string, string> =>
  o.kind === 'Pod' ? o.metadata.labels : o.spec.template.metadata.labels;
const pods = (objs: K8sObject[]): K8sObject[] =>
  objs.filter((o) => o.kind === 'Pod' || o.kind === 'Deployment');
const nodeDeployments = (objs: K8sObject[]): K8sObject[] =>
  byKind(objs, 'Deployment').filter((d) => d.metadata.name.startsWith(`${FULL}-node-`));

/** A pod's secret volumes: volume name -> {secretName, mode, keys}. */
function secretVolumes(
  o: K8sObject,
): Record<string, { secret: string; mode: number; keys: string[] }> {
  const out: Record<string, { secret: string; mode: number; keys: string[] }> = {};
  for (const v of (podSpec(o).volumes ?? []) as K8sObject[]) {
    if (!v.secret) continue;
    out[v.name] = {
      secret: v.secret.secretName,
      mode: v.secret.defaultMode,
      keys: ((v.secret.items ?? []) as K8sObject[]).map((i) => {
        expect(i.path).toBe(i.key);
        return i.key as string;
      }),
    };
  }
  return out;
}

/** Mount path -> volume name of the container's secret mounts, checking each is read-only. */
function secretMounts(o: K8sObject, c: K8sObject): Record<string, string> {
  const secretNames = new Set(Object.keys(secretVolumes(o)));
  const out: Record<string, string> = {};
  for (const m of (c.volumeMounts ?? []) as K8sObject[]) {
    if (!secretNames.has(m.name)) continue;
    expect({ mount: m.mountPath, readOnly: m.readOnly }).toEqual({
      mount: m.mountPath,
      readOnly: true,
    });
    out[m.mountPath] = m.name;
  }
  return out;
}

/** Every variable of a container whose name mentions TLS or TOKEN. */
function securityEnv(c: K8sObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of (c.env ?? []) as K8sObject[]) {
    if (/TLS|TOKEN/.test(e.name)) out[e.name] = e.value ?? e.valueFrom;
  }
  return out;
}

describe('security off (the default)', () => {
  test('no Secret, no secret volume, no TLS or token variable anywhere; native gRPC probes', () => {
    const objs = render();
    expect(byKind(objs, 'Secret')).toEqual([]);
    for (const o of pods(objs)) {
      expect(secretVolumes(o)).toEqual({});
      for (const c of podSpec(o).containers as K8sObject[]) expect(securityEnv(c)).toEqual({});
    }
    const c = one(objs, 'Deployment', CONTROLLER).spec.template.spec.containers[0];
    expect(c.readinessProbe.grpc).toEqual({ port: 5160 });
  });
});

describe('TLS, mutual TLS with certificate roles, generated tokens', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: ALL_ON });
  });

  test('the controller mounts cert, key and client CA, and both token files; its variables point at them', () => {
    const d = one(objs, 'Deployment', CONTROLLER);
    const c = d.spec.template.spec.containers[0];
    expect(secretVolumes(d)).toEqual({
      tls: { secret: 'cn-controller-tls', mode: 0o440, keys: ['tls.crt', 'tls.key', 'ca.crt'] },
      auth: { secret: AUTH_SECRET, mode: 0o440, keys: ['node-token', 'cli-token'] },
    });
    expect(secretMounts(d, c)).toEqual({
      '/etc/currency-nodes/tls': 'tls',
      '/etc/currency-nodes/auth': 'auth',
    });
    expect(securityEnv(c)).toEqual({
      CONTROLLER_TLS_CERT_FILE: '/etc/currency-nodes/tls/tls.crt',
      CONTROLLER_TLS_KEY_FILE: '/etc/currency-nodes/tls/tls.key',
      CONTROLLER_TLS_CLIENT_CA_FILE: '/etc/currency-nodes/tls/ca.crt',
      CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true',
      CONTROLLER_NODE_TOKENS_FILE: '/etc/currency-nodes/auth/node-token',
      CONTROLLER_CLI_TOKENS_FILE: '/etc/currency-nodes/auth/cli-token',
    });
  });

  test('every node group gets only the CA, its client certificate and the node token', () => {
    const groups = nodeDeployments(objs);
    expect(groups.length).toBeGreaterThanOrEqual(2);
    for (const d of groups) {
      const c = d.spec.template.spec.containers[0];
      expect(secretVolumes(d)).toEqual({
        'tls-ca': { secret: 'cn-controller-tls', mode: 0o440, keys: ['ca.crt'] },
        'client-tls': { secret: 'cn-node-client-tls', mode: 0o440, keys: ['tls.crt', 'tls.key'] },
        auth: { secret: AUTH_SECRET, mode: 0o440, keys: ['node-token'] },
      });
      expect(secretMounts(d, c)).toEqual({
        '/etc/currency-nodes/tls': 'tls-ca',
        '/etc/currency-nodes/client-tls': 'client-tls',
        '/etc/currency-nodes/auth': 'auth',
      });
      expect(securityEnv(c)).toEqual({
        NODE_TLS_CA_FILE: '/etc/currency-nodes/tls/ca.crt',
        NODE_TLS_SERVER_NAME: 'controller.example',
        NODE_TLS_CERT_FILE: '/etc/currency-nodes/client-tls/tls.crt',
        NODE_TLS_KEY_FILE: '/etc/currency-nodes/client-tls/tls.key',
        NODE_TOKEN_FILE: '/etc/currency-nodes/auth/node-token',
      });
    }
  });

  test('security.auth.nodeTokensKey: the controller reads the node tokens file (bound lines) from its own key; node pods still get only the token they send', () => {
    const bound = render({
      values: {
        security: {
          ...TLS_AND_TOKENS.security,
          auth: { ...TLS_AND_TOKENS.security.auth, nodeTokensKey: 'node-tokens' },
        },
      },
    });
    const d = one(bound, 'Deployment', CONTROLLER);
    expect(secretVolumes(d).auth).toEqual({
      secret: 'my-tokens',
      mode: 0o440,
      keys: ['node-tokens', 'cli-token'],
    });
    expect(securityEnv(d.spec.template.spec.containers[0]).CONTROLLER_NODE_TOKENS_FILE).toBe(
      '/etc/currency-nodes/auth/node-tokens',
    );
    for (const n of nodeDeployments(bound))
      expect(secretVolumes(n).auth).toEqual({
        secret: 'my-tokens',
        mode: 0o440,
        keys: ['node-token'],
      });
    expect(() =>
      render({
        values: { security: { auth: { enabled: true, nodeTokensKey: '../etc/passwd' } } },
      }),
    ).toThrow(/nodeTokensKey/);
    // The generated Secret has no such key: the pod would never start.
    expect(() =>
      render({ values: { security: { auth: { enabled: true, nodeTokensKey: 'node-tokens' } } } }),
    ).toThrow(/security\.auth\.nodeTokensKey: "node-tokens".*existingSecret/);
  });

  test('the CLI pod and the helm test pod get only the CA, the CLI certificate and the CLI token', () => {
    for (const o of [one(objs, 'Deployment', CLI), one(objs, 'Pod', TEST_POD)]) {
      const c = podSpec(o).containers[0];
      expect(secretVolumes(o)).toEqual({
        'tls-ca': { secret: 'cn-controller-tls', mode: 0o440, keys: ['ca.crt'] },
        'client-tls': { secret: 'cn-cli-client-tls', mode: 0o440, keys: ['tls.crt', 'tls.key'] },
        auth: { secret: AUTH_SECRET, mode: 0o440, keys: ['cli-token'] },
      });
      expect(secretMounts(o, c)).toEqual({
        '/etc/currency-nodes/tls': 'tls-ca',
        '/etc/currency-nodes/client-tls': 'client-tls',
        '/etc/currency-nodes/auth': 'auth',
      });
      expect(securityEnv(c)).toEqual({
        CLI_TLS_CA_FILE: '/etc/currency-nodes/tls/ca.crt',
        CLI_TLS_SERVER_NAME: 'controller.example',
        CLI_TLS_CERT_FILE: '/etc/currency-nodes/client-tls/tls.crt',
        CLI_TLS_KEY_FILE: '/etc/currency-nodes/client-tls/tls.key',
        CLI_TOKEN_FILE: '/etc/currency-nodes/auth/cli-token',
      });
      expect(env(c, 'CLI_CONTROLLER_ADDR')).toBe(`${CONTROLLER}:5160`);
    }
  });

  test('no mount anywhere uses subPath (it would never see a rotated Secret), and fsGroup 1000 owns the files', () => {
    for (const o of pods(objs)) {
      const spec = podSpec(o);
      expect(spec.securityContext.fsGroup).toBe(1000);
      for (const c of spec.containers as K8sObject[]) {
        for (const m of (c.volumeMounts ?? []) as K8sObject[]) {
          expect({ pod: o.metadata.name, m }).toEqual({
            pod: o.metadata.name,
            m: expect.not.objectContaining({ subPath: expect.anything() }),
          });
          expect(m).not.toHaveProperty('subPathExpr');
        }
      }
    }
  });

  test('no token, key or certificate is a plain value in any environment', () => {
    for (const o of pods(objs)) {
      for (const c of podSpec(o).containers as K8sObject[]) {
        for (const e of (c.env ?? []) as K8sObject[]) {
          if (/TLS|TOKEN/.test(e.name)) {
            expect({ name: e.name, value: e.value }).toEqual({
              name: e.name,
              value: expect.stringMatching(/^(\/etc\/currency-nodes\/|true$|controller\.example$)/),
            });
          }
          expect(e.name).not.toMatch(/^(NODE|CLI)_TOKEN$|^CONTROLLER_(NODE|CLI)_TOKEN$/);
        }
      }
    }
  });

  test('the generated token Secret holds two random 48-character tokens', () => {
    const s = one(objs, 'Secret', AUTH_SECRET);
    expect(s.type).toBe('Opaque');
    expect(Object.keys(s.data).sort()).toEqual(['cli-token', 'node-token']);
    const node = Buffer.from(s.data['node-token'] as string, 'base64').toString();
    const cli = Buffer.from(s.data['cli-token'] as string, 'base64').toString();
    expect(node).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(cli).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(node).not.toBe(cli);
    // Kept across upgrades by lookup (a cluster is needed to see that; see README).
    const template = readFileSync(join(CHART, 'templates', 'auth-secret.yaml'), 'utf8');
    expect(template).toMatch(/lookup "v1" "Secret" \.Release\.Namespace \$name/);
  });

  test('with TLS the controller probes HTTP /healthz and /readyz on 9464 (kubelet gRPC probes cannot do TLS)', () => {
    const c = one(objs, 'Deployment', CONTROLLER).spec.template.spec.containers[0];
    expect(c.startupProbe.grpc).toBeUndefined();
    expect(c.readinessProbe.grpc).toBeUndefined();
    expect(c.livenessProbe.grpc).toBeUndefined();
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.ports).toContainEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
    // A new leader gets Service traffic within a second of leading.
    expect(c.readinessProbe).toMatchObject({ periodSeconds: 1, failureThreshold: 2 });
  });

  test('NOTES.txt says what is on and that the CLI command works as is', () => {
    const notes = renderNotes({ values: ALL_ON });
    expect(notes).toContain(
      `gRPC security: TLS on (Secret cn-controller-tls, mutual TLS with certificate roles), tokens on (Secret ${AUTH_SECRET}).`,
    );
    expect(notes).toContain(`kubectl exec deploy/${CLI} -- currency-cli controller nodes`);
    expect(notes).not.toContain('WARNING');
    expect(renderNotes({ values: { security: { auth: { enabled: true } } } })).toContain(
      'WARNING: tokens without TLS travel in plaintext',
    );
  });
});

describe('TLS and an existing token Secret, without mutual TLS', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: TLS_AND_TOKENS });
  });

  test('no Secret is generated; every pod mounts the existing one', () => {
    expect(byKind(objs, 'Secret')).toEqual([]);
    for (const o of pods(objs)) expect(secretVolumes(o).auth.secret).toBe('my-tokens');
  });

  test('the controller gets no client CA, the clients no certificate or server name', () => {
    const d = one(objs, 'Deployment', CONTROLLER);
    expect(secretVolumes(d).tls.keys).toEqual(['tls.crt', 'tls.key']);
    const cEnv = securityEnv(d.spec.template.spec.containers[0]);
    expect(Object.keys(cEnv).sort()).toEqual([
      'CONTROLLER_CLI_TOKENS_FILE',
      'CONTROLLER_NODE_TOKENS_FILE',
      'CONTROLLER_TLS_CERT_FILE',
      'CONTROLLER_TLS_KEY_FILE',
    ]);
    for (const n of nodeDeployments(objs)) {
      expect(Object.keys(securityEnv(n.spec.template.spec.containers[0])).sort()).toEqual([
        'NODE_TLS_CA_FILE',
        'NODE_TOKEN_FILE',
      ]);
      expect(Object.keys(secretVolumes(n)).sort()).toEqual(['auth', 'tls-ca']);
    }
    const cli = one(objs, 'Deployment', CLI);
    expect(Object.keys(securityEnv(cli.spec.template.spec.containers[0])).sort()).toEqual([
      'CLI_TLS_CA_FILE',
      'CLI_TOKEN_FILE',
    ]);
  });

  test('tokens alone (no TLS) keep the native gRPC probes and mount only the tokens', () => {
    const o = render({ values: { security: { auth: { enabled: true } } } });
    const d = one(o, 'Deployment', CONTROLLER);
    expect(d.spec.template.spec.containers[0].readinessProbe.grpc).toEqual({ port: 5160 });
    expect(Object.keys(secretVolumes(d))).toEqual(['auth']);
    expect(one(o, 'Secret', AUTH_SECRET)).toBeDefined();
  });
});

describe('the metrics port closed by a web config (security.metrics)', () => {
  const METRICS = {
    webConfigSecret: 'cn-metrics-web',
    tls: true,
    scrape: {
      secret: 'cn-prometheus-scrape',
      serverName: 'metrics.example',
      clientCertificate: true,
      basicAuth: true,
    },
  };
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({
      values: { security: { ...ALL_ON.security, metrics: METRICS } },
      apiVersions: MONITORING_API_VERSIONS,
    });
  });

  test('the controller and every node mount the whole web config Secret and point METRICS_WEB_CONFIG_FILE at it; the CLI does not', () => {
    for (const d of [one(objs, 'Deployment', CONTROLLER), ...nodeDeployments(objs)]) {
      const c = d.spec.template.spec.containers[0];
      expect(secretVolumes(d)['metrics-web']).toEqual({
        secret: 'cn-metrics-web',
        mode: 0o440,
        keys: [],
      });
      expect(secretMounts(d, c)['/etc/currency-nodes/metrics-web']).toBe('metrics-web');
      expect(env(c, 'METRICS_WEB_CONFIG_FILE')).toBe(
        '/etc/currency-nodes/metrics-web/web-config.yml',
      );
      // The kubelet has no client certificate or password: the probes stay open, over HTTPS.
      expect(env(c, 'METRICS_PROBES_OPEN')).toBe('true');
      expect(c.readinessProbe.httpGet).toMatchObject({ port: 'metrics', scheme: 'HTTPS' });
      expect(c.livenessProbe.httpGet).toMatchObject({ port: 'metrics', scheme: 'HTTPS' });
    }
    for (const o of [one(objs, 'Deployment', CLI), one(objs, 'Pod', TEST_POD)]) {
      expect(secretVolumes(o)['metrics-web']).toBeUndefined();
      expect(env(podSpec(o).containers[0], 'METRICS_WEB_CONFIG_FILE')).toBeUndefined();
    }
  });

  test('the ServiceMonitor and the PodMonitor scrape over HTTPS with tlsConfig and basicAuth from the scrape Secret', () => {
    const secret = (key: string) => ({ name: 'cn-prometheus-scrape', key });
    const expected = {
      scheme: 'https',
      tlsConfig: {
        ca: { secret: secret('ca.crt') },
        cert: { secret: secret('tls.crt') },
        keySecret: secret('tls.key'),
        serverName: 'metrics.example',
      },
      basicAuth: { username: secret('username'), password: secret('password') },
    };
    expect(one(objs, 'ServiceMonitor', CONTROLLER).spec.endpoints[0]).toMatchObject(expected);
    expect(one(objs, 'PodMonitor', `${FULL}-node`).spec.podMetricsEndpoints[0]).toMatchObject(
      expected,
    );
  });

  test('auth.require=both sets CONTROLLER_AUTH_REQUIRE; either (the default) sets nothing', () => {
    const both = render({
      values: { security: { ...ALL_ON.security, auth: { enabled: true, require: 'both' } } },
    });
    const c = (o: K8sObject[]) => one(o, 'Deployment', CONTROLLER).spec.template.spec.containers[0];
    expect(env(c(both), 'CONTROLLER_AUTH_REQUIRE')).toBe('both');
    expect(env(c(objs), 'CONTROLLER_AUTH_REQUIRE')).toBeUndefined();
  });

  test('a protected port with a monitor but no scrape Secret is refused at render (its targets would be down)', () => {
    expect(() =>
      render({
        values: { security: { metrics: { webConfigSecret: 'cn-metrics-web', tls: true } } },
        apiVersions: MONITORING_API_VERSIONS,
      }),
    ).toThrow(/security\.metrics\.scrape\.secret/);
    // Without the monitoring CRDs no monitor is rendered: nothing to refuse; nor with a
    // PodMonitor only and no node group (the PodMonitor is not rendered then).
    expect(() =>
      render({ values: { security: { metrics: { webConfigSecret: 'cn-metrics-web' } } } }),
    ).not.toThrow();
    expect(() =>
      render({
        values: {
          nodeGroups: [],
          tests: { enabled: false },
          metrics: { serviceMonitor: { enabled: false } },
          security: { metrics: { webConfigSecret: 'cn-metrics-web' } },
        },
        apiVersions: MONITORING_API_VERSIONS,
      }),
    ).not.toThrow();
  });

  test('scrape annotations: "auto" leaves a protected port alone (annotation scrapers carry no credentials); "always" says https', () => {
    const annotations = (mode: string) =>
      render({
        values: {
          metrics: { scrapeAnnotations: mode },
          security: { metrics: { webConfigSecret: 'cn-metrics-web', tls: true } },
        },
      })
        .filter((o) => o.kind === 'Deployment' && o.metadata.name !== CLI)
        .map((d) => d.spec.template.metadata.annotations ?? {});
    expect(annotations('auto').length).toBeGreaterThan(1);
    for (const a of annotations('auto')) expect(a['prometheus.io/scrape']).toBeUndefined();
    expect(annotations('always').length).toBeGreaterThan(1);
    for (const a of annotations('always'))
      expect(a).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/scheme': 'https' });
  });

  test('without it the metrics port is plain HTTP: probes and monitors say http, no credentials', () => {
    const plain = render({ apiVersions: MONITORING_API_VERSIONS });
    const ep = one(plain, 'ServiceMonitor', CONTROLLER).spec.endpoints[0];
    expect(ep.scheme).toBe('http');
    expect([ep.tlsConfig, ep.basicAuth]).toEqual([undefined, undefined]);
    for (const d of nodeDeployments(plain)) {
      const c = d.spec.template.spec.containers[0];
      expect(c.readinessProbe.httpGet.scheme).toBeUndefined();
      expect(env(c, 'METRICS_WEB_CONFIG_FILE')).toBeUndefined();
    }
  });
});

describe('values.schema.json rejects bad security combinations', () => {
  const rejects: [string, unknown, RegExp[]][] = [
    [
      'TLS without existingSecret',
      { security: { tls: { enabled: true } } },
      [/\/security\/tls\/existingSecret/, /minLength: got 0, want 1/],
    ],
    [
      'mutual TLS without TLS',
      {
        security: {
          tls: { existingSecret: 's', mutual: { enabled: true, nodeSecret: 'n', cliSecret: 'c' } },
        },
      },
      [/\/security\/tls\/enabled/, /value must be true/],
    ],
    [
      'mutual TLS without the client certificates',
      { security: { tls: { enabled: true, existingSecret: 's', mutual: { enabled: true } } } },
      [/\/security\/tls\/mutual\/nodeSecret/],
    ],
    [
      'mutual TLS without the CLI certificate',
      {
        security: {
          tls: { enabled: true, existingSecret: 's', mutual: { enabled: true, nodeSecret: 'n' } },
        },
      },
      [/\/security\/tls\/mutual\/cliSecret/],
    ],
    [
      'certificate roles without mutual TLS',
      {
        security: {
          tls: { enabled: true, existingSecret: 's', mutual: { clientCertRoles: true } },
        },
      },
      [/\/security\/tls\/mutual\/enabled/, /value must be true/],
    ],
    [
      'a Secret name that is not a DNS subdomain',
      { security: { auth: { enabled: true, existingSecret: 'My_Tokens' } } },
      [/\/security\/auth\/existingSecret/, /does not match pattern/],
    ],
    [
      'an unknown security key (a token as a plain value)',
      { security: { auth: { enabled: true, nodeToken: 'abcdefghijklmnopqrstuvwxyz' } } },
      [/\/security\/auth/, /additional properties 'nodeToken' not allowed/],
    ],
    [
      'auth.require other than either/both',
      { security: { auth: { enabled: true, require: 'all' } } },
      [/\/security\/auth\/require/],
    ],
    [
      'auth.require=both without certificate roles',
      { security: { auth: { enabled: true, require: 'both' } } },
      [/\/security\/tls/],
    ],
    [
      'metrics.tls without a web config Secret',
      { security: { metrics: { tls: true } } },
      [/\/security\/metrics\/webConfigSecret/],
    ],
    [
      'scrape credentials without the scrape Secret',
      { security: { metrics: { webConfigSecret: 'w', scrape: { basicAuth: true } } } },
      [/\/security\/metrics\/scrape\/secret/],
    ],
  ];
  test.each(rejects)('%s', (_what, values, patterns) => {
    const r = renderRaw({ values });
    expect(r.status).not.toBe(0);
    for (const p of patterns) expect(r.stderr).toMatch(p);
  });
});

describe('ci/security-values.yaml', () => {
  test('passes the API validation at the restricted Pod Security level, Secret included', () => {
    const r = renderRaw({ valuesFiles: [SECURITY_VALUES], apiVersions: MONITORING_API_VERSIONS });
    expect(r.status).toBe(0);
    const v = run(validatorBin(), ['--pod-security=restricted', '-'], r.stdout);
    const out = v.stdout + v.stderr;
    expect(out).toMatch(/document\(s\) checked, 0 invalid$/m);
    expect(out).toMatch(/^ok +\S+ v1\/Secret cn-currency-nodes-auth$/m);
    expect(out).toMatch(/^ok +\S+ networking\.k8s\.io\/v1\/NetworkPolicy /m);
    expect(v.status).toBe(0);
  });

  test('the ci variant and docs/security.md use the variable names the programs read', () => {
    // Every variable the chart sets for security appears in docs/configuration.md's tables.
    const readme = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
    const objs = render({ valuesFiles: [SECURITY_VALUES] });
    const names = new Set<string>();
    for (const o of pods(objs))
      for (const c of podSpec(o).containers as K8sObject[])
        for (const n of Object.keys(securityEnv(c))) names.add(n);
    expect(names.size).toBeGreaterThanOrEqual(15);
    for (const n of names)
      expect({ n, documented: readme.includes(n) }).toEqual({ n, documented: true });
  });
});

describe('NetworkPolicy (with security on)', () => {
  let objs: K8sObject[];
  let controllerPolicy: K8sObject;
  let workersPolicy: K8sObject;
  const MONITORING = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
  };
  beforeAll(() => {
    objs = render({ valuesFiles: [SECURITY_VALUES] });
    controllerPolicy = one(objs, 'NetworkPolicy', CONTROLLER);
    workersPolicy = one(objs, 'NetworkPolicy', `${FULL}-workers`);
  });

  const matches = (sel: K8sObject, labels: Record<string, string>): boolean => {
    for (const [k, v] of Object.entries((sel.matchLabels ?? {}) as Record<string, string>))
      if (labels[k] !== v) return false;
    for (const e of (sel.matchExpressions ?? []) as K8sObject[]) {
      if (e.operator !== 'In') throw new Error(`operator ${e.operator} not handled here`);
      if (!(e.values as string[]).includes(labels[e.key])) return false;
    }
    return true;
  };

  test('the controller policy selects the controller pod only, and restricts ingress only', () => {
    expect(controllerPolicy.spec.policyTypes).toEqual(['Ingress']);
    for (const o of pods(objs)) {
      const isController = o.metadata.name === CONTROLLER;
      expect({
        pod: o.metadata.name,
        selected: matches(controllerPolicy.spec.podSelector, podLabels(o)),
      }).toEqual({
        pod: o.metadata.name,
        selected: isController,
      });
    }
  });

  test('gRPC (5160) is reachable only from this release’s pods: every node group, the CLI, the test pod', () => {
    const rules = controllerPolicy.spec.ingress as K8sObject[];
    const grpcRules = rules.filter((r) => (r.ports as K8sObject[]).some((p) => p.port === 'grpc'));
    expect(grpcRules).toHaveLength(1);
    const [rule] = grpcRules;
    expect(rule.from).toHaveLength(1);
    const peer = rule.from[0];
    // A podSelector alone: pods of this namespace; no namespaceSelector, no ipBlock.
    expect(Object.keys(peer)).toEqual(['podSelector']);
    expect(peer.podSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'currency-nodes',
      'app.kubernetes.io/instance': 'cn',
    });
    for (const o of pods(objs)) {
      expect({ pod: o.metadata.name, allowed: matches(peer.podSelector, podLabels(o)) }).toEqual({
        pod: o.metadata.name,
        allowed: true,
      });
    }
    // Another release's pods (or anything else in the namespace) are not.
    expect(
      matches(peer.podSelector, {
        'app.kubernetes.io/name': 'currency-nodes',
        'app.kubernetes.io/instance': 'other',
        'app.kubernetes.io/component': 'node',
      }),
    ).toBe(false);
    expect(matches(peer.podSelector, { app: 'prometheus' })).toBe(false);
  });

  test('the monitoring peers reach the metrics port (9464) only, nothing else is allowed', () => {
    const rules = controllerPolicy.spec.ingress as K8sObject[];
    expect(rules).toHaveLength(2);
    expect(rules[1]).toEqual({ from: [MONITORING], ports: [{ port: 'metrics', protocol: 'TCP' }] });
    for (const r of rules) {
      for (const p of r.ports as K8sObject[]) expect(['grpc', 'metrics']).toContain(p.port);
      for (const f of r.from as K8sObject[]) expect(f).not.toHaveProperty('ipBlock');
    }
    // The port names exist on the controller container.
    const ports = one(objs, 'Deployment', CONTROLLER).spec.template.spec.containers[0].ports;
    expect(ports.map((p: K8sObject) => `${p.name}:${p.containerPort}`).sort()).toEqual([
      'grpc:5160',
      'metrics:9464',
    ]);
  });

  test('nodes and the CLI take only metrics from the monitoring peers', () => {
    expect(workersPolicy.spec.policyTypes).toEqual(['Ingress']);
    expect(workersPolicy.spec.ingress).toEqual([
      { from: [MONITORING], ports: [{ port: 'metrics', protocol: 'TCP' }] },
    ]);
    for (const o of pods(objs)) {
      const component = podLabels(o)['app.kubernetes.io/component'];
      expect({
        pod: o.metadata.name,
        selected: matches(workersPolicy.spec.podSelector, podLabels(o)),
      }).toEqual({
        pod: o.metadata.name,
        selected: component === 'node' || component === 'cli',
      });
    }
  });
});
