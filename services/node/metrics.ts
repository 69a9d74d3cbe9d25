import { Counter, Gauge, type Registry, collectDefaultMetrics } from 'prom-client';

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
      help: 'Controller streams lost because keepalive pings went unanswered.',
      registers,
    }),
    commands: new Counter({
      name: 'currency_node_commands_total',
      help: 'Commands received from the controller, by command and outcome (ok, unknown).',
      labelNames: ['command', 'outcome'],
      registers,
    }),
    malformedFrames: new Counter({
      name: 'currency_node_malformed_frames_total',
      help: 'Frames from the controller that could not be decoded.',
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
