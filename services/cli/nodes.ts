/**
 * The connected nodes as the CLI sees them (one `ControllerListNodesV1Req`): names to show
 * next to UUIDs, and `--node-uuid` values (a name, a UUID prefix or a full UUID) resolved
 * to UUIDs.
 */
import type { Timestamp } from '../gen/google/protobuf/timestamp';
import { UUID_PATTERN } from '../shared/config';
import type { CliSession } from './session';

export interface KnownNode {
  nodeUuid: string;
  name: string;
  knownCurrencyPairs: string[];
  streamingCurrencyPairs: string[];
  connectedAt?: Timestamp;
  peer: string;
}

export type NodeList = { ok: true; nodes: KnownNode[] } | { ok: false; problem: string };

export async function listNodes(session: CliSession): Promise<NodeList> {
  const r = await session.controllerCommand(
    'ControllerListNodesV1Req',
    {},
    'ControllerListNodesV1Reply',
  );
  if (!r.ok) return r;
  // Peers of the original design send only node_uuids; those get empty details.
  const details = new Map(r.reply.nodes.map((n) => [n.nodeUuid, n]));
  return {
    ok: true,
    nodes: r.reply.nodeUuids.map((uuid) => {
      const n = details.get(uuid);
      return {
        nodeUuid: uuid,
        name: n?.name ?? '',
        knownCurrencyPairs: n?.knownCurrencyPairs ?? [],
        streamingCurrencyPairs: n?.streamingCurrencyPairs ?? [],
        connectedAt: n?.connectedAt,
        peer: n?.peer ?? '',
      };
    }),
  };
}

/** UUID -> name; empty when the list could not be had (names are a help, not a need). */
export async function nodeNames(session: CliSession): Promise<Map<string, string>> {
  const r = await listNodes(session);
  return new Map(r.ok ? r.nodes.map((n) => [n.nodeUuid, n.name]) : []);
}

/** `uuid (name)`, or the bare UUID when the name is not known. */
export function withName(uuid: string, names: Map<string, string>): string {
  const name = names.get(uuid);
  return name ? `${uuid} (${name})` : uuid;
}

export function isFullUuid(v: string): boolean {
  return UUID_PATTERN.test(v);
}

export interface Resolution {
  uuids: string[];
  /** Values no connected node matches. */
  unmatched: string[];
  /** Values more than one node matches, with those nodes. */
  ambiguous: { value: string; candidates: KnownNode[] }[];
}

/**
 * Each value is a full UUID (taken as is), a node name (exact), or a UUID prefix
 * (case-insensitive); a name match wins over a prefix match.
 */
export function resolveNodes(values: string[], nodes: KnownNode[]): Resolution {
  const out: Resolution = { uuids: [], unmatched: [], ambiguous: [] };
  for (const v of values) {
    if (isFullUuid(v)) {
      out.uuids.push(v.toLowerCase());
      continue;
    }
    const byName = nodes.filter((n) => n.name === v);
    const lower = v.toLowerCase();
    const matches =
      byName.length > 0 ? byName : nodes.filter((n) => n.nodeUuid.toLowerCase().startsWith(lower));
    if (matches.length === 1) out.uuids.push(matches[0]!.nodeUuid);
    else if (matches.length === 0) out.unmatched.push(v);
    else out.ambiguous.push({ value: v, candidates: matches });
  }
  out.uuids = [...new Set(out.uuids)];
  return out;
}
