/**
 * Every inbound frame is checked here before any logic runs; each check returns a result,
 * never throws (model: etcd v3rpc/key.go). What fails is counted and logged by the caller
 * and never stored.
 */
import type { Timestamp } from '../../gen/google/protobuf/timestamp';
import type { StreamFromCli, StreamFromNode } from '../../gen/protobuf/currency_nodes';
import type { MessageOf } from '../../shared/any';
import { PAIR_PATTERN } from '../../shared/config';
import { isUuid } from '../../shared/wire';

export type Check<T> = { ok: true; value: T } | { ok: false; problem: string };

const fail = (problem: string): { ok: false; problem: string } => ({ ok: false, problem });
const clip = (s: string, n = 64) => s.slice(0, n);

/** A node frame's claimed UUID, canonical and lower-case, the same on every frame of a stream. */
export function checkNodeUuid(f: StreamFromNode, claimed: string | undefined): Check<string> {
  // Hot path: every frame of a registered stream repeats the UUID it registered with.
  if (claimed !== undefined && f.nodeUuid === claimed) return { ok: true, value: claimed };
  if (!isUuid(f.nodeUuid)) return fail(`node_uuid "${clip(f.nodeUuid)}" is not a UUID`);
  const uuid = f.nodeUuid.toLowerCase();
  if (claimed !== undefined && claimed !== uuid)
    return fail(`node_uuid changed from ${claimed} to ${uuid} on one stream`);
  return { ok: true, value: uuid };
}

/** Every inbound CLI frame is checked here; a problem is answered with CliErrorV1Notify. */
export function checkCliFrame(f: StreamFromCli): string | undefined {
  if (f.streamId === '' || f.streamId.length > 128) return 'stream_id must be 1-128 characters';
  if (!isUuid(f.cliUuid)) return `cli_uuid "${clip(f.cliUuid)}" is not a UUID`;
  const bad = f.nodeUuids.find((u) => !isUuid(u));
  if (bad !== undefined) return `node_uuids: "${clip(bad)}" is not a UUID`;
  return undefined;
}

/** The valid pairs of an announcement, and a problem for each invalid one. */
export function checkAnnouncedPairs(announced: string[]): {
  pairs: Set<string>;
  problems: string[];
} {
  const pairs = new Set<string>();
  const problems: string[] = [];
  for (const p of announced) {
    if (PAIR_PATTERN.test(p) && p.length <= 64) pairs.add(p);
    else problems.push(`invalid pair "${clip(p, 32)}"`);
  }
  return { pairs, problems };
}

/** Why a price was refused: the `reason` label of currency_controller_prices_refused_total. */
export type PriceRefusal = 'not_positive' | 'bad_timestamp' | 'future';
export const PRICE_REFUSALS: readonly PriceRefusal[] = ['not_positive', 'bad_timestamp', 'future'];

export type PriceCheck =
  { ok: true; updatedAtMs: number } | { ok: false; reason: PriceRefusal; problem: string };

/** The latest instant a Date (and so every CLI) can show: 8.64e15 ms. */
const MAX_DATE_MS = 8.64e15;

/**
 * A price is taken only if it is finite and positive and dated no further than `maxSkewMs`
 * ahead of the controller's clock; a missing timestamp means "now". Contract section 5.
 */
export function checkPrice(
  m: MessageOf<'NodePriceUpdateV1Notify'>,
  nowMs: number,
  maxSkewMs: number,
): PriceCheck {
  if (!Number.isFinite(m.price) || m.price <= 0)
    return {
      ok: false,
      reason: 'not_positive',
      problem: `price ${m.price} of ${clip(m.currencyPair, 32)} is not a finite positive number`,
    };
  const updatedAtMs = m.priceUpdatedAt ? msOf(m.priceUpdatedAt) : nowMs;
  if (updatedAtMs === undefined)
    return {
      ok: false,
      reason: 'bad_timestamp',
      problem: `timestamp of ${clip(m.currencyPair, 32)} is not a valid instant`,
    };
  if (updatedAtMs > nowMs + maxSkewMs)
    return {
      ok: false,
      reason: 'future',
      problem: `price of ${clip(m.currencyPair, 32)} is dated ${updatedAtMs - nowMs} ms ahead of the controller's clock (limit ${maxSkewMs} ms)`,
    };
  return { ok: true, updatedAtMs };
}

/** A Timestamp as epoch ms, or undefined when it is no instant a Date can hold. */
function msOf(ts: Timestamp): number | undefined {
  const { seconds, nanos } = ts;
  if (!Number.isFinite(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos >= 1e9)
    return undefined;
  // Sub-millisecond precision is kept: "newer" is decided on the whole timestamp.
  const ms = seconds * 1000 + nanos / 1e6;
  return ms >= 0 && ms <= MAX_DATE_MS ? ms : undefined;
}
