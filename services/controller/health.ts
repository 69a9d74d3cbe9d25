/** The standard grpc.health.v1.Health service: Check and Watch. */
import * as grpc from '@grpc/grpc-js';
import {
  HealthCheckRequest,
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Status,
  HealthService,
} from '../gen/grpc/health/v1/health';

export { Status as HealthStatus };

export class HealthState {
  private readonly statuses = new Map<string, Status>();
  private readonly watchers = new Set<{
    service: string;
    call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;
  }>();

  constructor(services: string[]) {
    // '' is the server as a whole.
    for (const s of ['', ...services]) this.statuses.set(s, Status.NOT_SERVING);
  }

  setAll(status: Status): void {
    for (const s of this.statuses.keys()) this.statuses.set(s, status);
    for (const w of this.watchers)
      w.call.write({ status: this.statuses.get(w.service) ?? Status.SERVICE_UNKNOWN });
  }

  status(service = ''): Status | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (at shutdown, so that the server can close). */
  endWatches(): void {
    for (const w of this.watchers) w.call.end();
    this.watchers.clear();
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      check: (
        call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        callback: grpc.sendUnaryData<HealthCheckResponse>,
      ) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined) {
          callback({
            code: grpc.status.NOT_FOUND,
            details: `unknown service "${call.request.service}"`,
          });
        } else {
          callback(null, { status });
        }
      },
      watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const watcher = { service: call.request.service, call };
        this.watchers.add(watcher);
        call.write({ status: this.statuses.get(watcher.service) ?? Status.SERVICE_UNKNOWN });
        const drop = () => this.watchers.delete(watcher);
        call.on('cancelled', drop);
        call.on('error', drop);
        call.on('close', drop);
      },
    };
  }

  static definition = HealthService;
}
