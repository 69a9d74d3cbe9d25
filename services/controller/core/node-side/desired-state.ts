/**
 * What a node is told: its full desired state (contract section 5), a pure function of
 * the assignment and the latest prices. Every pair the node announced is listed, started
 * with the newest price the controller holds, or stopped.
 */
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type CurrencyStreamStateV1,
} from '../../../gen/protobuf/currency_nodes';
import { timestampFromMs } from '../../../shared/time';
import type { Assignment } from './assignment';
import type { PriceStore } from './prices';

export function desiredStateOf(
  assignment: Assignment,
  prices: PriceStore,
  uuid: string,
): CurrencyStreamStateV1[] {
  return assignment.knownPairsOf(uuid).map((pair) => {
    if (!assignment.isStreaming(uuid, pair))
      return { currencyPair: pair, streamState: StreamState.StreamStop };
    const latest = prices.get(pair);
    return {
      currencyPair: pair,
      streamState: StreamState.StreamStart,
      latestPrice: latest?.price,
      latestPriceUpdatedAt: latest ? timestampFromMs(latest.updatedAtMs) : undefined,
    };
  });
}
