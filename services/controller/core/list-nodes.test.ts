/**
 * How the controller answers `controller nodes` (cli-service.ts, registry.ts,
 * node-list.ts), with fake streams: ControllerListNodesV1Req whole while it fits what a
 * gRPC peer takes, else a clear error naming V2; ControllerListNodesV2Req in pages, one in
 * flight at a time, in order, each within its budget, the last one counting the nodes.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  ControllerListNodesPageV1,
  type StreamFromCli,
  type StreamFromNode,
  StreamToCli,
  type StreamToNode,
} from '../../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../../shared/any';
import { silentLogger } from '../../shared/logger';
import { seededRandom } from '../../shared/scheduler';
import { NODE_NAME_METADATA_KEY } from '../../shared/wire';
import { FakeCall } from '../../../tests/support/fake-call';
import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { loadControllerConfig } from '../config';
import { ControllerCore } from './core';
import { createControllerMetrics } from '../metrics';
import { MIN_PAGE_BYTES, V1_REPLY_MAX_BYTES } from './node-side/node-list';

type CliCall = FakeCall<StreamFromCli, StreamToCli>;

/** `count` pairs of 64 characters, the longest the controller takes (`from`: a set of its own). */
const longPairs = (count: number, from = 0) =>
  Array.from(
    { length: count },
    (_, k) => `L${String(from + k).padStart(6, '0')}${'X'.repeat(53)}_USD`,
  );

function setup() {
  const scheduler = fakeScheduler();
  const core = new ControllerCore({
    scheduler,
    random: seededRandom(7),
    logger: silentLogger(),
    metrics: createControllerMetrics(new Registry(), { defaultMetrics: false }),
    appVersion: 'test',
    streamsPerPair: 1,
    newId: randomUUID,
    // Room for the pairs of the biggest fleet here (70 nodes with 1000 pairs of their own).
    limits: { ...loadControllerConfig({}).limits, maxKnownPairs: 100_000 },
  });
  const nodes = new Map<string, FakeCall<StreamFromNode, StreamToNode>>();
  const node = (name: string, pairs: string[]) => {
    const uuid = randomUUID();
    const call = new FakeCall<StreamFromNode, StreamToNode>();
    call.metadata.set(NODE_NAME_METADATA_KEY, name);
    core.attachNode(call.asCall());
    call.receive({
      nodeUuid: uuid,
      traceContext: {},
      response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }),
    });
    nodes.set(uuid, call);
    return uuid;
  };
  const leaves = (uuid: string) => nodes.get(uuid)!.connectionDrops();
  const cli = () => {
    const call: CliCall = new FakeCall();
    core.attachCli(call.asCall());
    const send = <N extends MessageName>(streamId: string, name: N, m: MessageOf<N>) =>
      call.receive({
        streamId,
        cliUuid: randomUUID(),
        nodeUuids: [],
        command: pack(name, m),
        traceContext: {},
      });
    const on = (streamId: string) => call.written.filter((w) => w.streamId === streamId);
    const pages = (streamId: string) =>
      on(streamId).map((w) => {
        expect(w.response?.typeUrl).toBe('type.googleapis.com/protobuf.ControllerListNodesPageV1');
        return ControllerListNodesPageV1.decode(w.response!.value);
      });
    return { call, send, on, pages };
  };
  return { core, node, leaves, cli };
}

/** Lets the write callbacks (queued as microtasks) run until nothing more is written. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('ControllerListNodesV1Req', () => {
  test('a list that fits is answered whole, as before', () => {
    const t = setup();
    const a = t.node('a', ['USD_HKD']);
    const c = t.cli();
    c.send('s', 'ControllerListNodesV1Req', {});
    const r = unpack(c.on('s')[0]!.response);
    expect(r.ok && r.value.name).toBe('ControllerListNodesV1Reply');
    expect(
      r.ok && r.value.name === 'ControllerListNodesV1Reply' && r.value.message.nodeUuids,
    ).toEqual([a]);
  });

  test('a list that does not fit 4 MiB is refused with RESOURCE_EXHAUSTED naming V2, and the stream stays', () => {
    const t = setup();
    // 70 nodes x 1000 pairs of 64 characters: about 4.6 MB.
    for (let i = 0; i < 70; i++) t.node(`n${i}`, longPairs(1000, i * 1000));
    const c = t.cli();
    c.send('s', 'ControllerListNodesV1Req', {});
    const frames = c.on('s');
    expect(frames).toHaveLength(1);
    const r = unpack(frames[0]!.response);
    expect(r.ok && r.value.name).toBe('CliErrorV1Notify');
    const m = r.ok && r.value.name === 'CliErrorV1Notify' ? r.value.message : undefined;
    expect(m?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(m?.message).toMatch(
      /^the list of 70 nodes is \d+ bytes, more than one ControllerListNodesV1Reply may carry/,
    );
    expect(m?.message).toContain('ask with ControllerListNodesV2Req');
    expect(StreamToCli.encode(frames[0]!).finish().length).toBeLessThan(V1_REPLY_MAX_BYTES);
    expect(c.call.status).toBeUndefined();
    // The same stream still answers.
    c.send('v', 'ControllerAppVersionV1Req', {});
    expect(c.on('v')).toHaveLength(1);
  });
});

describe('ControllerListNodesV2Req', () => {
  test('pages in order, each within its budget, one in flight at a time', async () => {
    const t = setup();
    const names = Array.from({ length: 60 }, (_, i) => `node-${String(59 - i).padStart(2, '0')}`);
    const uuids = new Map(names.map((n) => [n, t.node(n, longPairs(100))]));
    const c = t.cli();
    c.call.holdWrites = true;
    c.send('s', 'ControllerListNodesV2Req', { maxPageBytes: MIN_PAGE_BYTES, withoutPairs: false });
    await settle();
    // The CLI has not read the first page: no second one is built.
    expect(c.on('s')).toHaveLength(1);
    for (let i = 0; i < 100 && !c.pages('s').at(-1)!.last; i++) {
      c.call.releaseWrites();
      await settle();
    }
    const pages = c.pages('s');
    expect(pages.length).toBeGreaterThan(3);
    for (const w of c.on('s'))
      expect(StreamToCli.encode(w).finish().length).toBeLessThanOrEqual(MIN_PAGE_BYTES);
    expect(pages.map((p) => p.page)).toEqual(pages.map((_, i) => i));
    expect(pages.map((p) => p.last)).toEqual(pages.map((_, i) => i === pages.length - 1));
    expect(pages.at(-1)!.totalNodes).toBe(60);
    const listed = pages.flatMap((p) => p.nodes);
    expect(listed.map((n) => n.name)).toEqual([...names].sort());
    expect(listed.map((n) => n.nodeUuid)).toEqual([...names].sort().map((n) => uuids.get(n)));
    expect(listed[0]!.knownCurrencyPairs).toEqual(longPairs(100));
  });

  test('the nodes registered when it began: one that leaves before its page is left out and not counted', async () => {
    const t = setup();
    const uuids = Array.from({ length: 30 }, (_, i) =>
      t.node(`n${String(i).padStart(2, '0')}`, longPairs(100)),
    );
    const c = t.cli();
    c.call.holdWrites = true;
    c.send('s', 'ControllerListNodesV2Req', { maxPageBytes: MIN_PAGE_BYTES, withoutPairs: false });
    await settle();
    const first = c.pages('s')[0]!.nodes.length;
    t.leaves(uuids[29]!); // on a later page
    t.node('joined-late', ['USD_HKD']);
    c.call.holdWrites = false;
    c.call.releaseWrites();
    await settle();
    const pages = c.pages('s');
    expect(pages.at(-1)!.last).toBe(true);
    const listed = pages.flatMap((p) => p.nodes.map((n) => n.nodeUuid));
    expect(first).toBeLessThan(29);
    expect(listed).toEqual(uuids.slice(0, 29));
    expect(pages.at(-1)!.totalNodes).toBe(29);
  });

  test('a CLI stream that ends stops the listing', async () => {
    const t = setup();
    for (let i = 0; i < 30; i++) t.node(`n${i}`, longPairs(100));
    const c = t.cli();
    c.call.holdWrites = true;
    c.send('s', 'ControllerListNodesV2Req', { maxPageBytes: MIN_PAGE_BYTES, withoutPairs: false });
    await settle();
    c.call.connectionDrops();
    c.call.releaseWrites();
    await settle();
    expect(c.on('s')).toHaveLength(1);
  });

  test('without_pairs: every node with its UUID, name, peer and connection time, and no pairs', async () => {
    const t = setup();
    const names = Array.from({ length: 60 }, (_, i) => `node-${String(59 - i).padStart(2, '0')}`);
    for (const n of names) t.node(n, longPairs(100));
    const full = t.cli();
    full.send('f', 'ControllerListNodesV2Req', {
      maxPageBytes: MIN_PAGE_BYTES,
      withoutPairs: false,
    });
    const bare = t.cli();
    bare.send('b', 'ControllerListNodesV2Req', {
      maxPageBytes: MIN_PAGE_BYTES,
      withoutPairs: true,
    });
    for (let i = 0; i < 100 && !full.pages('f').at(-1)?.last; i++) await settle();
    const withPairs = full.pages('f').flatMap((p) => p.nodes);
    // 60 nodes of 100 pairs take several pages; without their pairs they fit one.
    expect(full.pages('f').length).toBeGreaterThan(3);
    expect(bare.pages('b')).toHaveLength(1);
    expect(bare.pages('b')[0]).toMatchObject({ page: 0, last: true, totalNodes: 60 });
    expect(bare.pages('b')[0]!.nodes).toEqual(
      withPairs.map((n) => ({ ...n, knownCurrencyPairs: [], streamingCurrencyPairs: [] })),
    );
    expect(withPairs.every((n) => n.knownCurrencyPairs.length === 100)).toBe(true);
    expect(withPairs.every((n) => n.connectedAt !== undefined && n.peer !== '')).toBe(true);
  });

  test('no node connected: one last page counting none', async () => {
    const t = setup();
    const c = t.cli();
    c.send('s', 'ControllerListNodesV2Req', { maxPageBytes: 0, withoutPairs: false });
    await settle();
    expect(c.pages('s')).toEqual([{ nodes: [], page: 0, last: true, totalNodes: 0 }]);
  });
});

describe('the count frame of a command to every node (CliResponseCountV1Notify)', () => {
  test('stays one whole frame at CONTROLLER_MAX_NODES: well under what a gRPC peer takes', () => {
    const maxNodes = loadControllerConfig({}).limits.maxNodes;
    const uuids = Array.from({ length: maxNodes }, () => randomUUID());
    const frame = StreamToCli.encode({
      streamId: 's'.repeat(128),
      response: pack('CliResponseCountV1Notify', {
        expectedResponses: maxNodes,
        nodeUuids: uuids,
        unknownNodeUuids: [],
      }),
      traceContext: {},
    }).finish();
    // 20,000 UUIDs: about 0.8 MB, a fifth of the 4 MiB.
    expect(frame.length).toBeLessThan(V1_REPLY_MAX_BYTES / 4);
  });
});
