/**
 * The `controller nodes` replies, built for 20,000 nodes and more: each node's entry is
 * encoded once and kept until that node's pairs change, and a reply is entries
 * concatenated in order. The bytes are exactly what the generated encoder would give for
 * the whole message (unit tests hold the two together).
 *
 * Two forms. ControllerListNodesV1Reply is one message with every node, so it is answered
 * only while it fits what a gRPC peer takes by default (V1_REPLY_MAX_BYTES). A
 * ControllerListNodesV2Req is answered in ControllerListNodesPageV1 frames of at most
 * PAGE_BYTES each (`listPages`), built one at a time as the CLI takes them: no frame, and
 * nothing the controller holds for one listing, grows with the fleet.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { ControllerNodeInfoV1 } from '../../../gen/protobuf/currency_nodes';
import { timestampFromMs } from '../../../shared/time';

/** The largest frame of a paged listing (and what max_page_bytes is lowered to). */
export const PAGE_BYTES = 1024 * 1024;
/** The smallest frame a CLI may ask for (max_page_bytes is raised to it). */
export const MIN_PAGE_BYTES = 64 * 1024;
/**
 * The most a StreamToCli frame adds around its Any's value: the stream_id (at most 128
 * characters), the type URL and the trace context (traceparent, and tracestate, at most
 * 512 characters), with their tags and lengths. Generous on purpose.
 */
export const FRAME_OVERHEAD_BYTES = 4 * 1024;
/**
 * The largest message a gRPC peer takes by default (grpc-js, grpc-go, grpcurl: 4 MiB): a
 * ControllerListNodesV1Reply larger than this, with its frame, would end the peer's stream.
 */
export const V1_REPLY_MAX_BYTES = 4 * 1024 * 1024;
/** The trailing fields of a page: page (tag + up to 5 bytes), last (2), total_nodes (6). */
const PAGE_TRAILER_BYTES = 16;
/** A length-delimited field's tag and length prefix, at most. */
const FIELD_PREFIX_BYTES = 6;

/** The frame size a ControllerListNodesV2Req gets for its max_page_bytes. */
export function pageBytes(requested: number): number {
  if (requested <= 0 || requested > PAGE_BYTES) return PAGE_BYTES;
  return Math.max(MIN_PAGE_BYTES, requested);
}

function varintBytes(n: number): number {
  let bytes = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) bytes++;
  return bytes;
}

/** What a length-delimited field (field number below 16) of `len` bytes takes. */
function fieldBytes(len: number): number {
  return 1 + varintBytes(len) + len;
}

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

/** The size of the ControllerListNodesV1Reply `encodeListNodesReply` would build. */
export function listNodesReplyBytes(
  entries: readonly { uuid: string; info: Uint8Array }[],
): number {
  let bytes = 0;
  for (const e of entries)
    bytes += fieldBytes(Buffer.byteLength(e.uuid)) + fieldBytes(e.info.length);
  return bytes;
}

/**
 * A node's entry in parts of at most `maxBytes` each, for an entry too big for one page:
 * the first part has every field and as many pairs as fit (known ones, then streaming
 * ones), each further part the node's UUID and the next pairs. Decoded and merged (as
 * protobuf merges repeated fields), the parts are the whole entry.
 */
export function splitNodeInfo(n: NodeView, maxBytes: number): Uint8Array[] {
  const parts: Uint8Array[] = [];
  const first = encodeNodeInfo({ ...n, knownPairs: [], streamingPairs: [] });
  const uuidBytes = fieldBytes(Buffer.byteLength(n.uuid));
  let part = { known: [] as string[], streaming: [] as string[] };
  let size = first.length;
  const flush = () => {
    parts.push(
      parts.length === 0
        ? encodeNodeInfo({ ...n, knownPairs: part.known, streamingPairs: part.streaming })
        : ControllerNodeInfoV1.encode({
            nodeUuid: n.uuid,
            name: '',
            knownCurrencyPairs: part.known,
            streamingCurrencyPairs: part.streaming,
            peer: '',
          }).finish(),
    );
    part = { known: [], streaming: [] };
    size = uuidBytes;
  };
  const add = (pair: string, into: 'known' | 'streaming') => {
    const bytes = fieldBytes(Buffer.byteLength(pair));
    // Every part takes at least one pair, so that the split always ends.
    if (size + bytes > maxBytes && part.known.length + part.streaming.length > 0) flush();
    part[into].push(pair);
    size += bytes;
  };
  for (const p of n.knownPairs) add(p, 'known');
  for (const p of n.streamingPairs) add(p, 'streaming');
  if (parts.length === 0 || part.known.length + part.streaming.length > 0) flush();
  return parts;
}

/** One node of a paged listing. */
export interface ListedNode {
  /** Its encoded ControllerNodeInfoV1 (kept by the registry). */
  entry: Uint8Array;
  /** The entry in parts of at most `maxBytes` each (`splitNodeInfo`): for one that does not fit a page. */
  split(maxBytes: number): Uint8Array[];
}

/**
 * The pages (encoded ControllerListNodesPageV1) of a listing of `nodes`, each in a frame
 * of at most `frameBytes`, built only as the caller asks for the next one: neither a page
 * nor what is held between two pages grows with the fleet. The last page is marked as such
 * and says how many nodes the listing carried; a listing of no nodes is that page alone.
 */
export function* listPages(
  nodes: Iterable<ListedNode>,
  frameBytes: number,
): Generator<Uint8Array, void, undefined> {
  const room = frameBytes - FRAME_OVERHEAD_BYTES - PAGE_TRAILER_BYTES;
  let page = 0;
  let total = 0;
  let w = new BinaryWriter();
  let size = 0;
  const finish = (last: boolean): Uint8Array => {
    if (page > 0) w.uint32(16).uint32(page);
    if (last) w.uint32(24).bool(true);
    if (last && total > 0) w.uint32(32).uint32(total);
    const bytes = w.finish();
    page++;
    w = new BinaryWriter();
    size = 0;
    return bytes;
  };
  for (const n of nodes) {
    total++;
    const parts =
      fieldBytes(n.entry.length) <= room ? [n.entry] : n.split(room - FIELD_PREFIX_BYTES);
    for (const part of parts) {
      const bytes = fieldBytes(part.length);
      if (size > 0 && size + bytes > room) yield finish(false);
      w.uint32(10).bytes(part);
      size += bytes;
    }
  }
  yield finish(true);
}
