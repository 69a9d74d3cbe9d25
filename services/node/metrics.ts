import { Counter, Gauge, Histogram, type Registry, collectDefaultMetrics } from 'prom-client';

/** The node's metrics, on a registry per instance. */
export function createNodeMetrics(registry: Registry, opts: { defaultMetrics: boolean }) {
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    connected: new Gauge({
      name: 'currency_node_connected',
      help: '1 while the node has a registered stream to a controller, else 0.',
      registers,
    }),
    pairsStreaming: new Gauge({
      name: 'currency_node_pairs_streaming',
      help: 'Pairs this node is streaming now.',
      registers,
    }),
    priceUpdatesSent: new Counter({
      name: 'currency_node_price_updates_sent_total',
      help: 'Price updates sent to the controller.',
      labelNames: ['pair'],
      registers,
    }),
    priceUpdatesDropped: new Counter({
      name: 'currency_node_price_updates_dropped_total',
      help: 'Price updates skipped because the stream to the controller was backed up.',
      registers,
    }),
    reconnects: new Counter({
      name: 'currency_node_reconnects_total',
      help: 'Times the node registered again after losing its controller stream.',
      registers,
    }),
    reconnectAttempts: new Counter({
      name: 'currency_node_reconnect_attempts_total',
      help: 'Connection attempts made after the first.',
      registers,
    }),
    keepaliveTimeouts: new Counter({
      name: 'currency_node_keepalive_timeouts_total',
      help: 'Controller streams lost because keepalive pings went unanswered while the controller held the connection open (frozen, or cut off silently); a connection it closed or reset is not counted (docs/failure-detection.md).',
      registers,
    }),
    commands: new Counter({
      name: 'currency_node_commands_total',
      help: 'Commands received from the controller, by command and outcome (ok, malformed, unknown).',
      labelNames: ['command', 'outcome'],
      registers,
    }),
    malformedFrames: new Counter({
      name: 'currency_node_malformed_frames_total',
      help: 'Frames from the controller that could not be decoded.',
      registers,
    }),
    upstreamRequests: new Counter({
      name: 'currency_node_upstream_requests_total',
      help: 'Upstream reads (HTTP requests, WebSocket price messages, simulated reads), by outcome: ok, or why no price came (http_status, rate_limited, timeout, network, redirect, too_large, invalid_json, no_price, bad_price, bad_time, stale, future).',
      labelNames: ['outcome'],
      registers,
    }),
    upstreamLatency: new Histogram({
      name: 'currency_node_upstream_request_duration_seconds',
      help: 'Time of one upstream HTTP request, or of one WebSocket connect.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    upstreamPriceAge: new Gauge({
      name: 'currency_node_upstream_price_age_seconds',
      help: "Age of the latest valid upstream price of a pair when it arrived (its own time against the node's clock; 0 when the upstream gives no time).",
      labelNames: ['pair'],
      registers,
    }),
    upstreamWithdrawn: new Gauge({
      name: 'currency_node_upstream_withdrawn_pairs',
      help: 'Pairs this node has withdrawn because their upstream gives no valid price.',
      registers,
    }),
    upstreamWithdrawals: new Counter({
      name: 'currency_node_upstream_withdrawals_total',
      help: 'Times a pair was withdrawn because its upstream gave no valid price for NODE_UPSTREAM_FAIL_AFTER_MS.',
      labelNames: ['pair'],
      registers,
    }),
    info: new Gauge({
      name: 'currency_node_info',
      help: 'Always 1; labels carry the node app version, UUID and name.',
      labelNames: ['version', 'node_uuid', 'node_name'],
      registers,
    }),
  };
}

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;
