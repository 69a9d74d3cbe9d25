/**
 * currency-nodes node detail (uid currency-nodes-node): one or more nodes (the `node`
 * variable, by node_name) in detail.
 */
import {
  barsPanel,
  dashboardShell,
  graphPanel,
  hideColumns,
  histogramQuantile,
  increase,
  jobVariable,
  nod,
  nodeInfo,
  outcomesPanel,
  q,
  queryVariable,
  rate,
  releaseVariables,
  row,
  statPanel,
  tablePanel,
  thresholds,
  toModel,
  valueMap,
  withNodeName,
} from './lib';

/** Node series labelled with node_name, only the nodes of the `node` variable. */
const named = (expr: string) => withNodeName(expr, true);
/** `sum by (<labels>) (...)` of a node series labelled with node_name. */
const sumBy = (labels: string, expr: string) => `sum by (${labels}) (${named(expr)})`;
/** Events of a node counter in each interval, per node. */
const perInterval = (metric: string) => sumBy('node_name', increase(nod(metric)));
/** Upstream request latency buckets, per second, labelled with node_name. */
const latency = named(rate(nod('currency_node_upstream_request_duration_seconds_bucket')));

export const node = () =>
  toModel(
    dashboardShell({
      uid: 'currency-nodes-node',
      title: 'currency-nodes node detail',
      description:
        'One or more price-streaming nodes: connection, pairs streamed, updates sent, reconnects, commands, upstream reads and withdrawn pairs, and process health.',
      link: { title: 'Overview', uid: 'currency-nodes-overview' },
    })
      .variables([
        ...releaseVariables('currency_node_info'),
        jobVariable('node_job', 'Node job', 'currency_node_info'),
        queryVariable('node', 'Node', `label_values(${nod('currency_node_info')}, node_name)`, {
          includeAll: true,
          multi: true,
          allValue: '.*',
        }),
      ])

      .withRow(row(1, 'Node'))
      .withPanel(
        statPanel(
          {
            id: 2,
            title: 'Connected to a controller',
            description: '1 while the node has a registered stream to a controller.',
            span: 6,
          },
          q(named(nod('currency_node_connected')), '{{node_name}}'),
        )
          .thresholds(thresholds('red', [1, 'green']))
          .mappings(
            valueMap({ '0': { text: 'no', color: 'red' }, '1': { text: 'yes', color: 'green' } }),
          ),
      )
      .withPanel(
        statPanel(
          {
            id: 3,
            title: 'Pairs streaming',
            description: 'Pairs this node streams now.',
            span: 6,
          },
          q(named(nod('currency_node_pairs_streaming')), '{{node_name}}'),
        ).thresholds(thresholds('blue')),
      )
      .withPanel(
        statPanel(
          {
            id: 4,
            title: 'Reconnects in range',
            description:
              'Times the node registered again after losing its controller stream, over the time range.',
            span: 6,
          },
          q(
            sumBy('node_name', increase(nod('currency_node_reconnects_total'), '$__range')),
            '{{node_name}}',
          ),
        )
          .thresholds(thresholds('green', [1, 'orange']))
          .decimals(0),
      )
      .withPanel(
        tablePanel(
          {
            id: 5,
            title: 'Identity',
            description: 'Version, UUID and name of each selected node.',
            span: 6,
            height: 4,
          },
          q(`max by (instance, node_name, node_uuid, version) (${nodeInfo(true)})`, ''),
        ).transformations([hideColumns('Time', 'Value')]),
      )

      .withRow(row(6, 'Streaming'))
      .withPanel(
        graphPanel(
          {
            id: 7,
            title: 'Price updates sent per pair',
            description: 'Updates per second this node sends to the controller, per pair.',
            span: 12,
          },
          q(
            sumBy('node_name, pair', rate(nod('currency_node_price_updates_sent_total'))),
            '{{node_name}} {{pair}}',
          ),
        ).unit('ops'),
      )
      .withPanel(
        graphPanel(
          {
            id: 8,
            title: 'Connection and pairs streaming',
            description:
              'Connected (0/1) and the number of pairs streaming over time: a failover shows as pairs moving between nodes.',
            span: 12,
          },
          q(named(nod('currency_node_connected')), '{{node_name}} connected'),
          q(named(nod('currency_node_pairs_streaming')), '{{node_name}} pairs streaming'),
        )
          .unit('short')
          .decimals(0)
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 9,
            title: 'Reconnects, attempts and keepalive timeouts',
            description:
              'Per interval: registrations after a lost stream, connection attempts, and keepalive timeouts: streams lost because the controller stopped answering keepalive pings while its connection stayed open (frozen, or the network cut silently). A controller that closes or resets its connections (killed, restarted) is not counted. Counted only on streams that ping, i.e. to a controller that permits it (ours).',
            span: 12,
          },
          q(perInterval('currency_node_reconnects_total'), '{{node_name}} reconnects'),
          q(perInterval('currency_node_reconnect_attempts_total'), '{{node_name}} attempts'),
          q(
            perInterval('currency_node_keepalive_timeouts_total'),
            '{{node_name}} keepalive timeouts',
          ),
        )
          .unit('short')
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 10,
            title: 'Commands by outcome',
            description:
              'Commands this node received from the controller per second, by command and outcome.',
            span: 12,
          },
          q(
            sumBy('node_name, command, outcome', rate(nod('currency_node_commands_total'))),
            '{{node_name}} {{command}} {{outcome}}',
          ),
        ).unit('ops'),
      )
      .withPanel(
        graphPanel(
          {
            id: 11,
            title: 'Malformed frames and dropped updates',
            description:
              'Frames from the controller that did not decode, and updates skipped because the stream to the controller was backed up.',
            span: 24,
          },
          q(perInterval('currency_node_malformed_frames_total'), '{{node_name}} malformed frames'),
          q(
            perInterval('currency_node_price_updates_dropped_total'),
            '{{node_name}} dropped updates',
          ),
        )
          .unit('short')
          .min(0),
      )

      .withRow(row(16, 'Upstreams'))
      .withPanel(
        outcomesPanel(
          {
            id: 17,
            title: 'Upstream reads by outcome',
            description:
              "Reads per second from the node's price upstream (HTTP requests, WebSocket price messages, simulated reads), stacked by outcome: ok, or why no price came (http_status, rate_limited, timeout, network, redirect, too_large, invalid_json, no_price, bad_price, bad_time, stale, future).",
            span: 12,
          },
          q(
            sumBy('node_name, outcome', rate(nod('currency_node_upstream_requests_total'))),
            '{{node_name}} {{outcome}}',
          ),
        ),
      )
      .withPanel(
        graphPanel(
          {
            id: 18,
            title: 'Failed upstream reads (ratio)',
            description:
              'Share of upstream reads that gave no price (every outcome but ok), per node. A pair whose reads keep failing for NODE_UPSTREAM_FAIL_AFTER_MS is withdrawn (see Withdrawn pairs).',
            span: 12,
          },
          // Failed reads / all reads; `or ... * 0` gives 0 for a node with only ok reads.
          q(
            `(${sumBy('node_name', rate(nod('currency_node_upstream_requests_total', 'outcome!="ok"')))}` +
              ` or ${sumBy('node_name', rate(nod('currency_node_upstream_requests_total', 'outcome="ok"')))} * 0)` +
              ` / ${sumBy('node_name', rate(nod('currency_node_upstream_requests_total')))}`,
            '{{node_name}}',
          ),
        )
          .unit('percentunit')
          .min(0)
          .max(1)
          .thresholds(thresholds('green', [0.1, 'orange'], [0.5, 'red'])),
      )
      .withPanel(
        graphPanel(
          {
            id: 19,
            title: 'Upstream request latency p50 / p99',
            description:
              'Time of one upstream HTTP request, or of one WebSocket connect (histogram quantiles of currency_node_upstream_request_duration_seconds). Empty for the simulated upstream, which makes no requests.',
            span: 12,
          },
          q(histogramQuantile('0.5', 'node_name', latency), 'p50 {{node_name}}'),
          q(histogramQuantile('0.99', 'node_name', latency), 'p99 {{node_name}}'),
        )
          .unit('s')
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 20,
            title: 'Upstream price age per pair (top 10)',
            description:
              "The 10 oldest: age of the latest valid upstream price of each pair when it arrived (its own time, from NODE_UPSTREAM_TIME_PATH, against the node's clock). 0 when the upstream gives no time. A pair keeps its last value after the node stops streaming it.",
            span: 12,
          },
          q(
            `topk(10, max by (node_name, pair) (${named(nod('currency_node_upstream_price_age_seconds'))}))`,
            '{{node_name}} {{pair}}',
          ),
        )
          .unit('s')
          .min(0),
      )
      .withPanel(
        graphPanel(
          {
            id: 21,
            title: 'Withdrawn pairs',
            description:
              'Pairs the node has withdrawn because their upstream gives no valid price: it no longer offers them and the controller streams them from other nodes. The node offers a pair again once its upstream answers.',
            span: 12,
          },
          q(named(nod('currency_node_upstream_withdrawn_pairs')), '{{node_name}}'),
        )
          .unit('short')
          .min(0)
          .decimals(0),
      )
      .withPanel(
        barsPanel(
          {
            id: 22,
            title: 'Withdrawals per pair',
            description:
              'Withdrawals in each interval, per pair: its upstream gave no valid price for NODE_UPSTREAM_FAIL_AFTER_MS.',
            span: 12,
          },
          q(
            sumBy('node_name, pair', increase(nod('currency_node_upstream_withdrawals_total'))),
            '{{node_name}} {{pair}}',
          ),
        ).unit('short'),
      )

      .withRow(row(12, 'Process'))
      .withPanel(
        graphPanel(
          { id: 13, title: 'Resident memory', description: 'Resident set size.', span: 8 },
          q(named(nod('process_resident_memory_bytes')), '{{node_name}}'),
        ).unit('bytes'),
      )
      .withPanel(
        graphPanel(
          { id: 14, title: 'CPU', description: 'CPU as a fraction of one core.', span: 8 },
          q(named(rate(nod('process_cpu_seconds_total'))), '{{node_name}}'),
        ).unit('percentunit'),
      )
      .withPanel(
        graphPanel(
          {
            id: 15,
            title: 'Event loop lag p99',
            description: 'Event loop delay (p99).',
            span: 8,
          },
          q(named(nod('nodejs_eventloop_lag_p99_seconds')), '{{node_name}}'),
        ).unit('s'),
      ),
  );
