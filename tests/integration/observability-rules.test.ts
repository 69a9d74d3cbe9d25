/**
 * The Prometheus alerting rules (deploy/observability): promtool checks them and runs their
 * unit tests; every alert is documented, linked to the runbook and a dashboard, and scoped
 * so that two releases stay apart. The rules run against real programs in
 * observability-live.test.ts.
 *
 * Needs `bash scripts/setup/prometheus.sh` (promtool).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  RULES_DIR,
  RULES_FILE,
  ROOT,
  RULES_TEST_FILE,
  headingAnchor,
  loadDashboards,
  loadRules,
} from '../support/observability-promql';
import { requireTool, runToEnd } from '../support/observability-stack';

describe('alerting rules', () => {
  it('pass promtool check rules', async () => {
    const promtool = requireTool('promtool');
    const r = await runToEnd(promtool, ['check', 'rules', RULES_FILE], {}, 30_000);
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  it('pass their unit tests under promtool test rules', async () => {
    const promtool = requireTool('promtool');
    // Run from the rules folder: the test file names the rules file relative to it.
    const r = await runToEnd(
      'sh',
      ['-c', `cd "${RULES_DIR}" && "${promtool}" test rules "${RULES_TEST_FILE}"`],
      {},
      60_000,
    );
    expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
    expect(`${r.stdout}${r.stderr}`).not.toContain('FAILED');
    expect(r.code).toBe(0);
  });

  it('give every alert a severity, a summary, a description and a runbook hint', () => {
    const rules = loadRules();
    const alerts = rules.filter((r) => r.alert);
    expect(alerts.map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'CurrencyPairUnstreamed',
        'CurrencyNoNodesConnected',
        'CurrencyFailoverStorm',
        'CurrencyControllerDown',
        'CurrencyNodeReplaced',
        'CurrencyNodeIdentityRefused',
        'CurrencyStaleStreams',
        'CurrencyNoLeader',
      ]),
    );
    for (const a of alerts) {
      expect({ alert: a.alert, severity: a.labels?.severity }).toEqual({
        alert: a.alert,
        severity: expect.stringMatching(/^(critical|warning|info)$/),
      });
      for (const key of ['summary', 'description', 'runbook']) {
        expect({
          alert: a.alert,
          key,
          ok: (a.annotations?.[key] ?? '').trim().length > 10,
        }).toEqual({
          alert: a.alert,
          key,
          ok: true,
        });
      }
    }
  });

  it('link every alert to its own section of docs/runbook.md and to a dashboard of this project', () => {
    const runbook = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((m) => headingAnchor(m[1])),
    );
    const uids = new Set(loadDashboards().map((d) => d.dashboard.uid));
    for (const a of loadRules().filter((r) => r.alert)) {
      const url = a.annotations?.runbook_url ?? '';
      expect({ alert: a.alert, runbook_url: url }).toEqual({
        alert: a.alert,
        runbook_url: `docs/runbook.md#${a.alert!.toLowerCase()}`,
      });
      expect({ alert: a.alert, section: anchors.has(url.split('#')[1]) }).toEqual({
        alert: a.alert,
        section: true,
      });
      const d =
        /^http:\/\/localhost:3000\/d\/([\w-]+)\/[\w-]+\?var-namespace=\{\{ \$labels\.namespace \}\}$/.exec(
          a.annotations?.dashboard_url ?? '',
        );
      expect({ alert: a.alert, dashboard: d && uids.has(d[1]) }).toEqual({
        alert: a.alert,
        dashboard: true,
      });
    }
  });

  it('select by job everywhere and keep namespace in every aggregation (so releases stay apart)', () => {
    for (const r of loadRules()) {
      // The chart scopes rules by adding namespace beside each job matcher: every selector
      // must have one.
      const selectors = [...r.expr.matchAll(/[a-z_:]+\{([^}]*)\}/g)].map((m) => m[1]);
      expect(selectors.length).toBeGreaterThan(0);
      for (const sel of selectors) {
        expect({ rule: r.alert, sel, job: /job="currency-(controller|node)"/.test(sel) }).toEqual({
          rule: r.alert,
          sel,
          job: true,
        });
      }
      for (const m of r.expr.matchAll(/\bby \(([^)]*)\)/g)) {
        expect({ rule: r.alert, by: m[1], namespace: /\bnamespace\b/.test(m[1]) }).toEqual({
          rule: r.alert,
          by: m[1],
          namespace: true,
        });
      }
    }
  });
});
