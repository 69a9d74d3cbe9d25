/**
 * deploy/compose itself: `docker compose up --scale node=5` with the project's images, then
 * what a user would look at: the CLI lists every node, Prometheus scrapes every replica
 * (DNS service discovery) and the Collector's own metrics, every dashboard panel's query
 * returns data for the stack's namespace, and a CLI command shows up as one trace in Jaeger
 * (through the OpenTelemetry Collector). Statically: log rotation everywhere, the
 * observability profile, the image variables, and Grafana's data sources with exemplar links.
 *
 * Grafana is not started: its image cannot be pulled or built here (deploy/compose/README.md).
 * Prometheus, the Collector and Jaeger are the local stand-ins from `npm run setup:e2e`.
 * The stack runs under its own project name, on the network compose creates for it, with
 * every published port on 127.0.0.1 and chosen by the engine; `down -v` removes it all.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  loadDashboards,
  panelQueries,
  substituteVariables,
  variableQuery,
} from '../tests/support/observability-promql';
import { loadUpstreamConfig } from '../services/node/upstream/config';
import { waitFor } from '../tests/support/wait';
import {
  COMPOSE_DIR,
  COMPOSE_SERVICES,
  ComposeProject,
  buildProjectImages,
  composeEnv,
  loadImages,
  runOk,
  streamProblems,
  type NodeInfo,
  type StreamInfo,
} from './support/docker';

jest.setTimeout(180_000);

const PROJECT = `cn-e2e-${process.pid}`;
/** Everything but Grafana. */
const SERVICES = COMPOSE_SERVICES;
const REPLICAS = 5;
/** The namespace label deploy/compose/prometheus/prometheus.yml gives the programs' targets. */
const COMPOSE_NAMESPACE = 'currency-nodes';
const report = (line: string) => process.stdout.write(`e2e compose: ${line}\n`);

let project: ComposeProject;
let up = false;

const compose = (args: string[], timeoutMs = 60_000) => project.run(args, timeoutMs);
const composeOk = (args: string[], timeoutMs = 60_000) => project.ok(args, timeoutMs);
const cliJson = async <T>(args: string[]): Promise<T> =>
  JSON.parse(await composeOk(['exec', '-T', 'cli', 'currency-cli', '--json', ...args])) as T;

/** The .env file's values (what a user gets), for the pair sets. */
const dotEnv = (): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(COMPOSE_DIR, '.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
};

async function hostPort(service: string, port: number): Promise<string> {
  const out = (await composeOk(['port', service, String(port)])).trim();
  if (!/^127\.0\.0\.1:\d+$/.test(out)) throw new Error(`unexpected published address ${out}`);
  return out;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/** Container ids of a service's running replicas. */
async function containerIds(service: string): Promise<string[]> {
  return (await composeOk(['ps', '-q', service]))
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

beforeAll(async () => {
  const images = loadImages();
  buildProjectImages();
  project = new ComposeProject(
    PROJECT,
    // Quicker prices, so rates have samples soon after start.
    composeEnv(images, {
      NODE_PRICE_INTERVAL_MS: '500-1500',
      // The node service's image variable (NODE_IMAGE in the e2e image list).
      CURRENCY_NODE_IMAGE: images.NODE_IMAGE,
      // Prometheus, the Collector and Jaeger (.env switches the profile on; say so anyway).
      COMPOSE_PROFILES: 'observability',
    }),
  );
  const started = Date.now();
  up = true;
  await composeOk(
    [
      'up',
      '-d',
      '--no-build',
      '--scale',
      `node=${REPLICAS}`,
      '--wait',
      '--wait-timeout',
      '120',
      ...SERVICES,
    ],
    180_000,
  );
  report(`docker compose up --scale node=${REPLICAS}: healthy in ${Date.now() - started} ms`);
}, 25 * 60_000);

afterAll(async () => {
  if (!up) return;
  // Keeps the stack's logs for a look after a failure; checks nothing is left behind.
  report(`stack logs: ${await project.down()}`);
});

describe('docker compose up --scale node=5', () => {
  it('starts five node replicas that `docker compose exec cli currency-cli controller nodes` lists', async () => {
    const replicas = await containerIds('node');
    expect(replicas).toHaveLength(REPLICAS);
    const fx = await containerIds('node-fx');
    const crypto = await containerIds('node-crypto');
    // NODE_NAME defaults to the host name, which is the container id's first 12 characters.
    const expected = [...replicas, ...fx, ...crypto].map((id) => id.slice(0, 12)).sort();
    const list = await waitFor(
      'every node container registered',
      async () => {
        const n = await cliJson<NodeInfo[]>(['controller', 'nodes']);
        return n.length === expected.length ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(list.map((n) => n.name).sort()).toEqual(expected);
    expect(new Set(list.map((n) => n.nodeUuid)).size).toBe(expected.length);
    // The human form, exactly as the contract's example.
    const table = await composeOk(['exec', '-T', 'cli', 'currency-cli', 'controller', 'nodes']);
    for (const name of expected) expect(table).toContain(name);
    report(`${list.length} nodes listed (${REPLICAS} node replicas, node-fx, node-crypto)`);
  });

  it('streams every pair of the three node services exactly once', async () => {
    const e = dotEnv();
    const pairs = [
      ...new Set([e.NODE_PAIRS, e.NODE_FX_PAIRS, e.NODE_CRYPTO_PAIRS].flatMap((p) => p.split(','))),
    ].sort();
    await waitFor(
      'every pair streamed exactly once',
      async () => {
        const [s, n] = await Promise.all([
          cliJson<StreamInfo[]>(['controller', 'streams']),
          cliJson<NodeInfo[]>(['controller', 'nodes']),
        ]);
        const problems = streamProblems(s, n, pairs);
        if (problems.length > 0) throw new Error(problems.join('; '));
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });

  it('has Prometheus scrape every replica as a healthy target, found by DNS', async () => {
    const prom = await hostPort('prometheus', 9090);
    const nodeIds = [
      ...(await containerIds('node')),
      ...(await containerIds('node-fx')),
      ...(await containerIds('node-crypto')),
    ];
    const ips = new Set<string>();
    for (const id of nodeIds) {
      const out = await runOk('docker', [
        'inspect',
        '-f',
        '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
        id,
      ]);
      ips.add(`${out.trim()}:9464`);
    }
    interface Target {
      labels: Record<string, string>;
      health: string;
      lastError: string;
    }
    const targets = await waitFor(
      'every node and the controller to be a healthy Prometheus target',
      async () => {
        const t = await getJson<{ data: { activeTargets: Target[] } }>(
          `http://${prom}/api/v1/targets?state=active`,
        );
        const nodes = t.data.activeTargets.filter((x) => x.labels.job === 'currency-node');
        const ctl = t.data.activeTargets.filter((x) => x.labels.job === 'currency-controller');
        const collector = t.data.activeTargets.filter((x) => x.labels.job === 'otel-collector');
        const ok =
          nodes.length === ips.size &&
          nodes.every((x) => x.health === 'up' && ips.has(x.labels.instance)) &&
          ctl.length === 1 &&
          ctl[0].health === 'up' &&
          collector.length === 1 &&
          collector[0].health === 'up';
        return ok ? t.data.activeTargets : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    const byService = new Map<string, number>();
    for (const t of targets.filter((x) => x.labels.job === 'currency-node'))
      byService.set(t.labels.service, (byService.get(t.labels.service) ?? 0) + 1);
    expect(Object.fromEntries(byService)).toEqual({
      node: REPLICAS,
      'node-fx': 1,
      'node-crypto': 1,
    });
    // Every program target carries the namespace the dashboards select on.
    const programs = targets.filter((x) => x.labels.job.startsWith('currency-'));
    expect([...new Set(programs.map((x) => x.labels.namespace))]).toEqual([COMPOSE_NAMESPACE]);
    // The alerting rules are loaded and healthy.
    const rules = await getJson<{
      data: { groups: { rules: { name: string; health: string }[] }[] };
    }>(`http://${prom}/api/v1/rules`);
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((r) => r.health !== 'ok')).toEqual([]);
  });

  it('keeps a node that was told to shut down stopped (restart: on-failure), its pairs moving on', async () => {
    const nodes = await cliJson<NodeInfo[]>(['controller', 'nodes']);
    const [fxId] = await containerIds('node-fx');
    const fx = nodes.find((n) => n.name === fxId.slice(0, 12));
    expect(fx).toBeDefined();
    const r = await compose([
      'exec',
      '-T',
      'cli',
      'currency-cli',
      'node',
      'shutdown',
      '--node-uuid',
      fx!.nodeUuid,
    ]);
    expect(r.code).toBe(0);
    const t0 = Date.now();
    // Exited with 0, and still exited a while later: the restart policy did not bring it back.
    await waitFor(
      'node-fx to exit',
      async () =>
        (await runOk('docker', ['inspect', '-f', '{{.State.Status}}', fxId])).trim() === 'exited',
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    await new Promise((res) => setTimeout(res, 3_000));
    const state = JSON.parse(
      await runOk('docker', ['inspect', '-f', '{{json .State}}{{"\\n"}}', fxId]),
    ) as { Status: string; ExitCode: number };
    const restarts = (await runOk('docker', ['inspect', '-f', '{{.RestartCount}}', fxId])).trim();
    expect({ status: state.Status, exitCode: state.ExitCode, restarts }).toEqual({
      status: 'exited',
      exitCode: 0,
      restarts: '0',
    });
    // Its pairs are streamed by the nodes left (every fx pair has another capable node but
    // USD_CHF, AUD_USD and USD_CAD, which only node-fx can stream).
    const e = dotEnv();
    const others = new Set([...e.NODE_PAIRS.split(','), ...e.NODE_CRYPTO_PAIRS.split(',')]);
    await waitFor(
      'the pairs of node-fx that others can stream to move',
      async () => {
        const s = await cliJson<StreamInfo[]>(['controller', 'streams']);
        return s
          .filter((x) => others.has(x.currencyPair))
          .every((x) => x.nodeUuids.length === 1 && x.nodeUuids[0] !== fx!.nodeUuid);
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    report(
      `node-fx shut down by the CLI: exited 0, not restarted; its pairs streamed by other nodes ${Date.now() - t0} ms after the command (3 s of that watching it stay down)`,
    );
  });

  it('answers every dashboard panel query with data from the stack’s Prometheus', async () => {
    const prom = await hostPort('prometheus', 9090);
    // One command that fails (an unknown node), so the "not ok" series exist too.
    await compose([
      'exec',
      '-T',
      'cli',
      'currency-cli',
      'node',
      'status',
      '--node-uuid',
      '00000000-0000-4000-8000-000000000000',
    ]);
    const query = async (expr: string) =>
      getJson<{ status: string; data: { result: unknown[] } }>(
        `http://${prom}/api/v1/query?query=${encodeURIComponent(expr)}`,
      );
    const node = await waitFor(
      'a node name in Prometheus',
      async () => {
        const r = await getJson<{ data: { result: { metric: { node_name: string } }[] } }>(
          `http://${prom}/api/v1/query?query=${encodeURIComponent('currency_node_info{service="node"}')}`,
        );
        return r.data.result[0]?.metric.node_name;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    );
    const values = {
      datasource: 'unused-in-promql',
      // No cluster label in compose: Grafana's "All" (.*); the namespace Prometheus sets.
      cluster: '.*',
      namespace: COMPOSE_NAMESPACE,
      controller_job: 'currency-controller',
      node_job: 'currency-node',
      node,
      __rate_interval: '30s',
      __interval: '5s',
      __range: '5m',
    };
    const queries = panelQueries(loadDashboards());
    expect(queries.length).toBeGreaterThan(10);
    let problems: string[] = [];
    // Rates need two scrapes after the events: retry the whole set for a bounded while.
    await waitFor(
      'every panel query to return data',
      async () => {
        problems = [];
        for (const q of queries) {
          const expr = substituteVariables(q.expr, values);
          const r = await query(expr);
          if (r.status !== 'success' || r.data.result.length === 0)
            problems.push(`${q.file} ${q.panel} ${q.refId}: ${expr}`);
        }
        return problems.length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 2_000 },
    ).catch(() => undefined);
    expect(problems).toEqual([]);
    // The dashboards' variables resolve to this stack's jobs.
    for (const { dashboard } of loadDashboards()) {
      for (const v of dashboard.templating?.list ?? []) {
        const q = v.type === 'query' ? variableQuery(v) : undefined;
        const m = q ? /^label_values\((.+),\s*(\w+)\)$/.exec(q) : null;
        if (!m) continue;
        const r = await query(`group by (${m[2]}) (${substituteVariables(m[1], values)})`);
        // `cluster` has no values here (no such label); Grafana then uses "All".
        expect({ variable: v.name, found: r.data.result.length > 0 }).toEqual({
          variable: v.name,
          found: true,
        });
      }
    }
    report(`${queries.length} panel queries answered with data`);
  });

  it('sends a CLI command’s spans from the CLI, the controller and every node it reached to Jaeger as one trace', async () => {
    const jaeger = await hostPort('jaeger', 16686);
    const reached = (await cliJson<NodeInfo[]>(['controller', 'nodes'])).length;
    await composeOk(['exec', '-T', 'cli', 'currency-cli', 'node', 'status', '--all']);
    interface Trace {
      traceID: string;
      spans: { operationName: string; processID: string }[];
      processes: Record<string, { serviceName: string }>;
    }
    const services = (t: Trace) =>
      new Set(t.spans.map((s) => t.processes[s.processID]?.serviceName));
    /** Distinct node processes with a span in the trace: one per node the command reached. */
    const nodeProcesses = (t: Trace) =>
      new Set(
        t.spans
          .filter((s) => t.processes[s.processID]?.serviceName === 'currency-node')
          .map((s) => s.processID),
      ).size;
    let best: Trace | undefined;
    // Nodes export in batches: wait (bounded) until every reached node's span is in.
    const trace = await waitFor(
      `a node status trace with spans of currency-cli, currency-controller and ${reached} nodes`,
      async () => {
        const r = await getJson<{ data: Trace[] }>(
          `http://${jaeger}/api/traces?service=currency-cli&limit=50&lookback=1h`,
        );
        const candidates = r.data.filter(
          (t) =>
            t.spans.some((s) => s.operationName.includes('NodeStatusV1Req')) &&
            services(t).has('currency-cli') &&
            services(t).has('currency-controller'),
        );
        best = candidates.sort((x, y) => nodeProcesses(y) - nodeProcesses(x))[0];
        return best && nodeProcesses(best) === reached ? best : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}; best trace: ${best ? `${best.traceID} with ${nodeProcesses(best)} node(s), operations ${[...new Set(best.spans.map((s) => s.operationName))].join(', ')}` : 'none'}`,
      );
    });
    report(
      `trace ${trace.traceID} (node status --all): ${trace.spans.length} spans, from the cli, the controller and ${nodeProcesses(trace)} nodes`,
    );
  });
});

describe('the compose file', () => {
  interface ComposeService {
    image?: string;
    container_name?: string;
    ports?: unknown[];
    restart?: string;
    healthcheck?: { test?: string[] };
    depends_on?: Record<string, { condition: string; required?: boolean }>;
    logging?: { driver?: string; options?: Record<string, string> };
    profiles?: string[];
    command?: string[];
    entrypoint?: string[];
    build?: { args?: Record<string, string> };
    deploy?: { resources?: { limits?: { memory?: string } } };
    volumes?: { source: string; target: string }[];
    environment?: Record<string, string>;
  }

  const config = async (
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ services: Record<string, ComposeService> }> => {
    // As a user gets it: .env only, nothing from this test's overrides.
    const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
    const out = await runOk('docker', ['compose', 'config', '--format', 'json'], {
      cwd: COMPOSE_DIR,
      env: clean,
    });
    return JSON.parse(out) as { services: Record<string, ComposeService> };
  };
  const OBSERVABILITY = ['prometheus', 'grafana', 'otel-collector', 'jaeger'];

  it('scales the node service (no container name, no host port) and limits and checks every service', async () => {
    const { services } = await config();
    expect(Object.keys(services).sort()).toEqual([...SERVICES, 'grafana'].sort());
    expect(services.node.container_name).toBeUndefined();
    expect(services.node.ports ?? []).toEqual([]);
    for (const [name, s] of Object.entries(services)) {
      expect({ name, limit: Boolean(s.deploy?.resources?.limits?.memory) }).toEqual({
        name,
        limit: true,
      });
      expect({ name, restart: s.restart }).toEqual({
        name,
        restart: name.startsWith('node') ? 'on-failure' : 'unless-stopped',
      });
    }
    for (const name of ['node', 'node-fx', 'node-crypto', 'cli'])
      expect(services[name].depends_on?.controller.condition).toBe('service_healthy');
    expect(services.grafana.depends_on?.prometheus.condition).toBe('service_healthy');
    // Users get the official third-party images (the tests swap in local stand-ins).
    expect(services.prometheus.image).toMatch(/^prom\/prometheus:/);
    expect(services.grafana.image).toMatch(/^grafana\/grafana:/);
    expect(services['otel-collector'].image).toMatch(/^otel\/opentelemetry-collector/);
    expect(services.jaeger.image).toMatch(/^jaegertracing\/jaeger:/);
  });

  it("rotates every service's logs (json-file, max-size, max-file)", async () => {
    const { services } = await config();
    for (const [name, s] of Object.entries(services)) {
      expect({ name, logging: s.logging }).toEqual({
        name,
        logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } },
      });
    }
  });

  it('puts the observability services in a profile that .env switches on and an empty COMPOSE_PROFILES switches off', async () => {
    const { services } = await config();
    for (const [name, s] of Object.entries(services)) {
      expect({ name, profiles: s.profiles ?? [] }).toEqual({
        name,
        profiles: OBSERVABILITY.includes(name) ? ['observability'] : [],
      });
    }
    const programsOnly = await config({ COMPOSE_PROFILES: '' });
    expect(Object.keys(programsOnly.services).sort()).toEqual(
      SERVICES.filter((x) => !OBSERVABILITY.includes(x)).sort(),
    );
    // The programs still start without the collector they otherwise wait for.
    for (const s of Object.values(programsOnly.services))
      expect(s.depends_on?.['otel-collector']?.required ?? false).toBe(false);
  });

  it("names the node service's image CURRENCY_NODE_IMAGE, so a NODE_IMAGE meant for the Dockerfiles cannot select it", async () => {
    const { services } = await config({ NODE_IMAGE: 'node:24-bookworm-slim' });
    for (const name of ['node', 'node-fx', 'node-crypto']) {
      expect(services[name].image).toBe('currency-nodes/node:0.1.0');
      // The Dockerfiles' base image build argument comes from NODE_BASE_IMAGE.
      expect(services[name].build?.args?.NODE_IMAGE).toBe('node:24-bookworm-slim');
    }
    const moved = await config({ CURRENCY_NODE_IMAGE: 'registry.test/team/node:9' });
    expect(moved.services.node.image).toBe('registry.test/team/node:9');
  });

  it('health-checks the collector and has Prometheus scrape its metrics, with exemplar storage on', async () => {
    const { services } = await config();
    expect(services['otel-collector'].healthcheck?.test?.[0]).toBe('CMD');
    expect(services.prometheus.command).toContain('--enable-feature=exemplar-storage');
    const prom = parseYaml(
      readFileSync(join(COMPOSE_DIR, 'prometheus', 'prometheus.yml'), 'utf8'),
    ) as {
      scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
    };
    const job = prom.scrape_configs.find((j) => j.job_name === 'otel-collector');
    expect(job?.static_configs?.[0].targets).toEqual(['otel-collector:8888']);
    const collector = parseYaml(
      readFileSync(join(COMPOSE_DIR, 'otel-collector', 'config.yaml'), 'utf8'),
    ) as {
      service: {
        telemetry: {
          metrics: { readers: { pull: { exporter: { prometheus: { port: number } } } }[] };
        };
      };
    };
    expect(collector.service.telemetry.metrics.readers[0].pull.exporter.prometheus.port).toBe(8888);
  });

  it('passes NODE_UPSTREAM_* through (simulated by default) and runs market and node-upstream in the upstream profile', async () => {
    const { services } = await config();
    expect(services.market).toBeUndefined();
    expect(services['node-upstream']).toBeUndefined();
    for (const name of ['node', 'node-fx', 'node-crypto']) {
      const env = services[name].environment ?? {};
      expect(env.NODE_UPSTREAM).toBe('simulated');
      expect(loadUpstreamConfig(env, env.NODE_CURRENCY_PAIRS!.split(',')).kind).toBe('simulated');
    }
    // Passed through from the shell, as compose interpolates it.
    const http = await config({
      NODE_UPSTREAM: 'http',
      NODE_UPSTREAM_URL: 'https://prices.test/v1/{symbol}',
      NODE_UPSTREAM_PRICE_PATH: 'data.price',
    });
    const fx = http.services['node-fx'].environment ?? {};
    expect(loadUpstreamConfig(fx, fx.NODE_CURRENCY_PAIRS!.split(','))).toMatchObject({
      kind: 'http',
      url: 'https://prices.test/v1/{symbol}',
      pricePath: 'data.price',
    });

    const { services: up } = await config({ COMPOSE_PROFILES: 'observability,upstream' });
    expect(up.market.profiles).toEqual(['upstream']);
    expect(up.market.restart).toBe('unless-stopped');
    expect(up.market.image).toBe(up.node.image);
    expect(up.market.entrypoint).toEqual(['node', 'dist/services/market/main.js']);
    const n = up['node-upstream'];
    expect(n.profiles).toEqual(['upstream']);
    expect(n.restart).toBe('on-failure');
    expect(n.depends_on?.market.condition).toBe('service_healthy');
    expect(n.depends_on?.controller.condition).toBe('service_healthy');
    const env = n.environment ?? {};
    expect(loadUpstreamConfig(env, env.NODE_CURRENCY_PAIRS!.split(','))).toMatchObject({
      kind: 'http',
      url: 'http://market:8080/v1/quote/{symbol}?client=node-upstream',
      pricePath: 'price',
      timePath: 'time',
    });
  });

  it('provisions Grafana with the Prometheus data source and the dashboards of deploy/observability', async () => {
    const { services } = await config();
    const g = services.grafana;
    const mount = (target: string) => g.volumes?.find((v) => v.target === target)?.source;
    const provisioning = mount('/etc/grafana/provisioning');
    const dashboardsDir = mount('/var/lib/grafana/dashboards');
    expect(provisioning).toBe(join(COMPOSE_DIR, 'grafana', 'provisioning'));
    expect(dashboardsDir).toBe(join(COMPOSE_DIR, '..', 'observability', 'grafana', 'dashboards'));
    const ds = parseYaml(
      readFileSync(join(provisioning!, 'datasources', 'prometheus.yaml'), 'utf8'),
    ) as {
      datasources: {
        type: string;
        url: string;
        isDefault: boolean;
        jsonData: {
          exemplarTraceIdDestinations: { name: string; datasourceUid?: string; url?: string }[];
        };
      }[];
    };
    expect(ds.datasources).toEqual([
      expect.objectContaining({
        type: 'prometheus',
        url: 'http://prometheus:9090',
        isDefault: true,
      }),
    ]);
    // Exemplars link to their trace: in the Jaeger data source, and in Jaeger's UI.
    const jaeger = parseYaml(
      readFileSync(join(provisioning!, 'datasources', 'jaeger.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string; url: string }[] };
    expect(jaeger.datasources).toEqual([
      expect.objectContaining({ type: 'jaeger', url: 'http://jaeger:16686' }),
    ]);
    expect(ds.datasources[0].jsonData.exemplarTraceIdDestinations).toEqual([
      { name: 'trace_id', datasourceUid: jaeger.datasources[0].uid },
      expect.objectContaining({
        name: 'trace_id',
        // $$ is Grafana provisioning's escape for a literal $.
        url: 'http://localhost:16686/trace/$${__value.raw}',
      }),
    ]);
    const providers = parseYaml(
      readFileSync(join(provisioning!, 'dashboards', 'currency-nodes.yaml'), 'utf8'),
    ) as { providers: { type: string; options: { path: string } }[] };
    expect(providers.providers.map((p) => p.options.path)).toEqual(['/var/lib/grafana/dashboards']);
    // The home dashboard is one of the mounted files.
    const home = g.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(loadDashboards().map((d) => `/var/lib/grafana/dashboards/${d.file}`)).toContain(home);
    expect(g.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(g.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
  });
});
