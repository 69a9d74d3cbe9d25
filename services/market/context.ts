/** What the market's HTTP routes and WebSocket stream share with the server that runs them. */
import type { Logger } from '../shared/logger';
import type { FaultTable } from './faults';

export const HUGE_BYTES = 50 * 1024 * 1024;
/** A `huge` body or message goes out in pieces of this size. */
export const CHUNK_BYTES = 64 * 1024;

export interface MarketContext {
  /** The market's clock (ms since the epoch). */
  now: () => number;
  log: Logger;
  /** Pairs that split a symbol without a separator. */
  pairs: readonly string[];
  /** Size of a `huge` body or message. */
  hugeBytes: number;
  faults: FaultTable;
  /** close() has begun: huge bodies stop, upgrades are refused, nothing more is sent. */
  closing(): boolean;
  /** One market request: a quote or a WebSocket connection attempt. */
  countRequest(): void;
}
