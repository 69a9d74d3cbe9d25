import { Counter, Gauge, Histogram, type Registry, collectDefaultMetrics } from 'prom-client';
import { DISCONNECT_LABELS, REFUSAL_LABELS } from './core/links/close-reasons';
import { PRICE_REFUSALS } from './core/intake';

/** The controller's metrics, created on a registry per instance (two controllers in one test process do not share counters). */
export function createControllerMetrics(registry: Registry, opts: { defaultMetrics: boolean }) {
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // Price updates are counted per pair outside prom-client on the hot path (a field of each
  // pair's record in the core, read through `readAtScrape.updates`) and added to the
  // counter whenever it is read: prom-client's label lookup on every one of 100,000+
  // updates a second was a tenth of the controller's CPU.
  // Per-pair gauges worked out when read, from the controller's state: the deviation between
  // a pair's streamers (an update only overwrites each streamer's latest price), and the
  // capable nodes of every known pair (which change with every node and pair set).
  const readAtScrape: { capable?: PairValues; deviation?: PairValues; updates?: PairValues } = {};
  const metrics = {
    connectedNodes: new Gauge({
      name: 'currency_controller_connected_nodes',
      help: 'Nodes connected and registered (announced their pairs).',
      registers,
    }),
    connectedClis: new Gauge({
      name: 'currency_controller_connected_clis',
      help: 'CLI command streams open.',
      registers,
    }),
    pairsKnown: new Gauge({
      name: 'currency_controller_pairs_known',
      help: 'Known currency pairs: announced by a connected node, or by one that left less than CONTROLLER_FORGET_PAIR_AFTER_MS ago.',
      registers,
    }),
    pairsStreamed: new Gauge({
      name: 'currency_controller_pairs_streamed',
      help: 'Known pairs with at least one streaming node.',
      registers,
    }),
    pairsUnstreamed: new Gauge({
      name: 'currency_controller_pairs_unstreamed',
      help: 'Known pairs with no streaming node.',
      registers,
    }),
    pairStreamers: new Gauge({
      name: 'currency_controller_pair_streamers',
      help: 'Nodes streaming each known pair (0 when none is).',
      labelNames: ['pair'],
      registers,
    }),
    streamsPerPair: new Gauge({
      name: 'currency_controller_streams_per_pair',
      help: 'Configured number of streaming nodes per pair (CONTROLLER_STREAMS_PER_PAIR).',
      registers,
    }),
    failovers: new Counter({
      name: 'currency_controller_failovers_total',
      help: 'Times a pair moved to another node, or its standby took over as primary, because its streaming node went away, withdrew the pair (its upstream failed) or went quiet (not when this controller stops or stops leading).',
      labelNames: ['pair'],
      registers,
    }),
    priceUpdates: new Counter({
      name: 'currency_controller_price_updates_total',
      help: "Price updates stored and forwarded, from the primary streamer of each pair (a standby streamer's are not counted).",
      labelNames: ['pair'],
      registers,
      collect() {
        readAtScrape.updates?.((pair, n) => this.inc({ pair }, n));
      },
    }),
    priceDeviation: new Gauge({
      name: 'currency_controller_price_deviation_ratio',
      help: "Relative gap between the latest prices of a pair's streamers, (max - min) / min, over those received within CONTROLLER_STALE_STREAM_MS; 0 with fewer than two.",
      labelNames: ['pair'],
      registers,
      collect() {
        readAtScrape.deviation?.((pair, ratio) => this.set({ pair }, ratio));
      },
    }),
    pairCapableNodes: new Gauge({
      name: 'currency_controller_pair_capable_nodes',
      help: 'Connected nodes that offer each known pair (announced it and have not withdrawn it); 0 when none does.',
      labelNames: ['pair'],
      registers,
      collect() {
        readAtScrape.capable?.((pair, n) => this.set({ pair }, n));
      },
    }),
    /**
     * Where the per-pair gauges worked out when read (pairCapableNodes, priceDeviation) get
     * their values, and `updates` the price updates counted since the last read (each handed
     * out once: the source starts again from 0).
     */
    readAtScrapeFrom(sources: {
      capable: PairValues;
      deviation: PairValues;
      /** Each pair's updates since the last read (the source resets its counts). */
      updates: PairValues;
    }): void {
      Object.assign(readAtScrape, sources);
    },
    staleStreams: new Counter({
      name: 'currency_controller_stale_streams_total',
      help: 'Times a streamer sent no price for a pair for CONTROLLER_STALE_STREAM_MS and the pair moved to another node, or its live standby took over as primary.',
      labelNames: ['pair'],
      registers,
    }),
    pricesRefused: new Counter({
      name: 'currency_controller_prices_refused_total',
      help: 'Price updates refused, by reason (not_positive, bad_timestamp, future); never stored or forwarded.',
      labelNames: ['reason'],
      registers,
    }),
    pricesSuperseded: new Counter({
      name: 'currency_controller_prices_superseded_total',
      help: 'Price updates not newer than the latest held for their pair; dropped, not forwarded.',
      registers,
    }),
    pairsRefused: new Counter({
      name: 'currency_controller_pairs_refused_total',
      help: 'Announced pairs refused because the controller holds CONTROLLER_MAX_KNOWN_PAIRS.',
      registers,
    }),
    pairsForgotten: new Counter({
      name: 'currency_controller_pairs_forgotten_total',
      help: 'Known pairs forgotten after CONTROLLER_FORGET_PAIR_AFTER_MS with no capable node.',
      registers,
    }),
    reassignments: new Counter({
      name: 'currency_controller_stream_reassignments_total',
      help: 'Streams given to another node, by reason (node_left, kicked, rebalanced, pairs_changed, withdrawn, stale).',
      labelNames: ['reason'],
      registers,
    }),
    commands: new Counter({
      name: 'currency_controller_commands_total',
      help: 'CLI commands handled, by command and outcome (ok, error, timeout, partial, unknown).',
      labelNames: ['command', 'outcome'],
      registers,
    }),
    commandDuration: registeredAfter(
      registry,
      new Histogram({
        name: 'currency_controller_command_duration_seconds',
        help: 'Seconds from a CLI command reaching the controller to its last reply leaving it.',
        labelNames: ['command'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        // The command's trace id on the latest sample of each bucket, in OpenMetrics scrapes
        // only; observe() then takes { labels, value, exemplarLabels }. prom-client refuses
        // exemplars on a metric constructed into a text-format registry, as if the registry
        // rendered itself; ours is rendered in either format by services/shared/metrics-format.ts,
        // so the histogram joins it after construction.
        enableExemplars: true,
        registers: [],
      }),
    ),
    malformedFrames: new Counter({
      name: 'currency_controller_malformed_frames_total',
      help: 'Inbound frames that could not be decoded or failed validation, by peer kind.',
      labelNames: ['peer'],
      registers,
    }),
    unknownCommands: new Counter({
      name: 'currency_controller_unknown_commands_total',
      help: 'Commands of a type the controller does not know, answered with UnknownCommandV1Notify.',
      labelNames: ['peer'],
      registers,
    }),
    nodeDisconnects: new Counter({
      name: 'currency_controller_node_disconnects_total',
      help: 'Node streams that ended, by reason (closed, lost, kicked, replaced, shutdown, rejected).',
      labelNames: ['reason'],
      registers,
    }),
    watchUpdatesDropped: new Counter({
      name: 'currency_controller_watch_updates_dropped_total',
      help: 'Price updates not sent to a watching CLI because it was not reading fast enough.',
      registers,
    }),
    rejected: new Counter({
      name: 'currency_controller_rejected_total',
      help: 'Peers or commands refused by a limit, by reason (max_nodes, max_pairs, max_clis, max_pending, slow_consumer, register_timeout).',
      labelNames: ['reason'],
      registers,
    }),
    leader: new Gauge({
      name: 'currency_controller_leader',
      help: '1 while this controller leads (always 1 with CONTROLLER_LEADER_ELECTION=off), else 0.',
      registers,
    }),
    leadershipChanges: new Counter({
      name: 'currency_controller_leadership_changes_total',
      help: 'Times this controller started or stopped leading, by reason (acquired, lost, deadline, released).',
      labelNames: ['reason'],
      registers,
    }),
    leaseRenewDuration: new Histogram({
      name: 'currency_controller_lease_renew_duration_seconds',
      help: 'Seconds a Lease renewal by the leading controller took, by outcome (ok, held, conflict, error, timeout).',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    info: new Gauge({
      name: 'currency_controller_info',
      help: 'Always 1; the version label carries the controller app version.',
      labelNames: ['version'],
      registers,
    }),
  };
  // Every labelled counter with a fixed label set starts at 0, so that rate() and
  // increase() in dashboards and alerts see its first event.
  for (const reason of [
    'node_left',
    'kicked',
    'rebalanced',
    'pairs_changed',
    'withdrawn',
    'stale',
  ]) {
    metrics.reassignments.inc({ reason }, 0);
  }
  for (const reason of DISCONNECT_LABELS) metrics.nodeDisconnects.inc({ reason }, 0);
  for (const reason of [...REFUSAL_LABELS, 'max_pending']) metrics.rejected.inc({ reason }, 0);
  for (const reason of PRICE_REFUSALS) metrics.pricesRefused.inc({ reason }, 0);
  for (const reason of ['acquired', 'lost', 'deadline', 'released'])
    metrics.leadershipChanges.inc({ reason }, 0);
  metrics.leader.set(0);
  for (const peer of ['node', 'cli']) {
    metrics.malformedFrames.inc({ peer }, 0);
    metrics.unknownCommands.inc({ peer }, 0);
  }
  return metrics;
}

export type ControllerMetrics = ReturnType<typeof createControllerMetrics>;

/** Calls `set` with the value of each pair a per-pair gauge has. */
type PairValues = (set: (pair: string, value: number) => void) => void;

/** Registers a metric built with `registers: []` (exemplars, see commandDuration), in place. */
function registeredAfter<T extends string>(registry: Registry, metric: Histogram<T>): Histogram<T> {
  registry.registerMetric(metric);
  return metric;
}
