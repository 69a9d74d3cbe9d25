/**
 * Metrics link to traces: a real Prometheus with exemplar storage (as in deploy/compose)
 * scrapes a real controller and node, which serve it OpenMetrics because it asks for it;
 * a traced CLI command's latency sample is stored with the trace id of the controller's
 * span. Scrapers that do not ask for OpenMetrics get the text format as before, and every
 * series Prometheus stores keeps the name the text format gives it.
 *
 * Needs `npm run build` and `bash scripts/setup/prometheus.sh`.
 */
import { randomUUID } from 'node:crypto';
import { get } from 'node:http';
import { seriesNamesIn, sorted } from '../support/exposition';
import { PROMETHEUS_SYNTHETIC_METRICS } from '../support/observability-promql';
import {
  type Proc,
  TestPrometheus,
  WaitAborted,
  freePorts,
  isRunning,
  makeTempDir,
  programPath,
  requireBuilt,
  requireTool,
  runToEnd,
  startProcess,
  stopAll,
  waitFor,
} from '../support/observability-stack';
import { OtlpReceiver } from '../support/otlp-receiver';

jest.setTimeout(90_000);

const CONTROLLER_JOB = 'currency-controller';
const NODE_JOB = 'currency-node';
/** Prometheus 2.x's Accept header when scraping. */
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

interface ExemplarsResponse {
  status: string;
  error?: string;
  data?: {
    seriesLabels: Record<string, string>;
    exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
  }[];
}

let otlp: OtlpReceiver;
let tmp: ReturnType<typeof makeTempDir>;
let prom: TestPrometheus;
let controllerAddr: string;
let controllerMetrics: string;
let nodeMetrics: string;
let otel: Record<string, string>;
const procs: Proc[] = [];

/** GET with exactly the given headers (fetch would add `Accept: *\/*`). */
function scrape(
  addr: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${addr}/metrics`, { headers, timeout: 3_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${addr}/metrics timed out`)));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  requireBuilt();
  requireTool('prometheus');
  otlp = await OtlpReceiver.start();
  tmp = makeTempDir('currency-exemplars-');
  const [grpcPort, ctlPort, nodePort, promPort] = await freePorts(4);
  controllerAddr = `127.0.0.1:${grpcPort}`;
  controllerMetrics = `127.0.0.1:${ctlPort}`;
  nodeMetrics = `127.0.0.1:${nodePort}`;
  otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  procs.push(
    startProcess('controller', process.execPath, [programPath('controller')], {
      ...otel,
      CONTROLLER_LISTEN_ADDR: controllerAddr,
      METRICS_ADDR: controllerMetrics,
      LOG_LEVEL: 'warn',
    }),
    startProcess('node', process.execPath, [programPath('node')], {
      ...otel,
      NODE_CONTROLLER_ADDR: controllerAddr,
      NODE_CURRENCY_PAIRS: 'USD_HKD,EUR_USD',
      NODE_UUID: randomUUID(),
      NODE_PRICE_INTERVAL_MS: '500',
      PRICE_SPAN_SAMPLE_RATIO: '0',
      METRICS_ADDR: nodeMetrics,
      LOG_LEVEL: 'warn',
    }),
  );
  await waitFor('the node registered and streaming', async () => {
    const dead = procs.find((p) => !isRunning(p));
    if (dead) throw new WaitAborted(`${dead.name} exited: ${dead.output()}`);
    const { body } = await scrape(controllerMetrics);
    return /^currency_controller_pairs_streamed 2$/m.test(body);
  });
  prom = await TestPrometheus.start({
    dir: tmp.path,
    port: promPort,
    ruleFiles: [],
    jobs: { [CONTROLLER_JOB]: [controllerMetrics], [NODE_JOB]: [nodeMetrics] },
  });
  await waitFor('Prometheus scraping both targets', async () => {
    const up = await prom.vector('up == 1');
    return up.length === 2;
  });
});

afterAll(async () => {
  await stopAll();
  await otlp?.close();
  tmp?.remove();
});

test("a traced command's latency sample is stored in Prometheus with the trace id of the controller's span", async () => {
  const since = Date.now() / 1000 - 60;
  const r = await runToEnd(
    process.execPath,
    [programPath('cli'), '--controller', controllerAddr, 'node', 'status', '--all'],
    { ...otel, LOG_LEVEL: 'warn' },
  );
  expect(r.code).toBe(0);
  const span = await waitFor('the controller span of the command', async () =>
    otlp.spans.find(
      (s) => s.service === 'currency-controller' && s.name === 'controller NodeStatusV1Req',
    ),
  );
  expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(span.traceId).not.toMatch(/^0+$/);

  const query = new URLSearchParams({
    query: 'currency_controller_command_duration_seconds_bucket{command="NodeStatusV1Req"}',
    start: String(since),
    end: String(Date.now() / 1000 + 120),
  });
  const stored = await waitFor('Prometheus to store the exemplar', async () => {
    const res = await prom.getJson<ExemplarsResponse>(`/api/v1/query_exemplars?${query}`);
    if (res.status !== 'success') throw new Error(`query_exemplars: ${res.error ?? res.status}`);
    for (const series of res.data ?? []) {
      const e = series.exemplars.find((x) => x.labels.trace_id === span.traceId);
      if (e) return { series: series.seriesLabels, exemplar: e };
    }
    return undefined;
  });
  expect(stored.series).toMatchObject({
    __name__: 'currency_controller_command_duration_seconds_bucket',
    job: CONTROLLER_JOB,
    command: 'NodeStatusV1Req',
  });
  expect(stored.exemplar.labels).toEqual({ trace_id: span.traceId, span_id: span.spanId });
  expect(Number(stored.exemplar.value)).toBeGreaterThanOrEqual(0);
});

test('a scraper that does not ask for OpenMetrics gets the text format, without exemplars', async () => {
  const asked: Record<string, string>[] = [
    {},
    { accept: '*/*' },
    { accept: 'text/plain;version=0.0.4' },
  ];
  for (const headers of asked) {
    const res = await scrape(controllerMetrics, headers);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.vary).toBe('Accept');
    expect(res.body).toMatch(/^# TYPE currency_controller_failovers_total counter$/m);
    expect(res.body).toMatch(/^currency_controller_command_duration_seconds_bucket\{/m);
    expect(res.body).not.toContain('trace_id');
    expect(res.body).not.toContain('# EOF');
  }
  const om = await scrape(controllerMetrics, { accept: PROMETHEUS_ACCEPT });
  expect(om.headers['content-type']).toBe(
    'application/openmetrics-text; version=1.0.0; charset=utf-8',
  );
  expect(om.body).toMatch(/^# TYPE currency_controller_failovers counter$/m);
  expect(om.body.endsWith('# EOF\n')).toBe(true);
});

test.each([
  ['controller', CONTROLLER_JOB, () => controllerMetrics],
  ['node', NODE_JOB, () => nodeMetrics],
])(
  "every series name Prometheus stores from the %s's OpenMetrics scrape is the one the text format shows",
  async (_, job, addr) => {
    let diff = '';
    await waitFor(`Prometheus's ${job} series names to match the text format`, async () => {
      const text = seriesNamesIn((await scrape(addr())).body);
      const res = await prom.getJson<{ status: string; data: string[] }>(
        `/api/v1/label/__name__/values?${new URLSearchParams({ 'match[]': `{job="${job}"}` })}`,
      );
      const stored = new Set(res.data.filter((n) => !PROMETHEUS_SYNTHETIC_METRICS.has(n)));
      const onlyStored = sorted([...stored].filter((n) => !text.has(n)));
      const onlyText = sorted([...text].filter((n) => !stored.has(n)));
      diff = JSON.stringify({ onlyStored, onlyText });
      return onlyStored.length === 0 && onlyText.length === 0 && text.size > 20;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; ${diff}`);
    });
  },
);
