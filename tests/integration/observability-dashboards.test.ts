/**
 * The Grafana dashboards (deploy/observability) as Grafana reads them: well-formed JSON
 * (datasource variable, ids, layout, one expression per target), every query scoped to a
 * cluster and a namespace, and the panels the operators asked for. Their queries run
 * against real programs in observability-live.test.ts. Grafana itself is not run (there
 * is none to install here); see deploy/observability/README.md.
 */
import {
  type GrafanaPanel,
  type LoadedDashboard,
  allPanels,
  loadDashboards,
  panelQueries,
} from '../support/observability-promql';

/** How every selector of every dashboard query starts. */
const SCOPE = 'cluster=~"$cluster", namespace="$namespace"';

describe('dashboards', () => {
  const loaded: LoadedDashboard[] = loadDashboards();

  it('include the overview dashboard and parse as JSON with a current schema and unique uids', () => {
    expect(loaded.map((l) => l.file)).toContain('currency-nodes-overview.json');
    const uids = loaded.map((l) => l.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, dashboard } of loaded) {
      expect({ file, uid: typeof dashboard.uid, title: typeof dashboard.title }).toEqual({
        file,
        uid: 'string',
        title: 'string',
      });
      // Grafana 11 writes 39-40, Grafana 12 writes 41.
      expect({ file, schemaVersion: dashboard.schemaVersion! >= 39 }).toEqual({
        file,
        schemaVersion: true,
      });
    }
  });

  it('declare a Prometheus ${datasource} variable and reference it by uid in every panel, target and query variable', () => {
    for (const { file, dashboard } of loaded) {
      const vars = dashboard.templating?.list ?? [];
      const ds = vars.find((v) => v.name === 'datasource');
      expect({ file, type: ds?.type, query: ds?.query }).toEqual({
        file,
        type: 'datasource',
        query: 'prometheus',
      });
      const byUid = { type: 'prometheus', uid: '${datasource}' };
      for (const v of vars.filter((x) => x.type === 'query')) {
        expect({ file, variable: v.name, datasource: v.datasource }).toEqual({
          file,
          variable: v.name,
          datasource: byUid,
        });
      }
      for (const p of allPanels(dashboard)) {
        if (p.type === 'row') {
          // Rows only group panels; they must not carry queries.
          expect({ file, panel: p.id, targets: p.targets ?? [] }).toEqual({
            file,
            panel: p.id,
            targets: [],
          });
          continue;
        }
        expect({ file, panel: p.title, datasource: p.datasource }).toEqual({
          file,
          panel: p.title,
          datasource: byUid,
        });
        for (const t of p.targets ?? []) {
          expect({ file, panel: p.title, ref: t.refId, datasource: t.datasource }).toEqual({
            file,
            panel: p.title,
            ref: t.refId,
            datasource: byUid,
          });
        }
      }
    }
  });

  it('give every panel a unique id, a grid position inside 24 columns and every target an expression', () => {
    for (const { file, dashboard } of loaded) {
      const panels = allPanels(dashboard);
      expect(panels.length).toBeGreaterThan(5);
      const ids = panels.map((p) => p.id);
      expect({ file, ids: ids.every((i) => Number.isInteger(i)) }).toEqual({ file, ids: true });
      expect({ file, unique: new Set(ids).size }).toEqual({ file, unique: ids.length });
      for (const p of panels) {
        const g = p.gridPos ?? {};
        const ok =
          [g.h, g.w, g.x, g.y].every((n) => Number.isInteger(n) && n! >= 0) &&
          g.w! >= 1 &&
          g.h! >= 1 &&
          g.x! + g.w! <= 24;
        expect({ file, panel: p.title, gridPos: ok }).toEqual({
          file,
          panel: p.title,
          gridPos: true,
        });
        if (p.type !== 'row') {
          expect({ file, panel: p.title, targets: (p.targets ?? []).length > 0 }).toEqual({
            file,
            panel: p.title,
            targets: true,
          });
          const refIds = (p.targets ?? []).map((t) => t.refId);
          expect({ file, panel: p.title, uniqueRefIds: new Set(refIds).size }).toEqual({
            file,
            panel: p.title,
            uniqueRefIds: refIds.length,
          });
        }
        for (const t of p.targets ?? []) {
          expect({ file, panel: p.title, expr: (t.expr ?? '').trim() !== '' }).toEqual({
            file,
            panel: p.title,
            expr: true,
          });
        }
      }
    }
  });

  it('scope every query to $cluster and $namespace, and name nodes by node_name, not by instance', () => {
    for (const { file, dashboard } of loaded) {
      const names = (dashboard.templating?.list ?? []).map((v) => v.name);
      expect({ file, names }).toEqual({
        file,
        names: expect.arrayContaining(['cluster', 'namespace']),
      });
      for (const p of allPanels(dashboard)) {
        for (const t of p.targets ?? []) {
          const expr = t.expr ?? '';
          const where = `${file} #${p.id} ${p.title} ${t.refId}`;
          for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
            expect({ where, sel: m[1], scoped: m[1].startsWith(SCOPE) }).toEqual({
              where,
              sel: m[1],
              scoped: true,
            });
          }
          // Node series carry an IP:port instance; legends name the node instead (the
          // controller's own process panels keep its instance).
          const legend = (t as { legendFormat?: string }).legendFormat ?? '';
          if (legend.includes('{{instance}}')) {
            expect({ where, controllerOnly: !expr.includes('$node_job') }).toEqual({
              where,
              controllerOnly: true,
            });
          }
          if (t.format === 'table' && expr.includes('currency_node_info'))
            expect({ where, nodeName: expr.includes('node_name') }).toEqual({
              where,
              nodeName: true,
            });
        }
      }
    }
  });

  it('show the panels the operators asked for on the overview', () => {
    const overview = loaded.find((l) => l.file === 'currency-nodes-overview.json')!.dashboard;
    const exprs = panelQueries([{ file: 'overview', dashboard: overview }])
      .map((q) => q.expr)
      .join('\n');
    for (const name of [
      'currency_controller_connected_nodes',
      'currency_controller_pairs_streamed',
      'currency_controller_pairs_known',
      'currency_controller_pairs_unstreamed',
      'currency_controller_failovers_total',
      'currency_controller_price_updates_total',
      'currency_controller_command_duration_seconds_bucket',
      'currency_controller_commands_total',
      'currency_node_reconnects_total',
      'currency_controller_malformed_frames_total',
      'currency_controller_node_disconnects_total',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ]) {
      expect({ name, used: exprs.includes(name) }).toEqual({ name, used: true });
    }
    expect(exprs).toMatch(/histogram_quantile\(0\.5,/);
    expect(exprs).toMatch(/histogram_quantile\(0\.99,/);
  });

  it('show exemplars (trace links) on command latency, from one query so that each shows once', () => {
    const withExemplars = loaded.flatMap(({ file, dashboard }) =>
      allPanels(dashboard).flatMap((p) =>
        (p.targets ?? [])
          .filter((t) => t.exemplar === true)
          .map((t) => ({ file, panel: p.title, expr: t.expr ?? '' })),
      ),
    );
    const latency = withExemplars.filter((t) =>
      t.expr.includes('currency_controller_command_duration_seconds_bucket'),
    );
    expect(latency.map((t) => `${t.file} ${t.panel}`)).toEqual([
      'currency-nodes-overview.json Command latency p50 / p99 by command',
    ]);
  });

  it('lay panels out without overlaps, each row above its own panels', () => {
    type Box = { x: number; y: number; w: number; h: number };
    const box = (p: GrafanaPanel): Box => ({
      x: p.gridPos?.x ?? 0,
      y: p.gridPos?.y ?? 0,
      w: p.gridPos?.w ?? 0,
      h: p.gridPos?.h ?? 0,
    });
    const overlap = (a: Box, b: Box) =>
      a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    for (const { file, dashboard } of loaded) {
      // The top level is one grid; the panels of a collapsed row are another, shown in its place.
      const grids = [
        dashboard.panels ?? [],
        ...(dashboard.panels ?? [])
          .filter((p) => (p.panels ?? []).length > 0)
          .map((p) => p.panels!),
      ];
      const overlaps: string[] = [];
      for (const grid of grids) {
        grid.forEach((a, i) =>
          grid.slice(i + 1).forEach((b) => {
            if (overlap(box(a), box(b))) overlaps.push(`#${a.id} ${a.title} / #${b.id} ${b.title}`);
          }),
        );
      }
      expect({ file, overlaps }).toEqual({ file, overlaps: [] });
      // Grafana places panels by gridPos alone; the list follows the grid too, so that a
      // reader (and rowPanels below) finds a row's panels after it.
      const top = dashboard.panels ?? [];
      const outOfOrder = top
        .slice(1)
        .filter((p, i) => box(p).y < box(top[i]).y)
        .map((p) => `#${p.id} ${p.title}`);
      expect({ file, outOfOrder }).toEqual({ file, outOfOrder: [] });
    }
  });

  /** The non-row panels under the row titled `title` (up to the next row). */
  const rowPanels = (file: string, title: string): GrafanaPanel[] => {
    const panels = loaded.find((l) => l.file === file)!.dashboard.panels ?? [];
    const start = panels.findIndex((p) => p.type === 'row' && p.title === title);
    if (start < 0) return [];
    const end = panels.findIndex((p, i) => i > start && p.type === 'row');
    return panels.slice(start + 1, end < 0 ? undefined : end);
  };
  type WithFieldConfig = GrafanaPanel & {
    fieldConfig?: { defaults?: { unit?: string; custom?: { stacking?: { mode?: string } } } };
  };

  it('show the upstream panels on the node dashboard, per selected node like its other panels', () => {
    const panels = rowPanels('currency-nodes-node.json', 'Upstreams') as WithFieldConfig[];
    expect(panels.map((p) => p.title)).toEqual([
      'Upstream reads by outcome',
      'Failed upstream reads (ratio)',
      'Upstream request latency p50 / p99',
      'Upstream price age per pair (top 10)',
      'Withdrawn pairs',
      'Withdrawals per pair',
    ]);
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    for (const name of [
      'currency_node_upstream_requests_total',
      'currency_node_upstream_request_duration_seconds_bucket',
      'currency_node_upstream_price_age_seconds',
      'currency_node_upstream_withdrawn_pairs',
      'currency_node_upstream_withdrawals_total',
    ]) {
      expect({ name, used: exprs.some((e) => e.includes(name)) }).toEqual({ name, used: true });
    }
    // Every query names its nodes by node_name and follows the node variable.
    const join =
      '* on (cluster, namespace, instance) group_left (node_name) max by (cluster, namespace, instance, node_name) (currency_node_info{cluster=~"$cluster", namespace="$namespace", job=~"$node_job", node_name=~"$node"})';
    for (const e of exprs) expect({ e, joined: e.includes(join) }).toEqual({ e, joined: true });
    const all = exprs.join('\n');
    expect(all).toContain(
      'histogram_quantile(0.5, sum by (node_name, le) (rate(currency_node_upstream_request_duration_seconds_bucket{',
    );
    expect(all).toContain(
      'histogram_quantile(0.99, sum by (node_name, le) (rate(currency_node_upstream_request_duration_seconds_bucket{',
    );
    expect(all).toContain(
      'topk(10, max by (node_name, pair) (currency_node_upstream_price_age_seconds{',
    );
    const byTitle = new Map(panels.map((p) => [p.title, p]));
    expect(
      byTitle.get('Upstream reads by outcome')?.fieldConfig?.defaults?.custom?.stacking?.mode,
    ).toBe('normal');
    expect(byTitle.get('Failed upstream reads (ratio)')?.fieldConfig?.defaults?.unit).toBe(
      'percentunit',
    );
  });

  it("show withdrawn pairs, the nodes offering each pair and the streamers' price deviation on the overview", () => {
    const panels = rowPanels('currency-nodes-overview.json', 'Upstreams');
    const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')).join('\n');
    for (const name of [
      'currency_node_upstream_withdrawn_pairs',
      'currency_controller_pair_capable_nodes',
      'currency_controller_price_deviation_ratio',
      'currency_node_upstream_requests_total',
    ]) {
      expect({ name, used: exprs.includes(name) }).toEqual({ name, used: true });
    }
    expect(exprs).toContain('topk(10, max by (pair) (currency_controller_price_deviation_ratio{');
    expect(exprs).toContain('bottomk(10, max by (pair) (currency_controller_pair_capable_nodes{');
    // Unstreamed pairs and the reassignment reasons (withdrawn among them) stay where they were.
    const overview = panelQueries(loaded.filter((l) => l.file === 'currency-nodes-overview.json'));
    expect(overview.map((q) => q.panel.replace(/^#\d+ /, ''))).toEqual(
      expect.arrayContaining(['Pairs unstreamed', 'Stream reassignments by reason']),
    );
  });
});
