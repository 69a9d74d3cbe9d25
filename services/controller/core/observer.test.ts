import { TraceFlags, trace } from '@opentelemetry/api';
import { AlwaysOffSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { Registry } from 'prom-client';
import { exemplarsIn } from '../../../tests/support/exposition';
import { silentLogger } from '../../shared/logger';
import { renderMetrics } from '../../shared/metrics-format';
import { seededRandom } from '../../shared/scheduler';
import { Assignment } from './node-side/assignment';
import { createControllerMetrics } from '../metrics';
import { Observer } from './observer';

describe('command latency exemplars', () => {
  const sampled = new TracerProvider();
  const unsampled = new TracerProvider({ sampler: new AlwaysOffSampler() });
  afterAll(async () => {
    await Promise.all([sampled.shutdown(), unsampled.shutdown()]);
  });

  function setup() {
    const registry = new Registry();
    const metrics = createControllerMetrics(registry, { defaultMetrics: false });
    const observer = new Observer(metrics, silentLogger(), new Assignment(1, seededRandom(1)));
    const openMetrics = async () => (await renderMetrics(registry, 'openmetrics')).body;
    return { registry, observer, openMetrics };
  }

  test("a traced command's latency sample carries the command span's trace and span ids", async () => {
    const { observer, openMetrics } = setup();
    const span = sampled.getTracer('test').startSpan('controller NodeStatusV1Req');
    const { traceId, spanId } = span.spanContext();
    observer.commandFinished('NodeStatusV1Req', 'ok', 0.004, span);
    const page = await openMetrics();
    expect(exemplarsIn(page)).toEqual([
      {
        series:
          'currency_controller_command_duration_seconds_bucket{le="0.005",command="NodeStatusV1Req"}',
        labels: { trace_id: traceId, span_id: spanId },
        value: 0.004,
      },
    ]);
    expect(page).toContain(
      'currency_controller_command_duration_seconds_count{command="NodeStatusV1Req"} 1',
    );
  });

  test('an unsampled command, or one seen with tracing off, is counted without an exemplar', async () => {
    const { observer, openMetrics } = setup();
    observer.commandFinished(
      'ControllerListNodesV1Req',
      'ok',
      0.002,
      unsampled.getTracer('test').startSpan('controller ControllerListNodesV1Req'),
    );
    // Tracing off: the span only carries the CLI's (sampled) context and records nothing.
    const passedOn = trace.wrapSpanContext({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    observer.commandFinished('ControllerAppVersionV1Req', 'ok', 0.3, passedOn);
    const page = await openMetrics();
    expect(page).toContain(
      'currency_controller_command_duration_seconds_count{command="ControllerListNodesV1Req"} 1',
    );
    expect(page).toContain(
      'currency_controller_command_duration_seconds_count{command="ControllerAppVersionV1Req"} 1',
    );
    expect(exemplarsIn(page)).toEqual([]);
  });
});

describe('price updates counted in the pair slots', () => {
  test("each scrape adds the slots' counts since the last one to currency_controller_price_updates_total", async () => {
    const registry = new Registry();
    const metrics = createControllerMetrics(registry, { defaultMetrics: false });
    const assignment = new Assignment(1, seededRandom(1));
    const observer = new Observer(metrics, silentLogger(), assignment);
    observer.readAtScrape(() => 0);
    assignment.addNode('node-a', ['BTC_USD', 'ETH_USD']);
    const btc = assignment.slots.get('BTC_USD')!;
    const eth = assignment.slots.get('ETH_USD')!;
    const count = async () =>
      Object.fromEntries(
        (await metrics.priceUpdates.get()).values.map((v) => [v.labels.pair, v.value]),
      );
    for (let i = 0; i < 3; i++) observer.pricesAccepted(btc);
    observer.pricesAccepted(eth);
    expect(await count()).toEqual({ BTC_USD: 3, ETH_USD: 1 });
    expect(btc.updates).toBe(0);
    expect(await count()).toEqual({ BTC_USD: 3, ETH_USD: 1 });
    observer.pricesAccepted(btc);
    observer.pricesAccepted(eth);
    observer.pricesAccepted(eth);
    expect(await count()).toEqual({ BTC_USD: 4, ETH_USD: 3 });
  });
});

describe('failovers', () => {
  function setup(streamsPerPair: number) {
    const registry = new Registry();
    const metrics = createControllerMetrics(registry, { defaultMetrics: false });
    const assignment = new Assignment(streamsPerPair, seededRandom(1));
    const observer = new Observer(metrics, silentLogger(), assignment);
    const value = async (name: string, pair: string) =>
      (await registry.getSingleMetric(name)!.get()).values.find((v) => v.labels.pair === pair)
        ?.value ?? 0;
    return { assignment, observer, value };
  }

  test('a quiet primary that makes way for a live standby is a failover (stale), as a move is', async () => {
    const { assignment, observer, value } = setup(3);
    for (const n of ['A', 'B', 'C']) observer.changeApplied(assignment.addNode(n, ['USD_HKD']));
    expect(assignment.primaryOf('USD_HKD')).toBe('A');
    // Every capable node already streams the pair: the live standby C is primary instead.
    observer.changeApplied(assignment.demote('A', 'USD_HKD', (u) => u === 'C'));
    expect(assignment.primaryOf('USD_HKD')).toBe('C');
    expect(await value('currency_controller_failovers_total', 'USD_HKD')).toBe(1);
    expect(await value('currency_controller_stale_streams_total', 'USD_HKD')).toBe(1);
  });

  test('a quiet primary moved to a spare node counts once, not again for its promoted standby', async () => {
    const { assignment, observer, value } = setup(2);
    for (const n of ['A', 'B', 'C']) observer.changeApplied(assignment.addNode(n, ['USD_HKD']));
    observer.changeApplied(assignment.demote('A', 'USD_HKD'));
    expect(assignment.primaryOf('USD_HKD')).toBe('B');
    expect(await value('currency_controller_failovers_total', 'USD_HKD')).toBe(1);
    expect(await value('currency_controller_stale_streams_total', 'USD_HKD')).toBe(1);
  });

  test('a standby promoted because its primary left is counted once, with the move', async () => {
    const { assignment, observer, value } = setup(2);
    for (const n of ['A', 'B']) observer.changeApplied(assignment.addNode(n, ['USD_HKD']));
    observer.changeApplied(assignment.removeNode('A', 'node_left'));
    expect(assignment.primaryOf('USD_HKD')).toBe('B');
    // No spare node: nothing moved to a node, but the pair's prices now come from B.
    expect(await value('currency_controller_failovers_total', 'USD_HKD')).toBe(1);
  });
});
