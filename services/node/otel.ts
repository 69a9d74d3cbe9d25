// Imported first by main.ts: tracing must be set up before @grpc/grpc-js loads.
import { PROGRAMS } from '../shared/protocol';
import { startTelemetry } from '../shared/telemetry';

export const telemetry = startTelemetry(PROGRAMS.node);
