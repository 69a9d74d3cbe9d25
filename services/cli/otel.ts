// Imported first by main.ts: tracing must be set up before @grpc/grpc-js loads.
import { startTelemetry } from '../shared/telemetry';

export const telemetry = startTelemetry('currency-cli');
