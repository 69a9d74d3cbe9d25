/**
 * Tracing set up from the standard OTEL_* variables only. Must be loaded before
 * @grpc/grpc-js so that the gRPC instrumentation can patch it (each program's main.ts
 * imports its `otel.ts` first).
 *
 * With no exporter variable set, no SDK starts and nothing is printed or sent; a context
 * manager and the W3C propagator are still registered, so that a program with tracing off
 * passes on the trace context it receives and its log lines carry the ids of the command
 * they serve.

 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

export interface Telemetry {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

/** The longest a program waits at exit for spans to be exported. */
const SHUTDOWN_FLUSH_MS = 2000;

const EXPORTER_VARIABLES = [
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
];

export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'none') return false;
  return EXPORTER_VARIABLES.some((k) => (env[k] ?? '').trim() !== '');
}

export function startTelemetry(
  serviceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Telemetry {
  if (!tracingRequested(env)) {
    // A context manager and the W3C propagator, without an SDK: spans are not recorded,
    // but the context a command arrives with is passed on and shows in log lines.
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return { enabled: false, shutdown: async () => {} };
  }
  // Metrics go to Prometheus and logs to stdout: only traces go through OpenTelemetry,
  // unless the operator asks for more.
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  env.OTEL_SERVICE_NAME ??= serviceName;
  // Loaded lazily so that a program with tracing off never loads the SDK.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NodeSDK } =
    require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { GrpcInstrumentation } =
    require('@opentelemetry/instrumentation-grpc') as typeof import('@opentelemetry/instrumentation-grpc');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME,
    textMapPropagator: new W3CTraceContextPropagator(),
    instrumentations: [new GrpcInstrumentation()],
  });
  sdk.start();
  return {
    enabled: true,
    // A last flush, but never a long wait for a collector that is already gone.
    shutdown: () =>
      Promise.race([
        sdk.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref()),
      ]),
  };
}
