/**
 * The connected nodes as the CLI sees them: names to show next to UUIDs, and
 * `--node-uuid` values (a name, a UUID prefix or a full UUID) resolved to UUIDs.
 *
 * The list comes page by page (ControllerListNodesV2Req, answered with
 * ControllerListNodesPageV1 frames), so that neither a reply nor what the CLI holds grows
 * with the fleet: callers take each page as it comes and keep only what they need (a
 * printed row, a name, a match). A controller that predates pages answers
 * UnknownCommandV1Notify and is asked with ControllerListNodesV1Req, one reply.
 */
import type { Timestamp } from '../gen/google/protobuf/timestamp';
import type { MessageOf } from '../shared/any';
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

/** How a listing ended: `count` nodes, all of them passed on, or a problem. */
export type NodeListing = { ok: true; count: number } | { ok: false; problem: string };

/**
 * A page's nodes in order; a promise holds the listing back until it settles (the output
 * catching up with a slow reader).
 */
export type OnNodes = (nodes: KnownNode[]) => void | Promise<void>;

type Info = MessageOf<'ControllerListNodesPageV1'>['nodes'][number];

function known(n: Info): KnownNode {
  return {
    nodeUuid: n.nodeUuid,
    name: n.name,
    knownCurrencyPairs: n.knownCurrencyPairs,
    streamingCurrencyPairs: n.streamingCurrencyPairs,
    connectedAt: n.connectedAt,
    peer: n.peer,
  };
}

/**
 * Every connected node, in `controller nodes` order (by name, then UUID), handed to
 * `onNodes` page by page; the CLI holds one page (and one node carried over to the next,
 * in case the controller split it) at a time. Exactly the nodes the last page counts, or a
 * problem: nodes handed on before a problem are not taken back. `withoutPairs`: the nodes
 * are asked for without their pairs (ControllerListNodesV2Req without_pairs), for a caller
 * that needs only UUIDs and names; a controller that predates it sends them anyway.
 */
export async function eachNode(
  session: CliSession,
  onNodes: OnNodes,
  { withoutPairs = false }: { withoutPairs?: boolean } = {},
): Promise<NodeListing> {
  let count = 0;
  let expectedPage = 0;
  let problem: string | undefined;
  /** The last node of the previous page: the next page may carry more of it. */
  let carried: KnownNode | undefined;
  const paged = await session.controllerFrames(
    'ControllerListNodesV2Req',
    { maxPageBytes: 0, withoutPairs },
    'ControllerListNodesPageV1',
    (page) => {
      if (page.page !== expectedPage) {
        problem = `the controller sent page ${page.page} of the node list where page ${expectedPage} was due`;
        return false;
      }
      expectedPage++;
      const nodes: KnownNode[] = [];
      for (const info of page.nodes) {
        if (carried?.nodeUuid === info.nodeUuid) {
          // The same node again: the rest of an entry too big for one page.
          carried.knownCurrencyPairs.push(...info.knownCurrencyPairs);
          carried.streamingCurrencyPairs.push(...info.streamingCurrencyPairs);
          continue;
        }
        if (carried) nodes.push(carried);
        carried = known(info);
      }
      if (page.last && carried) {
        nodes.push(carried);
        carried = undefined;
      }
      count += nodes.length;
      if (page.last && page.totalNodes !== count) {
        problem = `the controller counted ${page.totalNodes} nodes but listed ${count}`;
        return false;
      }
      const taken = nodes.length > 0 ? onNodes(nodes) : undefined;
      return taken ? taken.then(() => !page.last) : !page.last;
    },
  );
  if (problem !== undefined) return { ok: false, problem };
  if (paged.ok) return { ok: true, count };
  if (!paged.unknown || expectedPage > 0) return paged;
  // A controller that predates pages: the whole list in one reply.
  const r = await session.controllerCommand(
    'ControllerListNodesV1Req',
    {},
    'ControllerListNodesV1Reply',
  );
  if (!r.ok) return r;
  // Peers of the original design send only node_uuids; those get empty details.
  const details = new Map(r.reply.nodes.map((n) => [n.nodeUuid, n]));
  const nodes = r.reply.nodeUuids.map((uuid) => {
    const n = details.get(uuid);
    return {
      nodeUuid: uuid,
      name: n?.name ?? '',
      knownCurrencyPairs: n?.knownCurrencyPairs ?? [],
      streamingCurrencyPairs: n?.streamingCurrencyPairs ?? [],
      connectedAt: n?.connectedAt,
      peer: n?.peer ?? '',
    };
  });
  if (nodes.length > 0) await onNodes(nodes);
  return { ok: true, count: nodes.length };
}

/** The whole list at once: for small uses only (it holds every node with its pairs). */
export async function listNodes(session: CliSession): Promise<NodeList> {
  const nodes: KnownNode[] = [];
  const r = await eachNode(session, (page) => {
    nodes.push(...page);
  });
  return r.ok ? { ok: true, nodes } : r;
}

/**
 * UUID -> name; empty when the list could not be had (names are a help, not a need). Only
 * the names are kept, not the pairs.
 */
export async function nodeNames(session: CliSession): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const r = await eachNode(
    session,
    (page) => {
      for (const n of page) names.set(n.nodeUuid, n.name);
    },
    { withoutPairs: true },
  );
  return r.ok ? names : new Map();
}

/** `uuid (name)`, or the bare UUID when the name is not known. */
export function withName(uuid: string, names: Map<string, string>): string {
  const name = names.get(uuid);
  return name ? `${uuid} (${name})` : uuid;
}

export function isFullUuid(v: string): boolean {
  return UUID_PATTERN.test(v);
}

/** What a resolution needs of a node. */
export type Named = { nodeUuid: string; name: string };

export interface Resolution<N extends Named = KnownNode> {
  uuids: string[];
  /** Values no connected node matches. */
  unmatched: string[];
  /** Values more than one node matches, with those nodes. */
  ambiguous: { value: string; candidates: N[] }[];
}

/**
 * `resolveNodes` one node at a time, for a list that comes in pages: only the nodes that
 * match a value are kept (as they are given: pass `{nodeUuid, name}` to keep no pairs).
 */
export class NodeResolver<N extends Named = Named> {
  private readonly wanted: { value: string; lower: string; byName: N[]; byPrefix: N[] }[];

  constructor(private readonly values: string[]) {
    this.wanted = values
      .filter((v) => !isFullUuid(v))
      .map((value) => ({ value, lower: value.toLowerCase(), byName: [], byPrefix: [] }));
  }

  add(n: N): void {
    for (const w of this.wanted) {
      if (n.name === w.value) {
        w.byName.push(n);
        // A name match wins: the prefix matches no longer count.
        w.byPrefix.length = 0;
      } else if (w.byName.length === 0 && n.nodeUuid.toLowerCase().startsWith(w.lower))
        w.byPrefix.push(n);
    }
  }

  result(): Resolution<N> {
    const out: Resolution<N> = { uuids: [], unmatched: [], ambiguous: [] };
    const wanted = new Map(this.wanted.map((w) => [w.value, w]));
    for (const v of this.values) {
      const w = wanted.get(v);
      if (!w) {
        out.uuids.push(v.toLowerCase());
        continue;
      }
      const matches = w.byName.length > 0 ? w.byName : w.byPrefix;
      if (matches.length === 1) out.uuids.push(matches[0]!.nodeUuid);
      else if (matches.length === 0) out.unmatched.push(v);
      else out.ambiguous.push({ value: v, candidates: matches });
    }
    out.uuids = [...new Set(out.uuids)];
    return out;
  }
}

/**
 * Each value is a full UUID (taken as is), a node name (exact), or a UUID prefix
 * (case-insensitive); a name match wins over a prefix match.
 */
export function resolveNodes(values: string[], nodes: KnownNode[]): Resolution {
  const r = new NodeResolver<KnownNode>(values);
  for (const n of nodes) r.add(n);
  return r.result();
}
