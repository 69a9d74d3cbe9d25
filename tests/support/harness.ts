/**
 * The small interface the system scenarios (failover, reconnect, restart) are written
 * against, so that the same scenario runs on more than one tier: child processes here,
 * containers in tests-e2e.
 */
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

export interface SystemHarness {
  /** How long a silent peer may go unnoticed on this tier, for assertions (a generous bound). */
  readonly silentPeerBoundMs: number;
  startNode(pairs: string[], opts?: { name?: string; uuid?: string }): Promise<NodeHandle>;
  restartController(): Promise<void>;
  cli(args: string[]): Promise<CliResult>;
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
