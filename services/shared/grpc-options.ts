import type { ChannelOptions } from '@grpc/grpc-js';

/**
 * Keepalive tuned so that a silent peer (frozen process, cut cable) is noticed in about
 * two seconds on both sides: a ping every second, and a second to answer it.
 * The grpc-js server enforces no ping policy, so these never draw `too_many_pings`
 * from it; min_ping_interval keeps a C-core or Go peer's policy satisfied as well.
 */
export const KEEPALIVE_TIME_MS = 1000;
export const KEEPALIVE_TIMEOUT_MS = 1000;
/** The longest a silent peer can go unnoticed with the settings above. */
export const SILENT_PEER_DETECTION_MS = KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS;

export function serverChannelOptions(maxReceiveMessageBytes = 4 * 1024 * 1024): ChannelOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': KEEPALIVE_TIME_MS / 2,
    'grpc.max_receive_message_length': maxReceiveMessageBytes,
  };
}

export function clientChannelOptions(maxReconnectBackoffMs = 2000): ChannelOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    // Our own loop owns retries; keep the channel's own reconnect short so it never
    // sits in a long backoff of its own when the controller comes back.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': maxReconnectBackoffMs,
    'grpc.enable_retries': 0,
  };
}

/**
 * The CLI's channel: as above, with an HTTP/2 receive window as large as the largest reply
 * it takes (4 MiB, grpc-js's default message limit), so that a big reply such as
 * `controller nodes` with 10,000 nodes streams without waiting for window updates from
 * the CLI at every 64 KiB.
 */
export const CLI_FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

export function cliChannelOptions(): ChannelOptions {
  return {
    ...clientChannelOptions(),
    'grpc-node.flow_control_window': CLI_FLOW_CONTROL_WINDOW_BYTES,
  };
}
