/**
 * Template unit tests (`helm template`). Monitoring: ServiceMonitor, PodMonitor and
 * PrometheusRule where the CRDs are served, scrape annotations otherwise, and the alerting
 * rules as the chart installs them.
 */
import { join } from 'node:path';
import { CONTROLLER, podAnnotations } from './template-fixtures';
import { CHART, MONITORING_API_VERSIONS, byKind, one, render, renderRaw } from './support';
import { type Rule, loadRules, scopeRuleExpr } from '../support/observability-promql';

jest.setTimeout(60_000);

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
