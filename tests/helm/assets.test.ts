/**
 * The chart ships copies of the observability assets (Helm reads only files inside the
 * chart): they must equal deploy/observability's, and what the chart renders from them
 * must equal the sources.
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CHART, MONITORING_API_VERSIONS, ROOT, byKind, one, render } from './support';

jest.setTimeout(60_000);

const OBS = join(ROOT, 'deploy', 'observability');
const DASHBOARDS = join(OBS, 'grafana', 'dashboards');
const RULES = join(OBS, 'prometheus', 'rules');
const SYNC = join(ROOT, 'scripts', 'sync-chart-assets.sh');

const list = (dir: string, suffix: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(suffix) && !f.endsWith('.test.yml'))
    .sort();

function sync(root: string, ...args: string[]): { status: number; out: string } {
  const r = spawnSync('bash', [join(root, 'scripts', 'sync-chart-assets.sh'), ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

test('the chart’s copies are up to date (else run scripts/sync-chart-assets.sh)', () => {
  const r = sync(ROOT, '--check');
  expect(r.out).toContain('chart assets up to date');
  expect(r.status).toBe(0);
  expect(list(join(CHART, 'files', 'dashboards'), '.json')).toEqual(list(DASHBOARDS, '.json'));
  expect(list(join(CHART, 'files', 'rules'), '.rules.yml')).toEqual(list(RULES, '.rules.yml'));
  expect(list(DASHBOARDS, '.json').length).toBeGreaterThan(0);
  expect(list(RULES, '.rules.yml').length).toBeGreaterThan(0);
});

test('every dashboard becomes a ConfigMap holding the source file byte for byte', () => {
  const objs = render();
  const cms = byKind(objs, 'ConfigMap');
  const files = list(DASHBOARDS, '.json');
  expect(cms).toHaveLength(files.length);
  for (const f of files) {
    const cm = cms.find((c) => Object.keys(c.data)[0] === f);
    expect(cm).toBeDefined();
    // `|-` strips the final newline; everything else is kept.
    expect(cm?.data[f]).toBe(readFileSync(join(DASHBOARDS, f), 'utf8').replace(/\n$/, ''));
  }
});

test('the PrometheusRule holds the source rule groups unchanged (their {{ $labels }} templates included) when not scoped to the namespace', () => {
  // Scoping, overrides and links are tests/helm/templates-monitoring.test.ts's; unscoped and
  // with the default links, the rules are the source's.
  const rule = one(
    render({
      apiVersions: MONITORING_API_VERSIONS,
      values: { metrics: { prometheusRule: { scopeToNamespace: false } } },
    }),
    'PrometheusRule',
    'cn-currency-nodes',
  );
  const groups = list(RULES, '.rules.yml').flatMap(
    (f) => (parse(readFileSync(join(RULES, f), 'utf8')) as { groups: unknown[] }).groups,
  );
  expect(groups.length).toBeGreaterThan(0);
  expect(rule.spec.groups).toEqual(groups);
  expect(JSON.stringify(rule.spec.groups)).toContain('{{ $labels.');
  // The rules select the job names the chart's monitors set.
  expect(JSON.stringify(rule.spec.groups)).toMatch(/job=\\"currency-(controller|node)\\"/);
});

test('the schema names exactly the alerts the rules define (metrics.prometheusRule.alerts)', () => {
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as {
    properties: {
      metrics: {
        properties: {
          prometheusRule: { properties: { alerts: { propertyNames: { enum: string[] } } } };
        };
      };
    };
  };
  const names = list(RULES, '.rules.yml').flatMap((f) =>
    (
      parse(readFileSync(join(RULES, f), 'utf8')) as { groups: { rules: { alert?: string }[] }[] }
    ).groups.flatMap((g) => g.rules.map((r) => r.alert ?? '')),
  );
  expect(
    [
      ...schema.properties.metrics.properties.prometheusRule.properties.alerts.propertyNames.enum,
    ].sort(),
  ).toEqual(names.filter(Boolean).sort());
});

describe('scripts/sync-chart-assets.sh', () => {
  let root: string;
  beforeEach(() => {
    // A scratch copy of the parts of the repository the script touches.
    root = mkdtempSync(join(tmpdir(), 'currency-nodes-sync-'));
    mkdirSync(join(root, 'scripts'));
    cpSync(SYNC, join(root, 'scripts', 'sync-chart-assets.sh'));
    cpSync(OBS, join(root, 'deploy', 'observability'), { recursive: true });
    cpSync(join(CHART, 'files'), join(root, 'deploy', 'helm', 'currency-nodes', 'files'), {
      recursive: true,
    });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  test('--check fails and names the file when a source changed, and a sync fixes it', () => {
    const [first] = list(DASHBOARDS, '.json');
    writeFileSync(
      join(root, 'deploy/observability/grafana/dashboards', first),
      '{"changed":true}\n',
    );
    const check = sync(root, '--check');
    expect(check.status).toBe(1);
    expect(check.out).toContain(`stale   deploy/helm/currency-nodes/files/dashboards/${first}`);
    expect(sync(root).status).toBe(0);
    expect(
      readFileSync(join(root, 'deploy/helm/currency-nodes/files/dashboards', first), 'utf8'),
    ).toBe('{"changed":true}\n');
    expect(sync(root, '--check').status).toBe(0);
  });

  test('a new rule file is copied, a removed one is removed, and rule tests stay behind', () => {
    const rules = join(root, 'deploy/observability/prometheus/rules');
    writeFileSync(join(rules, 'extra.rules.yml'), 'groups: []\n');
    const [firstRule] = list(RULES, '.rules.yml');
    rmSync(join(rules, firstRule));
    expect(sync(root, '--check').status).toBe(1);
    expect(sync(root).status).toBe(0);
    const copied = readdirSync(join(root, 'deploy/helm/currency-nodes/files/rules'));
    expect(copied).toContain('extra.rules.yml');
    expect(copied).not.toContain(firstRule);
    expect(copied.filter((f) => f.endsWith('.test.yml'))).toEqual([]);
  });
});
