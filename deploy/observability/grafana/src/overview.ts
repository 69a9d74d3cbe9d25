/**
 * currency-nodes overview (uid currency-nodes-overview): the controller and its nodes at a
 * glance, one namespace (release) at a time.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  barsPanel,
  ctl,
  dashboardShell,
  fixedColor,
  graphPanel,
  hideColumns,
  histogramQuantile,
  increase,
  jobVariable,
  nod,
  outcomesPanel,
  q,
  rate,
  releaseVariables,
  row,
  series,
  statPanel,
  tablePanel,
  thresholds,
  toModel,
  valueMap,
  withNodeName,
} from './lib';

/** Node series labelled with node_name (every node of the selected jobs). */
const named = (expr: string) => withNodeName(expr, false);
/** `sum by (node_name) (...)` of a node series, labelled with node_name. */
const perNode = (expr: string) => `sum by (node_name) (${named(expr)})`;

/** The same process metric of the controllers (by instance) and of the nodes (by name). */
const processQueries = (metricExpr: (selector: string) => string, metric: string) => [
  q(metricExpr(ctl(metric)), 'controller {{instance}}'),
  q(named(metricExpr(nod(metric))), '{{node_name}}'),
];
const plain = (selector: string) => selector;

export const overview = () =>
  toModel(
    dashboardShell({
      uid: 'currency-nodes-overview',
      title: 'currency-nodes overview',
      description:
        'The controller and its price-streaming nodes: fleet, pairs and streams, failovers, commands, connections and processes.',
      link: { title: 'Node detail', uid: 'currency-nodes-node' },
    })
      .variables([
        ...releaseVariables('currency_controller_info'),
        jobVariable('controller_job', 'Controller job', 'currency_controller_info'),
        jobVariable('node_job', 'Node job', 'currency_node_info'),
      ])

      .withRow(row(1, 'Fleet'))
      .withPanel(
        statPanel(
          {
            id: 2,
            title: 'Connected nodes',
            description:
              'Nodes registered with the controller now (currency_controller_connected_nodes). 0 fires CurrencyNoNodesConnected after a minute.',
            span: 4,
          },
          q(`sum(${ctl('currency_controller_connected_nodes')})`, 'nodes'),
        ).thresholds(thresholds('red', [1, 'green'])),
      )
      .withPanel(
        statPanel(
          {
            id: 3,
            title: 'Pairs known',
            description:
              'Pairs announced by a connected node, or by one that left less than CONTROLLER_FORGET_PAIR_AFTER_MS ago.',
            span: 4,
          },
          q(`sum(${ctl('currency_controller_pairs_known')})`, 'known'),
        ).thresholds(thresholds('blue')),
      )
      .withPanel(
        statPanel(
          {
            id: 4,
            title: 'Pairs streamed',
            description: 'Known pairs with at least one streaming node.',
            span: 4,
          },
          q(`sum(${ctl('currency_controller_pairs_streamed')})`, 'streamed'),
        ).thresholds(thresholds('green')),
      )
      .withPanel(
        statPanel(
          {
            id: 5,
            title: 'Pairs unstreamed',
            description:
              'Known pairs no node streams now: no prices for them. Sustained, this fires CurrencyPairUnstreamed (a connected node offers the pair) or CurrencyPairNoHealthyUpstream (none does: each withdrew it, its upstream failing, or is gone).',
            span: 4,
          },
          q(`sum(${ctl('currency_controller_pairs_unstreamed')})`, 'unstreamed'),
        ).thresholds(thresholds('green', [1, 'red'])),
      )
      .withPanel(
        statPanel(
          {
            id: 6,
            title: 'Failovers in range',
            description:
              'Pairs moved to another node because their streaming node went away, over the selected time range.',
            span: 4,
          },
          // `or vector(0)`: 0 rather than "No data" before the first failover.
          q(
            `sum(${increase(ctl('currency_controller_failovers_total'), '$__range')}) or vector(0)`,
            'failovers',
          ),
        )
          .thresholds(thresholds('green', [1, 'orange'], [10, 'red']))
          .decimals(0),
      )
      .withPanel(
        statPanel(
          {
            id: 7,
            title: 'Connected CLIs',
            description:
              'CLI command streams open on the controller now (watch commands stay open).',
            span: 4,
          },
          q(`sum(${ctl('currency_controller_connected_clis')})`, 'CLIs'),
        ).thresholds(thresholds('blue')),
      )
      .withPanel(
        statPanel(
          {
            id: 8,
            title: 'Scrape targets up',
            description:
              'Targets of the controller and node jobs that Prometheus scraped successfully (up == 1) vs all targets. Controller down fires CurrencyControllerDown.',
            span: 12,
          },
          q(`sum by (job) (${series('up', 'job=~"$controller_job|$node_job"')})`, '{{job}} up'),
          q(
            `count by (job) (${series('up', 'job=~"$controller_job|$node_job"')})`,
            '{{job}} targets',
          ),
        )
          .thresholds(thresholds('blue'))
          .graphMode(common.BigValueGraphMode.None)
          .textMode(common.BigValueTextMode.ValueAndName),
      )
      .withPanel(
        statPanel(
          {
            id: 9,
            title: 'Streams per pair (target)',
            description:
              'CONTROLLER_STREAMS_PER_PAIR: how many nodes the controller tries to have streaming each pair.',
            span: 4,
          },
          q(`max(${ctl('currency_controller_streams_per_pair')})`, 'target'),
        ).thresholds(thresholds('blue')),
      )
      .withPanel(
        tablePanel(
          {
            id: 10,
            title: 'Versions',
            description: 'App version of the controller and of each node (the *_info gauges).',
            span: 8,
            height: 4,
          },
          q(`max by (job, instance, version) (${ctl('currency_controller_info')})`, ''),
          q(`max by (job, instance, node_name, version) (${nod('currency_node_info')})`, ''),
        ).transformations([{ id: 'merge', options: {} }, hideColumns('Time', 'Value')]),
      )

      .withRow(row(11, 'Pairs and streams'))
      .withPanel(
        graphPanel(
          {
            id: 12,
            title: 'Pairs: known vs streamed vs unstreamed',
            description:
              'Streamed + unstreamed = known. Unstreamed above 0 means pairs without prices.',
            span: 12,
          },
          q(`sum(${ctl('currency_controller_pairs_known')})`, 'known'),
          q(`sum(${ctl('currency_controller_pairs_streamed')})`, 'streamed'),
          q(`sum(${ctl('currency_controller_pairs_unstreamed')})`, 'unstreamed'),
        )
          .unit('short')
          .decimals(0)
          .min(0)
          .overrideByName('unstreamed', [fixedColor('red')]),
      )
      .withPanel(
        graphPanel(
          {
            id: 13,
            title: 'Streamers per pair',
            description:
              'Nodes streaming each known pair, against the configured target (dashed). 0 = pair unstreamed.',
            span: 12,
          },
          q(`max by (pair) (${ctl('currency_controller_pair_streamers')})`, '{{pair}}'),
          q(`max(${ctl('currency_controller_streams_per_pair')})`, 'target'),
        )
          .unit('short')
          .decimals(0)
          .min(0)
          .overrideByName('target', [
            { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
            fixedColor('text'),
          ]),
      )
      .withPanel(
        graphPanel(
          {
            id: 14,
            title: 'Price updates received per pair',
            description:
              'Price updates the controller receives from streaming nodes, per second, per pair. A pair dropping to 0 lost its stream.',
            span: 12,
          },
          q(`sum by (pair) (${rate(ctl('currency_controller_price_updates_total'))})`, '{{pair}}'),
        ).unit('ops'),
      )
      .withPanel(
        graphPanel(
          {
            id: 15,
            title: 'Price updates sent per node',
            description: 'Price updates each node sends to the controller, per second.',
            span: 12,
          },
          q(perNode(rate(nod('currency_node_price_updates_sent_total'))), '{{node_name}}'),
        ).unit('ops'),
      )
      .withPanel(
        graphPanel(
          {
            id: 16,
            title: 'Failover rate',
            description:
              'Failovers per minute, all pairs: a pair moved to another node, or its standby took over as primary, because its streaming node went away, withdrew the pair (its upstream failed) or went quiet. Sustained high rates fire CurrencyFailoverStorm.',
            span: 8,
          },
          q(`sum(${rate(ctl('currency_controller_failovers_total'))}) * 60`, 'failovers / min'),
        ).unit('short'),
      )
      .withPanel(
        barsPanel(
          {
            id: 17,
            title: 'Failovers per pair',
            description:
              'Failovers in each interval, per pair. A pair failing over again and again fires CurrencyPairFlapping.',
            span: 8,
          },
          q(`sum by (pair) (${increase(ctl('currency_controller_failovers_total'))})`, '{{pair}}'),
        ).unit('short'),
      )
      .withPanel(
        barsPanel(
          {
            id: 18,
            title: 'Stream reassignments by reason',
            description:
              "Streams given to another node, by reason: node_left (failover), kicked, rebalanced, pairs_changed, withdrawn (the node's upstream for the pair failed), stale (the streamer went quiet).",
            span: 8,
          },
          q(
            `sum by (reason) (${increase(ctl('currency_controller_stream_reassignments_total'))})`,
            '{{reason}}',
          ),
        ).unit('short'),
      )

      .withRow(row(40, 'Upstreams'))
      .withPanel(
        graphPanel(
          {
            id: 41,
            title: 'Withdrawn pairs',
            description:
              "Pairs each node has withdrawn because their upstream gives no valid price, and the fleet's total. A withdrawn pair moves to another node that offers it (reassignment reason withdrawn).",
            span: 12,
          },
          q(perNode(nod('currency_node_upstream_withdrawn_pairs')), '{{node_name}}'),
          q(`sum(${nod('currency_node_upstream_withdrawn_pairs')})`, 'fleet total'),
        )
          .unit('short')
          .min(0)
          .decimals(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 42,
            title: 'Nodes offering each pair (10 fewest)',
            description:
              'Connected nodes that offer each known pair (announced it and have not withdrawn it), the 10 pairs with the fewest. 0 = no node can stream the pair: after two minutes this fires CurrencyPairNoHealthyUpstream.',
            span: 12,
          },
          q(
            `bottomk(10, max by (pair) (${ctl('currency_controller_pair_capable_nodes')}))`,
            '{{pair}}',
          ),
        )
          .unit('short')
          .min(0)
          .decimals(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 43,
            title: 'Price deviation between streamers (top 10 pairs)',
            description:
              "(max - min) / min of the latest prices of each pair's streamers (received within CONTROLLER_STALE_STREAM_MS), the 10 pairs furthest apart; 0 with fewer than two streamers (CONTROLLER_STREAMS_PER_PAIR 1). Above 1 % (dashed) for five minutes fires CurrencyPairStreamersDisagree.",
            span: 12,
          },
          q(
            `topk(10, max by (pair) (${ctl('currency_controller_price_deviation_ratio')}))`,
            '{{pair}}',
          ),
        )
          .unit('percentunit')
          .min(0)
          .thresholds(thresholds('green', [0.01, 'red']))
          .thresholdsStyle(
            new common.GraphThresholdsStyleConfigBuilder().mode(
              common.GraphThresholdsStyleMode.Dashed,
            ),
          ),
      )
      .withPanel(
        outcomesPanel(
          {
            id: 44,
            title: 'Upstream reads by outcome',
            description:
              "Reads per second from the nodes' price upstreams, all nodes, stacked by outcome: ok, or why no price came (http_status, rate_limited, timeout, network, ...). Per node on the node dashboard.",
            span: 12,
          },
          q(
            `sum by (outcome) (${rate(nod('currency_node_upstream_requests_total'))})`,
            '{{outcome}}',
          ),
        ),
      )

      .withRow(row(19, 'Commands'))
      .withPanel(
        graphPanel(
          {
            id: 20,
            title: 'Command latency p50 / p99 by command',
            description:
              "Seconds from a CLI command reaching the controller to its last reply leaving it (histogram quantiles; node commands include the round trip to the nodes). The dots are exemplars (with the p99 query, so each shows once): a traced command's latency and trace id, linking to the trace in Jaeger.",
            span: 12,
          },
          q(
            histogramQuantile(
              '0.5',
              'command',
              rate(ctl('currency_controller_command_duration_seconds_bucket')),
            ),
            'p50 {{command}}',
          ),
          // Exemplars from one query only, so that each trace shows once.
          q(
            histogramQuantile(
              '0.99',
              'command',
              rate(ctl('currency_controller_command_duration_seconds_bucket')),
            ),
            'p99 {{command}}',
            { exemplar: true },
          ),
        ).unit('s'),
      )
      .withPanel(
        graphPanel(
          {
            id: 21,
            title: 'Commands by outcome',
            description:
              'CLI commands handled by the controller per second, by command and outcome (ok, error, timeout, partial, unknown).',
            span: 12,
          },
          q(
            `sum by (command, outcome) (${rate(ctl('currency_controller_commands_total'))})`,
            '{{command}} {{outcome}}',
          ),
        ).unit('ops'),
      )
      .withPanel(
        graphPanel(
          {
            id: 22,
            title: 'Node command handling by outcome',
            description:
              'Commands nodes received from the controller per second, by command and outcome.',
            span: 12,
          },
          q(
            `sum by (command, outcome) (${rate(nod('currency_node_commands_total'))})`,
            '{{command}} {{outcome}}',
          ),
        ).unit('ops'),
      )
      .withPanel(
        barsPanel(
          {
            id: 23,
            title: 'Unknown commands and errors',
            description:
              'Commands of a type the controller does not know (by peer kind), and commands that did not end ok.',
            span: 12,
          },
          q(
            `sum by (peer) (${increase(ctl('currency_controller_unknown_commands_total'))})`,
            'unknown from {{peer}}',
          ),
          q(
            `sum by (outcome) (${increase(ctl('currency_controller_commands_total', 'outcome!="ok"'))})`,
            'outcome {{outcome}}',
          ),
        ).unit('short'),
      )

      .withRow(row(24, 'Connections and errors'))
      .withPanel(
        barsPanel(
          {
            id: 25,
            title: 'Node disconnects by reason',
            description:
              'Node streams that ended, by reason: closed (node stopped), lost (crash or network), kicked, replaced, shutdown.',
            span: 8,
          },
          q(
            `sum by (reason) (${increase(ctl('currency_controller_node_disconnects_total'))})`,
            '{{reason}}',
          ),
        ).unit('short'),
      )
      .withPanel(
        graphPanel(
          {
            id: 26,
            title: 'Node reconnects',
            description:
              'Times each node registered again after losing its controller stream, and the connection attempts it made.',
            span: 8,
          },
          q(perNode(increase(nod('currency_node_reconnects_total'))), '{{node_name}} reconnects'),
          q(
            perNode(increase(nod('currency_node_reconnect_attempts_total'))),
            '{{node_name}} attempts',
          ),
        )
          .unit('short')
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 27,
            title: 'Nodes connected (node view vs controller view)',
            description:
              'Nodes that say they have a controller stream, nodes running, and nodes the controller counts. A gap means nodes that cannot register.',
            span: 8,
          },
          q(`sum(${nod('currency_node_connected')})`, 'nodes connected (node view)'),
          q(`count(${nod('currency_node_connected')})`, 'nodes running'),
          q(`sum(${ctl('currency_controller_connected_nodes')})`, 'connected (controller view)'),
        )
          .unit('short')
          .decimals(0)
          .min(0),
      )
      .withPanel(
        barsPanel(
          {
            id: 28,
            title: 'Malformed frames',
            description:
              'Inbound frames that could not be decoded or failed validation: at the controller by peer kind, and at nodes.',
            span: 8,
          },
          q(
            `sum by (peer) (${increase(ctl('currency_controller_malformed_frames_total'))})`,
            'controller, from {{peer}}',
          ),
          q(
            `sum(${increase(nod('currency_node_malformed_frames_total'))})`,
            'nodes, from controller',
          ),
        ).unit('short'),
      )
      .withPanel(
        graphPanel(
          {
            id: 29,
            title: 'Keepalive timeouts',
            description:
              'Controller streams nodes lost because keepalive pings went unanswered (network trouble or a frozen controller).',
            span: 8,
          },
          q(perNode(increase(nod('currency_node_keepalive_timeouts_total'))), '{{node_name}}'),
        )
          .unit('short')
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 30,
            title: 'Dropped price updates (backpressure)',
            description:
              'Updates not sent because the receiver was not reading fast enough: controller to watching CLIs, and nodes to the controller.',
            span: 8,
          },
          q(
            `sum(${rate(ctl('currency_controller_watch_updates_dropped_total'))})`,
            'controller -> watching CLIs',
          ),
          q(
            `sum(${rate(nod('currency_node_price_updates_dropped_total'))})`,
            'nodes -> controller',
          ),
        )
          .unit('ops')
          .min(0),
      )

      .withRow(row(31, 'Processes'))
      .withPanel(
        graphPanel(
          {
            id: 32,
            title: 'Resident memory',
            description: 'Resident set size of each controller and node process.',
            span: 12,
          },
          ...processQueries(plain, 'process_resident_memory_bytes'),
        ).unit('bytes'),
      )
      .withPanel(
        graphPanel(
          {
            id: 33,
            title: 'CPU',
            description: 'CPU used by each process, as a fraction of one core.',
            span: 12,
          },
          ...processQueries(rate, 'process_cpu_seconds_total'),
        ).unit('percentunit'),
      )
      .withPanel(
        graphPanel(
          {
            id: 34,
            title: 'Heap used',
            description: 'V8 heap in use per process.',
            span: 12,
          },
          ...processQueries(plain, 'nodejs_heap_size_used_bytes'),
        ).unit('bytes'),
      )
      .withPanel(
        graphPanel(
          {
            id: 35,
            title: 'Event loop lag p99',
            description:
              'Event loop delay (p99) per process: high values delay keepalives and price updates.',
            span: 12,
          },
          ...processQueries(plain, 'nodejs_eventloop_lag_p99_seconds'),
        ).unit('s'),
      )

      .withRow(row(36, 'Leader election'))
      .withPanel(
        tablePanel(
          {
            id: 37,
            title: 'Leading controller',
            description:
              'Each controller of the release and whether it leads (currency_controller_leader): exactly one should lead; with CONTROLLER_LEADER_ELECTION=off the only controller always does. The pod column is filled when Prometheus labels targets with their pod (the Prometheus Operator does).',
            span: 8,
            height: 8,
          },
          q(`max by (pod, instance) (${ctl('currency_controller_leader')})`, ''),
        )
          .mappings(
            valueMap({
              '0': { text: 'standby', color: 'text', index: 0 },
              '1': { text: 'leader', color: 'green', index: 1 },
            }),
          )
          .overrideByName('Value', [
            { id: 'displayName', value: 'role' },
            { id: 'custom.cellOptions', value: { type: 'color-text' } },
          ])
          .sortBy([new common.TableSortByFieldStateBuilder().displayName('role').desc(true)])
          .transformations([hideColumns('Time')]),
      )
      .withPanel(
        graphPanel(
          {
            id: 38,
            title: 'Leader by controller',
            description:
              '1 while a controller leads. A handover shows as one line dropping and another rising; a gap with no line at 1 is a time without a leader (alert CurrencyNoLeader after a minute).',
            span: 8,
          },
          q(
            `max by (pod, instance) (${ctl('currency_controller_leader')})`,
            '{{pod}} {{instance}}',
          ),
          q(`sum(${ctl('currency_controller_leader')})`, 'leaders (should be 1)'),
        )
          .unit('short')
          .min(0)
          .max(2)
          .decimals(0)
          .lineInterpolation(common.LineInterpolation.StepAfter),
      )
      .withPanel(
        graphPanel(
          {
            id: 39,
            title: 'Leadership changes by reason',
            description:
              'Controllers starting or stopping to lead: acquired, released (graceful stop), lost (another holds the Lease), deadline (could not renew in time: fenced).',
            span: 8,
          },
          q(
            `sum by (reason) (${increase(ctl('currency_controller_leadership_changes_total'))})`,
            '{{reason}}',
          ),
        ).unit('short'),
      ),
  );
