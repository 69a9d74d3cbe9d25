// Imported first by main.ts: tracing must be set up before @grpc/grpc-js loads.
import { startTelemetry } from '../shared/telemetry';
import { PROGRAMS } from '../shared/protocol';

export const telemetry = startTelemetry(PROGRAMS.cli);
