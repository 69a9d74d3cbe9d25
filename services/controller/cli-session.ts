/** One CLI stream's state beside its link: its watches and the batches waiting to go out. */
import type { StreamFromCli, StreamToCli } from '../gen/protobuf/currency_nodes';
import type { PairPrice } from './fanout';
import type { StreamLink } from './links/stream-link';

export type CliLink = StreamLink<StreamFromCli, StreamToCli>;

export interface Watch {
  /** Pairs watched (null: all pairs). */
  readonly pairs: Set<string> | null;
  /** V2: updates go out as ControllerPriceUpdatesV1Notify, one frame per event-loop turn. */
  readonly batched: boolean;
}

export interface CliSession {
  readonly link: CliLink;
  /** stream_id -> the watch on it. */
  readonly watches: Map<string, Watch>;
  /** stream_id -> updates of batched watches waiting for the end of this event-loop turn. */
  readonly batches: Map<string, PairPrice[]>;
  /** When a watch update was last written (or the stream opened), for the slow-watcher rule. */
  lastWatchWriteMs: number;
}

export function newCliSession(link: CliLink): CliSession {
  return { link, watches: new Map(), batches: new Map(), lastWatchWriteMs: link.openedAtMs };
}
