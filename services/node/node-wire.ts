/**
 * The node's frames to the controller: its announcement (the pairs it can stream) and its
 * price updates, one to a frame (traced ones with a producer span) or batched, each counted.
 */
import type { StreamFromNode } from '../gen/protobuf/currency_nodes';
import { pack } from '../shared/any';
import { NODE_SERVICE, PROGRAMS } from '../shared/protocol';
import { timestampFromMs } from '../shared/time';
import { SpanKind, injectContext, rpcAttributes, startCommandSpan } from '../shared/tracing';
import type { Link } from './link';
import type { NodeMetrics } from './metrics';
import type { PriceSink, PriceUpdate } from './streamer';

const wireUpdate = (u: PriceUpdate) => ({
  currencyPair: u.currencyPair,
  price: u.price,
  priceUpdatedAt: timestampFromMs(u.updatedAtMs),
});

/** The registration frame: NodeKnownCurrenciesV1Notify with the pairs known now. */
export function announcementFrame(nodeUuid: string, knownPairs: string[]): StreamFromNode {
  return {
    nodeUuid,
    response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: knownPairs }),
    traceContext: {},
  };
}

/** Where the streamer's prices go: the registered stream, if any (`link`). */
export function priceSink(d: {
  nodeUuid: string;
  metrics: Pick<NodeMetrics, 'priceUpdatesSent' | 'priceUpdatesDropped'>;
  link(): Link | undefined;
}): PriceSink {
  const { nodeUuid, metrics } = d;
  const write = (msg: StreamFromNode) => d.link()?.write(msg);
  return {
    ready: () => d.link() !== undefined,
    backedUp: () => d.link()?.backedUp() ?? false,
    takesBatches: () => d.link()?.acceptsPriceBatches ?? false,
    dropped: (n) => metrics.priceUpdatesDropped.inc(n),
    sendOne: (u, traced, parent) => {
      const span = traced
        ? startCommandSpan(PROGRAMS.node, 'node price update', SpanKind.PRODUCER, parent, {
            ...rpcAttributes(NODE_SERVICE, 'NodePriceUpdateV1Notify'),
            'currency.pair': u.currencyPair,
            'currency.node_uuid': nodeUuid,
          })
        : undefined;
      write({
        nodeUuid,
        response: pack('NodePriceUpdateV1Notify', wireUpdate(u)),
        traceContext: span ? injectContext(span.ctx) : {},
      });
      span?.span.end();
      metrics.priceUpdatesSent.inc({ pair: u.currencyPair });
    },
    sendBatch: (updates) => {
      write({
        nodeUuid,
        response: pack('NodePriceUpdatesV1Notify', { updates: updates.map(wireUpdate) }),
        traceContext: {},
      });
      for (const u of updates) metrics.priceUpdatesSent.inc({ pair: u.currencyPair });
    },
  };
}
