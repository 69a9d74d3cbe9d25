/**
 * The small interface the system scenarios (failover, reconnect, restart) are written
 * against, so that the same scenario runs on more than one tier: child processes here,
 * containers in tests-e2e.
 */
import { waitFor } from './wait';

export interface StreamView {
  currencyPair: string;
  nodeUuids: string[];
  capableNodes: number;
  desiredStreams: number;
}

export interface NodeView {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
}

export interface PriceView {
  currencyPair: string;
  price: number;
  priceUpdatedAt: string;
  nodeUuid: string;
}

export interface CliResult {
  code: number | string;
  stdout: string;
  stderr: string;
}

export interface NodeHandle {
  readonly uuid: string;
  readonly pairs: string[];
  /** Dies at once, without a goodbye (SIGKILL / docker kill). */
  kill(): Promise<void>;
  /** Stops answering anything, connection left open (SIGSTOP / docker pause). */
  freeze(): Promise<void>;
  unfreeze(): Promise<void>;
  /** Graceful stop (SIGTERM). */
  stop(): Promise<void>;
}

/** A running `currency-cli --json watch`: what it printed so far, until stopped. */
export interface PriceWatch {
  /** Every update printed so far, in order. */
  updates(): PriceView[];
  /** Ends the watch (interrupt); resolves once it is gone. */
  stop(): Promise<void>;
}

export interface SystemHarness {
  /** How long a silent peer may go unnoticed on this tier, for assertions (a generous bound). */
  readonly silentPeerBoundMs: number;
  startNode(pairs: string[], opts?: { name?: string; uuid?: string }): Promise<NodeHandle>;
  restartController(): Promise<void>;
  cli(args: string[]): Promise<CliResult>;
  /** Starts a watch of `pairs` (all when empty); resolves once the controller took it. */
  watchPrices(pairs: string[]): Promise<PriceWatch>;
  close(): Promise<void>;
}

export async function cliJson<T>(h: SystemHarness, args: string[]): Promise<T> {
  const r = await h.cli(['--json', ...args]);
  if (r.code !== 0) throw new Error(`currency-cli ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export const streams = (h: SystemHarness) => cliJson<StreamView[]>(h, ['controller', 'streams']);
export const nodes = (h: SystemHarness) => cliJson<NodeView[]>(h, ['controller', 'nodes']);
export const prices = (h: SystemHarness) => cliJson<PriceView[]>(h, ['controller', 'prices']);

/**
 * The updates in `watch --json` output (NDJSON), stopping at the first incomplete line;
 * other lines (a container's stderr shares its log) are skipped.
 */
export function parseWatchLines(text: string): PriceView[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as PriceView);
}

/** A price's timestamp as epoch ms (NaN when the CLI printed it as invalid). */
export const priceMs = (p: PriceView): number => Date.parse(p.priceUpdatedAt);

/**
 * Waits until `controller prices` shows a price for `pair` dated after `afterMs` that came
 * from a node `from` accepts: proof that the new streamer's prices reach the controller,
 * not only that the controller handed it the pair.
 */
export async function waitPriceFrom(
  h: SystemHarness,
  pair: string,
  afterMs: number,
  from: (nodeUuid: string) => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<PriceView> {
  let last: PriceView | undefined;
  return waitFor(
    `a price for ${pair} dated after ${new Date(afterMs).toISOString()} from the new streamer`,
    async () => {
      last = (await prices(h)).find((p) => p.currencyPair === pair);
      return last && priceMs(last) > afterMs && (await from(last.nodeUuid)) ? last : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last seen: ${JSON.stringify(last)}`);
  });
}
