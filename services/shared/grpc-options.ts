import type { ChannelOptions } from '@grpc/grpc-js';

/**
 * Keepalive. A silent peer (frozen process, cut cable) must be noticed in about two
 * seconds; but a stock grpc-go server (default enforcement, as the original Go controller
 * runs) allows one client ping per 5 minutes and answers more with GOAWAY too_many_pings,
 * which ends every stream on the connection. So the fast pings come from the side that
 * may send them:
 * - our controller pings every node and CLI every second (server pings are never
 *   policed by clients), so a silent node is detected by the controller;
 * - a node pings fast only a controller that permitted it: ours sends the response header
 *   `x-currency-keepalive-permit-ms` (KEEPALIVE_PERMIT_METADATA_KEY) on every node stream,
 *   and the node remembers it per address (services/node/keepalive.ts). To an address it
 *   knows no permission for, it sends no client pings at all (grpc-js's default), so a
 *   grpc-go peer never sees one; the cost is that such a node notices a silent foreign
 *   controller only through TCP (minutes), not in seconds;
 * - the CLI sends no client pings: its commands take seconds and carry their own timeout.
 *   `watch` is the exception that runs long; against our controller a frozen watch
 *   connection is still cut by the controller's pings, but a `watch` whose controller
 *   freezes notices it only through TCP. That is the price of never being cut off by a
 *   stock server for pinging.
 * See docs/failure-detection.md.
 */
export const KEEPALIVE_TIME_MS = 1000;
export const KEEPALIVE_TIMEOUT_MS = 1000;
/** The longest a silent peer can go unnoticed with fast pings (server side, or a permitted node). */
export const SILENT_PEER_DETECTION_MS = KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS;
/** The keepalive permission our controller announces to nodes (ms between client pings). */
export const KEEPALIVE_PERMIT_MS = KEEPALIVE_TIME_MS;

export function serverChannelOptions(maxReceiveMessageBytes = 4 * 1024 * 1024): ChannelOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    // Nodes that were permitted ping every second: let them, with room for timer jitter.
    'grpc.http2.min_ping_interval_without_data_ms': KEEPALIVE_TIME_MS / 2,
    'grpc.max_receive_message_length': maxReceiveMessageBytes,
  };
}

/**
 * A client channel. `keepalivePermitMs`: the ping interval the server permitted (see
 * above); undefined: no client pings (grpc-js's default), as any server tolerates.
 */
export function clientChannelOptions(
  maxReconnectBackoffMs = 2000,
  keepalivePermitMs?: number,
): ChannelOptions {
  return {
    ...(keepalivePermitMs !== undefined && {
      'grpc.keepalive_time_ms': Math.max(keepalivePermitMs, KEEPALIVE_TIME_MS),
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
    }),
    // Our own loop owns retries; keep the channel's own reconnect short so it never
    // sits in a long backoff of its own when the controller comes back.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': maxReconnectBackoffMs,
    'grpc.enable_retries': 0,
  };
}

/**
 * The CLI's channel: no client pings (see above), and an HTTP/2 receive window as large as
 * the largest reply it takes (4 MiB, grpc-js's default message limit), so that a big reply
 * such as `controller nodes` with 10,000 nodes streams without waiting for window updates
 * from the CLI at every 64 KiB.
 */
export const CLI_FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

export function cliChannelOptions(): ChannelOptions {
  return {
    ...clientChannelOptions(),
    'grpc-node.flow_control_window': CLI_FLOW_CONTROL_WINDOW_BYTES,
  };
}
