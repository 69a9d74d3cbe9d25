import { ROOT_CONTEXT, type Span, TraceFlags, context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { traceExemplar } from './tracing';

describe('traceExemplar', () => {
  const provider = new TracerProvider();
  const tracer = provider.getTracer('test');

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(async () => {
    context.disable();
    await provider.shutdown();
  });

  test('gives the trace and span ids of the active span while it is recorded', () => {
    const span = tracer.startSpan('command');
    const got = context.with(trace.setSpan(ROOT_CONTEXT, span), () => traceExemplar());
    expect(got).toEqual({
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    });
    expect(got!.trace_id).toMatch(/^[0-9a-f]{32}$/);
    span.end();
  });

  test('gives nothing outside a span, or for a span that has ended', () => {
    expect(traceExemplar()).toBeUndefined();
    const span = tracer.startSpan('command');
    span.end();
    expect(traceExemplar(span)).toBeUndefined();
  });

  test('never gives an all-zero or unsampled id, even from a span claiming to record', () => {
    const fake = (traceId: string, traceFlags: number) =>
      ({
        isRecording: () => true,
        spanContext: () => ({ traceId, spanId: '00f067aa0ba902b7', traceFlags }),
      }) as unknown as Span;
    expect(traceExemplar(fake('0'.repeat(32), TraceFlags.SAMPLED))).toBeUndefined();
    expect(
      traceExemplar(fake('4bf92f3577b34da6a3ce929d0e0e4736', TraceFlags.NONE)),
    ).toBeUndefined();
    expect(traceExemplar(fake('4bf92f3577b34da6a3ce929d0e0e4736', TraceFlags.SAMPLED))).toEqual({
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: '00f067aa0ba902b7',
    });
  });
});
