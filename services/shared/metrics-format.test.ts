import { ROOT_CONTEXT, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { Histogram, type LabelValues, Registry } from 'prom-client';
import { exemplarsIn, seriesIn, sorted } from '../../tests/support/exposition';
import { createControllerMetrics } from '../controller/metrics';
import { createNodeMetrics } from '../node/metrics';
import { negotiateMetricsFormat, renderMetrics } from './metrics-format';
import { traceExemplar } from './tracing';

/** What Prometheus 2.x and 3.x send when scraping (scrape_protocols defaults). */
const PROMETHEUS_2_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const PROMETHEUS_3_ACCEPT =
  'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2';

describe('content negotiation on /metrics', () => {
  test.each([
    ['Prometheus 2', PROMETHEUS_2_ACCEPT],
    ['Prometheus 3', PROMETHEUS_3_ACCEPT],
    ['OpenMetrics alone', 'application/openmetrics-text'],
    ['OpenMetrics ranked above text', 'text/plain;q=0.5, application/openmetrics-text;q=0.9'],
  ])('%s gets OpenMetrics', (_, accept) => {
    expect(negotiateMetricsFormat(accept)).toBe('openmetrics');
  });

  test.each([
    ['no Accept header (older scrapers)', undefined],
    ['curl (*/*)', '*/*'],
    ['a browser', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['text ranked above OpenMetrics', 'text/plain, application/openmetrics-text;q=0.1'],
    ['OpenMetrics refused (q=0)', 'application/openmetrics-text;q=0, */*'],
    ['only types we do not serve', 'application/json'],
    ['an empty header', ''],
    ['an unreadable header', 'a;;,,"x/'],
  ])('%s gets the text format', (_, accept) => {
    expect(negotiateMetricsFormat(accept)).toBe('text');
  });
});

describe('both formats from one registry', () => {
  function controllerRegistry(defaultMetrics: boolean) {
    const registry = new Registry();
    const m = createControllerMetrics(registry, { defaultMetrics });
    m.commandDuration.observe({ labels: { command: 'ControllerListNodesV1Req' }, value: 0.003 });
    m.commands.inc({ command: 'ControllerListNodesV1Req', outcome: 'ok' });
    m.failovers.inc({ pair: 'USD_HKD' });
    m.priceUpdates.inc({ pair: 'USD_HKD' }, 3);
    m.pairStreamers.set({ pair: 'USD_HKD' }, 1);
    m.leaseRenewDuration.observe({ outcome: 'ok' }, 0.01);
    m.info.set({ version: 'test' }, 1);
    return registry;
  }

  function nodeRegistry(defaultMetrics: boolean) {
    const registry = new Registry();
    const m = createNodeMetrics(registry, { defaultMetrics });
    m.priceUpdatesSent.inc({ pair: 'USD_HKD' }, 2);
    m.reconnects.inc();
    return registry;
  }

  test.each([
    ['controller', controllerRegistry],
    ['node', nodeRegistry],
  ])(
    'the %s exposes exactly the same series in OpenMetrics as in the text format',
    async (_, make) => {
      const registry = make(true);
      const text = (await renderMetrics(registry, 'text')).body;
      const om = (await renderMetrics(registry, 'openmetrics')).body;
      expect(sorted(seriesIn(om))).toEqual(sorted(seriesIn(text)));
      // Counters, the one family whose naming differs between the formats, are all there.
      const counters = [...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]!);
      expect(counters.length).toBeGreaterThan(3);
      for (const name of counters) {
        expect(name).toMatch(/_total$/);
        expect(om).toContain(`# TYPE ${name.replace(/_total$/, '')} counter\n`);
      }
      expect(om.endsWith('# EOF\n')).toBe(true);
    },
  );

  test('content types: text/plain 0.0.4 for the text format, OpenMetrics 1.0.0 otherwise', async () => {
    const registry = nodeRegistry(false);
    expect((await renderMetrics(registry, 'text')).contentType).toBe(
      'text/plain; version=0.0.4; charset=utf-8',
    );
    expect((await renderMetrics(registry, 'openmetrics')).contentType).toBe(
      'application/openmetrics-text; version=1.0.0; charset=utf-8',
    );
  });

  test('OpenMetrics scrapes, one after another or at once, leave the text format exactly as it was', async () => {
    const registry = controllerRegistry(false);
    const before = await registry.metrics();
    expect(before).toContain('currency_controller_failovers_total{pair="USD_HKD"} 1');
    await renderMetrics(registry, 'openmetrics');
    const together = await Promise.all([
      renderMetrics(registry, 'openmetrics'),
      renderMetrics(registry, 'text'),
      renderMetrics(registry, 'openmetrics'),
      renderMetrics(registry, 'text'),
    ]);
    expect(together[1]!.body).toBe(before);
    expect(together[3]!.body).toBe(before);
    expect((await renderMetrics(registry, 'text')).body).toBe(before);
    expect(together[0]!.body).toBe(together[2]!.body);
  });
});

describe('exemplars', () => {
  const provider = new TracerProvider();
  const tracer = provider.getTracer('test');
  const contextManager = new AsyncLocalStorageContextManager();

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  afterAll(async () => {
    context.disable();
    await provider.shutdown();
  });

  function latency() {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 'test_latency_seconds',
      help: 'Test latency.',
      labelNames: ['command'],
      buckets: [0.1, 1],
      enableExemplars: true,
      registers: [],
    });
    registry.registerMetric(histogram); // as services/controller/metrics.ts does
    /** Observes as the controller does: the exemplar from whatever span is active. */
    const observe = (value: number) => {
      const exemplar = traceExemplar();
      histogram.observe({
        labels: { command: 'x' },
        value,
        ...(exemplar ? { exemplarLabels: exemplar as LabelValues<string> } : {}),
      });
    };
    return { registry, observe };
  }

  test('an observation made inside an active span carries its trace id in OpenMetrics, never in the text format', async () => {
    const { registry, observe } = latency();
    const span = tracer.startSpan('command');
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => observe(0.05));
    span.end();
    const om = (await renderMetrics(registry, 'openmetrics')).body;
    expect(exemplarsIn(om)).toEqual([
      {
        series: 'test_latency_seconds_bucket{le="0.1",command="x"}',
        labels: { trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId },
        value: 0.05,
      },
    ]);
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span.spanContext().traceId).not.toMatch(/^0+$/);
    const text = (await renderMetrics(registry, 'text')).body;
    expect(text).not.toContain('trace_id');
    expect(text).not.toContain(' # ');
  });

  test('an observation made outside any span carries no exemplar', async () => {
    const { registry, observe } = latency();
    observe(0.05);
    observe(0.5);
    const om = (await renderMetrics(registry, 'openmetrics')).body;
    expect(om).toContain('test_latency_seconds_count{command="x"} 2');
    expect(exemplarsIn(om)).toEqual([]);
    expect(om).not.toContain('trace_id');
  });
});
