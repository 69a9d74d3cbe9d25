/**
 * `helm lint --strict` over the default values and every ci/*-values.yaml variant, and the
 * values checks: values.schema.json and the chart's own `fail` checks reject bad values
 * with a message that names the value and what is wrong.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { CHART, ciValuesFiles, helm, renderRaw } from './support';

jest.setTimeout(60_000);

const GOOD_GROUP = { name: 'fx', replicas: 1, pairs: ['USD_HKD'] };

describe('helm lint --strict', () => {
  test('passes with the default values', () => {
    const r = helm(['lint', '--strict', CHART]);
    expect(r.stderr + r.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.status).toBe(0);
  });

  test('there are ci/*-values.yaml variants to lint', () => {
    expect(ciValuesFiles().map((f) => basename(f))).toEqual(
      expect.arrayContaining([
        'groups-values.yaml',
        'hardened-values.yaml',
        'minimal-values.yaml',
        'monitoring-values.yaml',
        'otel-values.yaml',
        'security-values.yaml',
      ]),
    );
  });

  test.each(ciValuesFiles().map((f) => [basename(f), f]))('passes with ci/%s', (_name, file) => {
    const r = helm(['lint', '--strict', CHART, '--values', file]);
    expect(r.stderr + r.stdout).toContain('0 chart(s) failed');
    expect(r.status).toBe(0);
  });

  test('fails on values the schema rejects (lint is not a no-op)', () => {
    const r = helm(['lint', '--strict', CHART, '--set', 'controller.streamsPerPair=0']);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('streamsPerPair');
  });
});

test('helm package ships the templates, schema, README and copied assets, and leaves ci/ out', () => {
  const dir = mkdtempSync(join(tmpdir(), 'currency-nodes-package-'));
  try {
    const r = helm(['package', CHART, '--destination', dir]);
    expect(r.status).toBe(0);
    const tgz = join(dir, 'currency-nodes-0.1.0.tgz');
    const list = spawnSync('tar', ['-tzf', tgz], { encoding: 'utf8', timeout: 30_000 });
    expect(list.status).toBe(0);
    const files = list.stdout.split('\n').filter(Boolean);
    expect(files).toEqual(
      expect.arrayContaining([
        'currency-nodes/Chart.yaml',
        'currency-nodes/values.yaml',
        'currency-nodes/values.schema.json',
        'currency-nodes/README.md',
        'currency-nodes/templates/NOTES.txt',
        'currency-nodes/templates/tests/test-nodes-listed.yaml',
        'currency-nodes/files/rules/currency-nodes.rules.yml',
      ]),
    );
    expect(
      files.filter((f) => f.startsWith('currency-nodes/files/dashboards/')).length,
    ).toBeGreaterThan(0);
    expect(files.filter((f) => f.startsWith('currency-nodes/ci/'))).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('installs on Kubernetes 1.27 (native gRPC probes are GA) and refuses older clusters', () => {
  expect(helm(['template', 'cn', CHART, '--kube-version', '1.27.0']).status).toBe(0);
  const r = helm(['template', 'cn', CHART, '--kube-version', '1.26.9']);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain('chart requires kubeVersion: >=1.27.0-0');
});

describe('values.schema.json rejects bad values with a clear message', () => {
  const rejects: [string, unknown, RegExp[]][] = [
    [
      'a pair like usd-hkd',
      { nodeGroups: [{ ...GOOD_GROUP, pairs: ['usd-hkd'] }] },
      [
        /\/nodeGroups\/0\/pairs\/0/,
        /'usd-hkd' does not match pattern '\^\[A-Z0-9\]\+_\[A-Z0-9\]\+\$'/,
      ],
    ],
    [
      'a pair without a quote currency',
      { nodeGroups: [{ ...GOOD_GROUP, pairs: ['USD'] }] },
      [/\/nodeGroups\/0\/pairs\/0/, /'USD' does not match pattern/],
    ],
    [
      'negative replicas',
      { nodeGroups: [{ ...GOOD_GROUP, replicas: -1 }] },
      [/\/nodeGroups\/0\/replicas/, /minimum: got -1, want 0/],
    ],
    [
      'a group with no pairs',
      { nodeGroups: [{ ...GOOD_GROUP, pairs: [] }] },
      [/\/nodeGroups\/0\/pairs/, /minItems: got 0, want 1/],
    ],
    [
      'an empty group',
      { nodeGroups: [{}] },
      [/\/nodeGroups\/0/, /missing properties 'name', 'replicas', 'pairs'/],
    ],
    [
      'the same pair twice in a group',
      { nodeGroups: [{ ...GOOD_GROUP, pairs: ['USD_HKD', 'USD_HKD'] }] },
      [/\/nodeGroups\/0\/pairs/, /items at 0 and 1 are equal/],
    ],
    [
      'a group name that is not a DNS label',
      { nodeGroups: [{ ...GOOD_GROUP, name: 'FX_Majors' }] },
      [/\/nodeGroups\/0\/name/, /'FX_Majors' does not match pattern/],
    ],
    [
      'a group name too long for the object names',
      { nodeGroups: [{ ...GOOD_GROUP, name: 'a'.repeat(21) }] },
      [/\/nodeGroups\/0\/name/, /maxLength: got 21, want 20/],
    ],
    [
      'an unknown key in a group (a typo)',
      { nodeGroups: [{ ...GOOD_GROUP, replica: 2 }] },
      [/\/nodeGroups\/0/, /additional properties 'replica' not allowed/],
    ],
    [
      'an unknown top-level key',
      { controler: {} },
      [/additional properties 'controler' not allowed/],
    ],
    [
      'a price interval that is neither N nor MIN-MAX',
      { node: { priceIntervalMs: 'fast' } },
      [/\/node\/priceIntervalMs/, /'fast' does not match pattern/],
    ],
    [
      'streamsPerPair 0',
      { controller: { streamsPerPair: 0 } },
      [/\/controller\/streamsPerPair/, /minimum: got 0, want 1/],
    ],
    [
      'a port out of range',
      { controller: { service: { grpcPort: 70000 } } },
      [/\/controller\/service\/grpcPort/, /maximum: got 70,?000, want 65,?535/],
    ],
    [
      'an unknown pull policy',
      { image: { pullPolicy: 'Sometimes' } },
      [/\/image\/pullPolicy/, /value must be one of 'Always', 'IfNotPresent', 'Never'/],
    ],
    [
      'an unknown scrapeAnnotations mode',
      { metrics: { scrapeAnnotations: 'yes' } },
      [/\/metrics\/scrapeAnnotations/, /value must be one of 'auto', 'always', 'never'/],
    ],
  ];

  test.each(rejects)('%s', (_what, values, messages) => {
    const r = renderRaw({ values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    for (const m of messages) expect(r.stderr).toMatch(m);
  });

  test('and accepts the boundaries: replicas 0, MIN-MAX and N intervals, digits in pairs', () => {
    const r = renderRaw({
      values: {
        node: { priceIntervalMs: 250 },
        nodeGroups: [
          { name: 'z', replicas: 0, pairs: ['BTC_USD', 'X1_Y2'] },
          { name: 'r', replicas: 1, pairs: ['A_B'], priceIntervalMs: '100-200' },
        ],
      },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe("the chart's own checks (what a schema cannot say)", () => {
  const fails: [string, unknown, string][] = [
    [
      'two groups with one name',
      { nodeGroups: [GOOD_GROUP, { ...GOOD_GROUP, pairs: ['BTC_USD'] }] },
      'nodeGroups[1].name: "fx" is used by more than one node group; names must be unique',
    ],
    [
      'a grace period shorter than the preStop pause',
      { controller: { preStopSleepSeconds: 30, terminationGracePeriodSeconds: 10 } },
      'controller.terminationGracePeriodSeconds (10) must be greater than controller.preStopSleepSeconds (30)',
    ],
    [
      'OTLP tracing without an endpoint',
      { otel: { enabled: true } },
      'otel.endpoint: required when otel.enabled is true',
    ],
    [
      'a price interval with MIN greater than MAX',
      { nodeGroups: [{ ...GOOD_GROUP, priceIntervalMs: '5000-100' }] },
      'nodeGroups[0] (fx): priceIntervalMs "5000-100" has MIN greater than MAX',
    ],
    [
      'the default price interval with MIN greater than MAX',
      { node: { priceIntervalMs: '9-1' } },
      'priceIntervalMs "9-1" has MIN greater than MAX',
    ],
    [
      'a helm test with no node group',
      { nodeGroups: [] },
      'tests.enabled: the helm test expects nodes, but nodeGroups is empty',
    ],
  ];
  test.each(fails)('%s', (_what, values, message) => {
    const r = renderRaw({ values });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});

describe('values documentation', () => {
  // Every leaf of values.yaml (maps walked, lists and empty maps as leaves) is in the
  // README's table, so that no value goes undocumented.
  test('README.md documents every value in values.yaml', () => {
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    const keys: string[] = [];
    const walk = (v: unknown, path: string, depth: number): void => {
      if (depth > 10) throw new Error(`values nested too deep at ${path}`);
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
        // Maps of settings passed through as-is are documented as one value.
        if (/(resources|SecurityContext|Probe|labels|requests|limits|matchLabels)$/.test(path)) {
          keys.push(path);
          return;
        }
        for (const [k, child] of Object.entries(v))
          walk(child, path ? `${path}.${k}` : k, depth + 1);
      } else {
        keys.push(path);
      }
    };
    walk(values, '', 0);
    expect(keys.length).toBeGreaterThan(50);
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const missing = keys.filter((k) => !readme.includes('`' + k + '`'));
    expect(missing).toEqual([]);
  });
});
