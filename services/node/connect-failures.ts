/**
 * A node that cannot reach its controller says why at `warn`, without flooding the log:
 * the first failure is logged, then at most one line per window, saying how many were
 * not logged in between. A registration resets it.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../shared/logger';

export const CONNECT_FAILURE_LOG_WINDOW_MS = 30_000;

/** A short human cause for a stream that ended before the controller ever answered. */
export function connectFailureCause(code: number | undefined, details: string | undefined): string {
  const d = details ?? '';
  if (/ECONNREFUSED/.test(d)) return 'connection refused';
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(d)) return 'name not resolved';
  if (/certificate|CERT_|self[- ]signed|unable to (get|verify)|verify/i.test(d)) {
    return 'TLS: the controller certificate is not trusted (check NODE_TLS_CA_FILE and NODE_TLS_SERVER_NAME)';
  }
  if (/SSL|TLS|wrong version number|handshake|secure/i.test(d)) {
    return 'TLS mismatch (TLS against a plaintext controller? check NODE_TLS_CA_FILE)';
  }
  // The connection opened but closed before HTTP/2 started: what a TLS port does to plaintext.
  if (/Failed to connect|Protocol error/i.test(d)) {
    return 'TLS mismatch, or not a gRPC server (plaintext against a TLS controller? set NODE_TLS_CA_FILE)';
  }
  if (code === grpc.status.DEADLINE_EXCEEDED || /deadline|ETIMEDOUT|timed? ?out/i.test(d)) {
    return 'deadline exceeded (no answer from the controller)';
  }
  if (/ECONNRESET|Connection dropped|EPIPE/i.test(d)) return 'connection reset';
  if (/EHOSTUNREACH|ENETUNREACH/.test(d)) return 'host unreachable';
  return code === undefined ? 'stream ended' : `${grpc.status[code] ?? code}: ${d}`;
}

export class ConnectFailureLog {
  private lastLoggedMs: number | undefined;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly windowMs = CONNECT_FAILURE_LOG_WINDOW_MS,
  ) {}

  failed(fields: Record<string, unknown> & { cause: string }): void {
    const now = this.now();
    if (this.lastLoggedMs !== undefined && now - this.lastLoggedMs < this.windowMs) {
      this.suppressed++;
      return;
    }
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.lastLoggedMs = now;
    this.log.warn(
      { ...fields, ...(suppressed > 0 && { suppressed }) },
      suppressed > 0
        ? `cannot reach the controller: ${fields.cause} (${suppressed} more failed attempts not logged)`
        : `cannot reach the controller: ${fields.cause}`,
    );
  }

  reset(): void {
    this.lastLoggedMs = undefined;
    this.suppressed = 0;
  }
}
