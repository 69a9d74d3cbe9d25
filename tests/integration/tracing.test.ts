/**
 * One CLI command = one trace across the three programs, configured only by the standard
 * OTEL_* variables; log lines written while handling it carry its trace and span ids.
 */
import { randomUUID } from 'node:crypto';
import { startMarketServer } from '../../services/market/server';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { freePort } from '../support/ports';
import { killAll, runProgram, startProgram } from '../support/processes';
import { waitUntilReady } from '../support/process-harness';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

let otlp: OtlpReceiver;

beforeAll(async () => {
  otlp = await OtlpReceiver.start();
});

afterAll(async () => {
  await killAll();
  await otlp.close();
});

test('node status is one trace: CLI span -> controller span -> node span, with matching log ids', async () => {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  };
  const controller = startProgram('controller', {
    ...otel,
    CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  });
  await waitUntilReady(controller, metricsPort);
  const nodeUuid = randomUUID();
  const nodeMetrics = await freePort();
  const node = startProgram('node', {
    ...otel,
    NODE_CONTROLLER_ADDR: `127.0.0.1:${grpcPort}`,
    NODE_CURRENCY_PAIRS: 'USD_HKD',
    NODE_UUID: nodeUuid,
    METRICS_ADDR: `127.0.0.1:${nodeMetrics}`,
  });
  await waitUntilReady(node, nodeMetrics);

  const r = await runProgram(
    'cli',
    ['--controller', `127.0.0.1:${grpcPort}`, 'node', 'status', '--all'],
    otel,
  );
  expect(r.code).toBe(0);

  const cliSpan = await waitFor('the CLI command span', () =>
    otlp.spans.find((s) => s.service === 'currency-cli' && s.name === 'cli NodeStatusV1Req'),
  );
  const trace = (): ReceivedSpan[] => otlp.spans.filter((s) => s.traceId === cliSpan.traceId);
  const controllerSpan = await waitFor('the controller span', () =>
    trace().find(
      (s) => s.service === 'currency-controller' && s.name === 'controller NodeStatusV1Req',
    ),
  );
  const nodeSpan = await waitFor('the node span', () =>
    trace().find((s) => s.service === 'currency-node' && s.name === 'node NodeStatusV1Req'),
  );
  expect(controllerSpan.parentSpanId).toBe(cliSpan.spanId);
  expect(nodeSpan.parentSpanId).toBe(controllerSpan.spanId);
  expect(controllerSpan.attributes['rpc.system']).toBe('grpc');
  expect(controllerSpan.attributes['rpc.method']).toBe('NodeStatusV1Req');
  // The CLI's own root span, and the gRPC instrumentation's spans of its stream, are in the same trace.
  const root = trace().find((s) => s.service === 'currency-cli' && s.parentSpanId === '');
  expect(root?.name).toBe('currency-cli node status');
  // Exported by each program's batch processor on its own schedule, maybe after the above.
  await waitFor('a gRPC instrumentation span in the trace', () =>
    trace().some((s) => s.scope.includes('instrumentation-grpc')),
  );
  // Nothing of this command went to another trace.
  const strays = otlp.spans.filter(
    (s) => s.name.endsWith('NodeStatusV1Req') && s.traceId !== cliSpan.traceId,
  );
  expect(strays).toEqual([]);

  // Log lines written while handling it carry the trace id.
  await waitFor('controller log line', () =>
    controller
      .logLines()
      .find(
        (l) =>
          l.msg === 'command received' &&
          l.command === 'NodeStatusV1Req' &&
          l.trace_id === cliSpan.traceId &&
          l.span_id === controllerSpan.spanId,
      ),
  );
  await waitFor('node log line', () =>
    node
      .logLines()
      .find(
        (l) =>
          l.msg === 'command received' &&
          l.command === 'NodeStatusV1Req' &&
          l.trace_id === cliSpan.traceId &&
          l.span_id === nodeSpan.spanId,
      ),
  );
});

test('with no OTEL_* variable tracing is off and silent, and logs still carry the ids the command arrived with', async () => {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const controller = startProgram('controller', {
    CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  });
  await waitUntilReady(controller, metricsPort);
  const before = otlp.spans.length;
  // The CLI traces (it has OTEL_* set); the controller does not, yet passes the context on.
  const r = await runProgram(
    'cli',
    ['--controller', `127.0.0.1:${grpcPort}`, '--json', 'controller', 'version'],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    },
  );
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ controllerAppVersion: expect.any(String) });
  const cliSpan = await waitFor('CLI span', () =>
    otlp.spans.slice(before).find((s) => s.name === 'cli ControllerAppVersionV1Req'),
  );
  const line = await waitFor('controller log line', () =>
    controller
      .logLines()
      .find((l) => l.msg === 'command received' && l.command === 'ControllerAppVersionV1Req'),
  );
  expect(line.trace_id).toBe(cliSpan.traceId);
  expect(
    otlp.spans.some((s) => s.service === 'currency-controller' && s.traceId === cliSpan.traceId),
  ).toBe(false);
  // Silent: nothing but JSON log lines on stdout, nothing on stderr.
  expect(controller.stderr()).toBe('');
  expect(
    controller
      .stdout()
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('{')),
  ).toEqual([]);
  // A CLI without OTEL_* prints only its output.
  const quiet = await runProgram('cli', [
    '--controller',
    `127.0.0.1:${grpcPort}`,
    '--json',
    'controller',
    'version',
  ]);
  expect(quiet.stderr).toBe('');
  expect(() => JSON.parse(quiet.stdout) as unknown).not.toThrow();
});

test('a node reading a real upstream traces each read, and the price update that carries its price is the read span’s child', async () => {
  const market = await startMarketServer();
  try {
    const grpcPort = await freePort();
    const metricsPort = await freePort();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const controller = startProgram('controller', {
      ...otel,
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    });
    await waitUntilReady(controller, metricsPort);
    startProgram('node', {
      ...otel,
      NODE_CONTROLLER_ADDR: `127.0.0.1:${grpcPort}`,
      NODE_CURRENCY_PAIRS: 'EUR_USD',
      METRICS_ADDR: `127.0.0.1:${await freePort()}`,
      NODE_PRICE_INTERVAL_MS: '300',
      NODE_UPSTREAM: 'http',
      NODE_UPSTREAM_URL: `${market.url}/v1/quote/{symbol}?client=traced`,
      NODE_UPSTREAM_PRICE_PATH: 'price',
      NODE_UPSTREAM_TIME_PATH: 'time',
    });
    const read = await waitFor(
      'an upstream read span with a price update under it',
      () =>
        otlp.spans.find(
          (r) =>
            r.service === 'currency-node' &&
            r.name === 'node upstream read' &&
            otlp.spans.some((u) => u.name === 'node price update' && u.parentSpanId === r.spanId),
        ),
      { timeoutMs: 20_000 },
    );
    expect(read.attributes['currency.pair']).toBe('EUR_USD');
    expect(read.attributes['currency.upstream']).toBe('http');
    expect(read.attributes['currency.upstream.outcome']).toBe('ok');
    const update = otlp.spans.find(
      (u) => u.name === 'node price update' && u.parentSpanId === read.spanId,
    )!;
    // The controller continues the same trace when it takes the price.
    await waitFor('the controller taking that price, in the same trace', () =>
      otlp.spans.some(
        (c) =>
          c.service === 'currency-controller' &&
          c.traceId === read.traceId &&
          c.parentSpanId === update.spanId,
      ),
    );
  } finally {
    await killAll();
    await market.close();
  }
});
