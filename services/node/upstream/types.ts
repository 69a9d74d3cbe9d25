/**
 * The upstream seam: where a node's prices come from (contract: NODE_UPSTREAM).
 *
 * An upstream is told which pairs to follow and reports, per pair, either a valid quote or
 * a failed read with its outcome. It never decides what is sent to the controller: the
 * streamer (../streamer.ts) sends quotes, and the pair health (./health.ts) turns a run of
 * failures into a withdrawal. Every kind lives in a file of its own beside this one:
 * simulated.ts (the default), http.ts, websocket.ts.
 */

/** One valid price as the upstream gave it. */
export interface Quote {
  price: number;
  /** The price's own time (ms since the epoch): the upstream's, else when it was received. */
  atMs: number;
  /** True when `atMs` is this node's clock (no NODE_UPSTREAM_TIME_PATH, or simulated). */
  ownClock: boolean;
}

/**
 * Why a read gave no price; the `outcome` label of currency_node_upstream_requests_total.
 * `ok` is a valid price. Every other value is one failed read, counted and logged.
 */
export type ReadOutcome =
  | 'ok'
  | 'http_status' // a status other than 2xx, 429 or 503
  | 'rate_limited' // 429 or 503 (Retry-After honoured)
  | 'timeout'
  | 'network' // refused, reset, TLS or DNS failure
  | 'redirect' // a redirect to another origin, or too many
  | 'too_large' // body or message over the cap
  | 'invalid_json' // not JSON (an HTML error page, a truncated body)
  | 'no_price' // JSON without the price at NODE_UPSTREAM_PRICE_PATH
  | 'bad_price' // a price that is not a finite, positive number
  | 'bad_time' // a time at NODE_UPSTREAM_TIME_PATH that cannot be read
  | 'stale' // older than NODE_UPSTREAM_MAX_AGE_MS
  | 'future'; // dated further ahead of the node's clock than it tolerates

export const READ_OUTCOMES: readonly ReadOutcome[] = [
  'ok',
  'http_status',
  'rate_limited',
  'timeout',
  'network',
  'redirect',
  'too_large',
  'invalid_json',
  'no_price',
  'bad_price',
  'bad_time',
  'stale',
  'future',
];

/** What an upstream reports. Called from I/O callbacks, never synchronously from follow(). */
export interface UpstreamEvents {
  /** A valid price for `pair`. */
  quote(pair: string, quote: Quote): void;
  /** A read or message for `pair` that gave no price; `detail` is safe to log (no secrets). */
  failure(pair: string, outcome: Exclude<ReadOutcome, 'ok'>, detail: string): void;
  /** Latency of one HTTP request or WebSocket connect, seconds (for the histogram). */
  latency?(seconds: number): void;
}

export interface Upstream {
  readonly kind: 'simulated' | 'http' | 'websocket';
  /**
   * Pull kinds (simulated, http) are read by the caller on its own schedule: `read(pair)`
   * starts one read whose result comes back through the events. Push kinds (websocket)
   * have no `read`: they report every message as it arrives.
   */
  read?(pair: string): void;
  /** Start following `pair` (websocket: subscribe). Idempotent. */
  follow(pair: string): void;
  /** Stop following `pair` (websocket: unsubscribe). Idempotent. */
  unfollow(pair: string): void;
  /**
   * Push kinds: `pair` cannot have had an answer yet (its connection is being opened, or
   * its subscribe message waits for its turn), so its failure clock waits.
   */
  waiting?(pair: string): boolean;
  /** Ends every request and connection; no event fires after it resolves. */
  close(): Promise<void>;
}
