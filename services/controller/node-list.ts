/**
 * The `controller nodes` reply, built for 10,000 nodes and more: each node's entry is
 * encoded once and kept until that node's pairs change, and the reply is the entries
 * concatenated in order. The bytes are exactly what encoding a whole
 * ControllerListNodesV1Reply would give (a unit test holds the two together).
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ControllerNodeInfoV1 } from '../gen/protobuf/currency_nodes';
import { timestampFromMs } from '../shared/time';

export interface NodeView {
  uuid: string;
  name: string;
  peer: string;
  connectedAtMs: number;
  knownPairs: string[];
  streamingPairs: string[];
}

/** Order of `controller nodes`: by name, then UUID, by code point (cheap and locale-free). */
export function compareNodes(
  a: { name: string; uuid: string },
  b: { name: string; uuid: string },
): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.uuid !== b.uuid) return a.uuid < b.uuid ? -1 : 1;
  return 0;
}

/** One encoded ControllerNodeInfoV1. */
export function encodeNodeInfo(n: NodeView): Uint8Array {
  return ControllerNodeInfoV1.encode({
    nodeUuid: n.uuid,
    name: n.name,
    knownCurrencyPairs: n.knownPairs,
    streamingCurrencyPairs: n.streamingPairs,
    connectedAt: timestampFromMs(n.connectedAtMs),
    peer: n.peer,
  }).finish();
}

/**
 * ControllerListNodesV1Reply from already-encoded entries, in order: field 1 (node_uuids)
 * for each, then field 2 (nodes) for each, as the generated encoder writes them.
 */
export function encodeListNodesReply(
  entries: readonly { uuid: string; info: Uint8Array }[],
): Uint8Array {
  const w = new BinaryWriter();
  for (const e of entries) w.uint32(10).string(e.uuid);
  for (const e of entries) w.uint32(18).bytes(e.info);
  return w.finish();
}
