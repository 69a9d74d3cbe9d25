import {
  ControllerListNodesPageV1,
  ControllerListNodesV1Reply,
  ControllerNodeInfoV1,
  StreamToCli,
} from '../../../gen/protobuf/currency_nodes';
import { typeUrlOf } from '../../../shared/any';
import { timestampFromMs } from '../../../shared/time';
import {
  FRAME_OVERHEAD_BYTES,
  type ListedNode,
  MIN_PAGE_BYTES,
  type NodeView,
  PAGE_BYTES,
  V1_REPLY_MAX_BYTES,
  compareNodes,
  encodeListNodesReply,
  encodeNodeInfo,
  listNodesReplyBytes,
  listPages,
  pageBytes,
  splitNodeInfo,
} from './node-list';

const views: NodeView[] = [
  {
    uuid: '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f',
    name: 'node-a',
    peer: 'ipv4:127.0.0.1:50001',
    connectedAtMs: 1_700_000_000_123,
    knownPairs: ['BTC_USD', 'USD_HKD'],
    streamingPairs: ['USD_HKD'],
  },
  {
    uuid: '0b7d4a9e-2c1f-4e8a-9b3d-5f6a7c8d9e0f',
    name: 'ünïcode name',
    peer: 'ipv6:[::1]:50002',
    connectedAtMs: 1_700_000_001_999,
    knownPairs: ['EUR_USD'],
    streamingPairs: [],
  },
  {
    uuid: 'a1b2c3d4-0000-4000-8000-000000000000',
    name: '',
    peer: '',
    connectedAtMs: 0,
    knownPairs: [],
    streamingPairs: [],
  },
];

describe('the `controller nodes` reply built from per-node entries', () => {
  test('is byte for byte what the generated encoder writes for the whole reply', () => {
    const whole = ControllerListNodesV1Reply.encode({
      nodeUuids: views.map((v) => v.uuid),
      nodes: views.map((v) => ({
        nodeUuid: v.uuid,
        name: v.name,
        knownCurrencyPairs: v.knownPairs,
        streamingCurrencyPairs: v.streamingPairs,
        connectedAt: timestampFromMs(v.connectedAtMs),
        peer: v.peer,
      })),
    }).finish();
    const built = encodeListNodesReply(
      views.map((v) => ({ uuid: v.uuid, info: encodeNodeInfo(v) })),
    );
    expect(Buffer.from(built).equals(Buffer.from(whole))).toBe(true);
  });

  test('decodes to every node with its details, in the order given', () => {
    const reply = ControllerListNodesV1Reply.decode(
      encodeListNodesReply(views.map((v) => ({ uuid: v.uuid, info: encodeNodeInfo(v) }))),
    );
    expect(reply.nodeUuids).toEqual(views.map((v) => v.uuid));
    expect(
      reply.nodes.map((n) => [
        n.nodeUuid,
        n.name,
        n.knownCurrencyPairs,
        n.streamingCurrencyPairs,
        n.peer,
      ]),
    ).toEqual(views.map((v) => [v.uuid, v.name, v.knownPairs, v.streamingPairs, v.peer]));
    expect(reply.nodes[0]!.connectedAt).toEqual({ seconds: 1_700_000_000, nanos: 123_000_000 });
  });

  test('of no nodes is an empty message', () => {
    expect(encodeListNodesReply([])).toHaveLength(0);
  });
});

describe('the order of `controller nodes`', () => {
  test('is by name, then by UUID, by code point', () => {
    const nodes = [
      { name: 'b', uuid: '2' },
      { name: 'a', uuid: '9' },
      { name: 'B', uuid: '1' },
      { name: 'a', uuid: '3' },
      { name: 'node-10', uuid: '0' },
      { name: 'node-9', uuid: '0' },
      { name: '', uuid: '5' },
    ];
    expect([...nodes].sort(compareNodes).map((n) => `${n.name}/${n.uuid}`)).toEqual([
      '/5',
      'B/1',
      'a/3',
      'a/9',
      'b/2',
      'node-10/0',
      'node-9/0',
    ]);
    expect(compareNodes({ name: 'x', uuid: 'u' }, { name: 'x', uuid: 'u' })).toBe(0);
  });
});

describe('the size of a V1 reply', () => {
  test('is the length of the reply built from the same entries, without building it', () => {
    const entries = views.map((v) => ({ uuid: v.uuid, info: encodeNodeInfo(v) }));
    expect(listNodesReplyBytes(entries)).toBe(encodeListNodesReply(entries).length);
    // Entries of more than 127 bytes take a two-byte length.
    const big = [{ uuid: views[0]!.uuid, info: encodeNodeInfo(fleetNode(0, 300)) }];
    expect(listNodesReplyBytes(big)).toBe(encodeListNodesReply(big).length);
    expect(listNodesReplyBytes([])).toBe(0);
  });
});

/** A node with `pairs` pairs of the longest kind the controller takes (64 characters). */
function fleetNode(i: number, pairs: number, pairLength = 64): NodeView {
  const known = Array.from({ length: pairs }, (_, k) => {
    const base = `P${String(k).padStart(5, '0')}`;
    return `${base}${'X'.repeat(pairLength - base.length - 4)}_USD`;
  });
  return {
    uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    name: `node-${String(i).padStart(5, '0')}`,
    peer: `ipv4:10.0.${i % 256}.1:40000`,
    connectedAtMs: 1_700_000_000_000 + i,
    knownPairs: known,
    streamingPairs: known.filter((_, k) => k % 3 === 0),
  };
}

const listed = (v: NodeView): ListedNode => ({
  entry: encodeNodeInfo(v),
  split: (max) => splitNodeInfo(v, max),
});

/** The StreamToCli frame a page travels in, with the largest stream_id and a full trace context. */
function frameBytes(page: Uint8Array): number {
  return StreamToCli.encode({
    streamId: 's'.repeat(128),
    response: { typeUrl: typeUrlOf('ControllerListNodesPageV1'), value: Buffer.from(page) },
    traceContext: {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'k=' + 'v'.repeat(510),
    },
  }).finish().length;
}

/** Decoded pages -> nodes, entries with the same UUID one after the other merged. */
function merged(pages: Uint8Array[]): ControllerNodeInfoV1[] {
  const out: ControllerNodeInfoV1[] = [];
  for (const p of pages)
    for (const n of ControllerListNodesPageV1.decode(p).nodes) {
      const prev = out[out.length - 1];
      if (prev?.nodeUuid === n.nodeUuid) {
        prev.knownCurrencyPairs.push(...n.knownCurrencyPairs);
        prev.streamingCurrencyPairs.push(...n.streamingCurrencyPairs);
      } else out.push(n);
    }
  return out;
}

describe('a paged listing (ControllerListNodesV2Req)', () => {
  const fleet = Array.from({ length: 200 }, (_, i) => fleetNode(i, 50));

  test('every frame fits its budget, and the pages are what the generated encoder writes', () => {
    const pages = [...listPages(fleet.map(listed), MIN_PAGE_BYTES)];
    expect(pages.length).toBeGreaterThan(5);
    pages.forEach((p, i) => {
      expect(frameBytes(p)).toBeLessThanOrEqual(MIN_PAGE_BYTES);
      const decoded = ControllerListNodesPageV1.decode(p);
      expect(decoded.page).toBe(i);
      expect(decoded.last).toBe(i === pages.length - 1);
      expect(decoded.totalNodes).toBe(i === pages.length - 1 ? fleet.length : 0);
      // Buffer.equals: jest's toEqual walks a buffer byte by byte (seconds for these pages).
      const again = Buffer.from(ControllerListNodesPageV1.encode(decoded).finish());
      expect({ page: i, same: again.equals(Buffer.from(p)) }).toEqual({ page: i, same: true });
    });
  });

  test('carries every node once, in the order given, with its details', () => {
    const nodes = merged([...listPages(fleet.map(listed), MIN_PAGE_BYTES)]);
    expect(nodes.map((n) => n.nodeUuid)).toEqual(fleet.map((v) => v.uuid));
    expect(nodes[7]).toEqual({
      nodeUuid: fleet[7]!.uuid,
      name: fleet[7]!.name,
      knownCurrencyPairs: fleet[7]!.knownPairs,
      streamingCurrencyPairs: fleet[7]!.streamingPairs,
      connectedAt: timestampFromMs(fleet[7]!.connectedAtMs),
      peer: fleet[7]!.peer,
    });
  });

  test('fills its pages: a page ends only where the next entry would not fit', () => {
    const pages = [...listPages(fleet.map(listed), MIN_PAGE_BYTES)];
    const entry = encodeNodeInfo(fleet[0]!).length + 3;
    for (const p of pages.slice(0, -1))
      expect(frameBytes(p)).toBeGreaterThan(MIN_PAGE_BYTES - entry - FRAME_OVERHEAD_BYTES);
  });

  test('of no nodes is one last page counting none', () => {
    const pages = [...listPages([], PAGE_BYTES)];
    expect(pages.map((p) => ControllerListNodesPageV1.decode(p))).toEqual([
      { nodes: [], page: 0, last: true, totalNodes: 0 },
    ]);
  });

  test('is built only as far as it is read', () => {
    const touched = new Set<string>();
    const counting = fleet.map((v) => ({
      get entry() {
        touched.add(v.uuid);
        return encodeNodeInfo(v);
      },
      split: (max: number) => splitNodeInfo(v, max),
    }));
    const pages = listPages(counting, MIN_PAGE_BYTES);
    pages.next();
    const perPage = ControllerListNodesPageV1.decode(
      [...listPages(fleet.map(listed), MIN_PAGE_BYTES)][0]!,
    ).nodes.length;
    expect(touched.size).toBe(perPage + 1); // the first page, and the entry that opens the second
  });

  test('at the default limits the largest entry fits a page whole', () => {
    // CONTROLLER_MAX_PAIRS_PER_NODE (1000) pairs of 64 characters, a third of them streamed,
    // a 256-character name: about 90 KB, far below a page.
    const v = { ...fleetNode(1, 1000), name: 'n'.repeat(256) };
    const pages = [...listPages([listed(v)], MIN_PAGE_BYTES * 2)];
    expect(pages).toHaveLength(1);
    expect(ControllerListNodesPageV1.decode(pages[0]!).nodes).toHaveLength(1);
  });

  test('an entry bigger than a page comes in parts that merge into it, each page in budget', () => {
    const huge = fleetNode(5, 5000);
    expect(encodeNodeInfo(huge).length).toBeGreaterThan(4 * MIN_PAGE_BYTES);
    const list = [fleet[0]!, huge, fleet[1]!];
    const pages = [...listPages(list.map(listed), MIN_PAGE_BYTES)];
    for (const p of pages) expect(frameBytes(p)).toBeLessThanOrEqual(MIN_PAGE_BYTES);
    const nodes = merged(pages);
    expect(nodes.map((n) => n.nodeUuid)).toEqual(list.map((v) => v.uuid));
    expect(nodes[1]!.knownCurrencyPairs).toEqual(huge.knownPairs);
    expect(nodes[1]!.streamingCurrencyPairs).toEqual(huge.streamingPairs);
    expect(nodes[1]!.name).toBe(huge.name);
    expect(nodes[1]!.connectedAt).toEqual(timestampFromMs(huge.connectedAtMs));
    expect(ControllerListNodesPageV1.decode(pages[pages.length - 1]!).totalNodes).toBe(3);
    // Decoded as one message, the parts merge by themselves (protobuf's rule for repeated fields).
    const parts = splitNodeInfo(huge, MIN_PAGE_BYTES / 2);
    expect(parts.length).toBeGreaterThan(8);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(MIN_PAGE_BYTES / 2);
    const whole = ControllerNodeInfoV1.decode(Buffer.concat(parts));
    expect(whole.knownCurrencyPairs).toEqual(huge.knownPairs);
    expect(whole.streamingCurrencyPairs).toEqual(huge.streamingPairs);
  });

  test('the page size a CLI asks for: 0 or too much is the default, too little the minimum', () => {
    expect(pageBytes(0)).toBe(PAGE_BYTES);
    expect(pageBytes(PAGE_BYTES * 4)).toBe(PAGE_BYTES);
    expect(pageBytes(1)).toBe(MIN_PAGE_BYTES);
    expect(pageBytes(200_000)).toBe(200_000);
    expect(PAGE_BYTES).toBeLessThan(V1_REPLY_MAX_BYTES);
  });
});
