/** One CLI stream's state beside its link: its watches and the batches waiting to go out. */
import type { StreamFromCli, StreamToCli } from '../../../gen/protobuf/currency_nodes';
import type { Watcher } from './fanout';
import type { StreamLink } from '../links/stream-link';

export type { Watch } from './fanout';

export type CliLink = StreamLink<StreamFromCli, StreamToCli>;

/** The watch state is the fan-out's Watcher shape (fanout.ts); the link is the whole one. */
export interface CliSession extends Watcher {
  readonly link: CliLink;
}

export function newCliSession(link: CliLink): CliSession {
  return { link, watches: new Map(), batches: new Map(), lastWatchWriteMs: link.openedAtMs };
}
