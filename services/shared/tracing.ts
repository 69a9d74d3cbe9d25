/**
 * One CLI command = one trace across programs. The long-lived gRPC streams would put
 * every command under one hours-long span, so each command carries its own W3C context
 * in the envelopes' `trace_context` (field 15): extract it from ROOT_CONTEXT on receipt,
 * start the command's span from it, and inject the span's context into every frame sent on.
 */
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  context,
  isSpanContextValid,
  propagation,
  trace,
} from '@opentelemetry/api';

export { SpanKind, SpanStatusCode };
export type { Span, Context };

export function extractContext(carrier: Record<string, string> | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, carrier ?? {});
}

export function injectContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The carrier of `span`'s own context: what a frame sent as its child carries. */
export function carrierOf(span: Span): Record<string, string> {
  return injectContext(trace.setSpan(ROOT_CONTEXT, span));
}

/** RPC semantic-convention attributes for a command travelling on one of our streams. */
export function rpcAttributes(service: string, command: string): Attributes {
  return {
    'rpc.system': 'grpc',
    'rpc.service': service,
    'rpc.method': command,
    'currency.command': command,
  };
}

/** Starts a span for one command under the context carried in its envelope. */
export function startCommandSpan(
  tracerName: string,
  spanName: string,
  kind: SpanKind,
  carrier: Record<string, string> | undefined,
  attributes: Attributes,
): { span: Span; ctx: Context } {
  const parent = extractContext(carrier);
  const span = trace.getTracer(tracerName).startSpan(spanName, { kind, attributes }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

export function runIn<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/** Exemplar labels linking a metric sample to the trace it came from (a plain label set). */
export type TraceExemplar = Record<'trace_id' | 'span_id', string>;

/**
 * The trace and span ids of `span` (by default the active one) for an exemplar, only while
 * it is recorded and sampled, so that every exemplar leads to a trace the backend has:
 * none with tracing off (the span then only carries the caller's context), for an
 * unsampled command, an ended span, or an invalid (all-zero) id.
 */
export function traceExemplar(
  span: Span | undefined = trace.getActiveSpan(),
): TraceExemplar | undefined {
  if (!span?.isRecording()) return undefined;
  const sc = span.spanContext();
  if (!isSpanContextValid(sc) || (sc.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  return { trace_id: sc.traceId, span_id: sc.spanId };
}
