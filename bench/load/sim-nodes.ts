/**
 * Load generator: many simulated nodes in one process, each a real gRPC client with its
 * own connection speaking the node protocol (announce pairs, obey full-state stream
 * commands, send a first price at once on StreamStart, reconnect with the real node's
 * backoff). Driven by the bench runner over Node IPC (see protocol.ts).
 */
import * as grpc from '@grpc/grpc-js';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type StreamFromNode,
  type StreamToNode,
} from '../../services/gen/protobuf/currency_nodes';
import { pack, unpack } from '../../services/shared/any';
import { type Dialled, dialWith } from '../../services/shared/client';
import { clientChannelOptions } from '../../services/shared/grpc-options';
import { timestampFromMs } from '../../services/shared/time';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  NODE_NAME_METADATA_KEY,
  type NodeClientCall,
  PRICE_BATCH_MESSAGE,
  nodeClientDefinition,
} from '../../services/shared/wire';
import { StreamFromNode as StreamFromNodeCodec } from '../../services/gen/protobuf/currency_nodes';
import { backoffDelayMs } from '../../services/shared/backoff';
import type { FromSim, PriceMode, SimNodeSpec, SimStatus, ToSim } from './protocol';

const CONTROLLER = process.env.SIM_CONTROLLER_ADDR ?? '127.0.0.1:5160';
/** The whole process ends by itself after this long, whatever happens to the runner. */
const MAX_LIFETIME_MS = Number(process.env.SIM_MAX_LIFETIME_MS ?? 20 * 60_000);

/**
 * The node client of services/shared/wire.ts, except that a frame may also be written
 * already encoded: at full speed the generator replays pre-encoded price frames so that
 * its own CPU goes to the transport, leaving the controller the rest of the machine.
 */
const definition = {
  nodeCommandStream: {
    ...nodeClientDefinition.nodeCommandStream,
    requestSerialize: (m: StreamFromNode | Buffer) =>
      Buffer.isBuffer(m) ? m : Buffer.from(StreamFromNodeCodec.encode(m).finish()),
  },
} satisfies grpc.ServiceDefinition;
const ClientCtor = grpc.makeGenericClientConstructor(definition, 'NodeCmdStream');
interface NodeClient extends grpc.Client {
  nodeCommandStream(metadata?: grpc.Metadata): NodeClientCall;
}
function createNodeClient(
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
): NodeClient {
  return new ClientCtor(address, credentials, options) as unknown as NodeClient;
}

interface SimNode {
  /** Pre-encoded price frames per pair, for 'max' mode. */
  encoded?: Map<string, Buffer[]>;
  /** Pre-encoded batch frames (one update per streaming pair), for 'max' mode with batches. */
  encodedBatches?: Buffer[];
  /** The controller's response headers said it takes NodePriceUpdatesV1Notify. */
  acceptsBatches: boolean;
  spec: SimNodeSpec;
  pairs: Set<string>;
  client?: Dialled<NodeClient>;
  call?: NodeClientCall;
  registered: boolean;
  streaming: Set<string>;
  attempt: number;
  timer?: NodeJS.Timeout;
  removed: boolean;
}

const nodes = new Map<string, SimNode>();
const stats = { sent: 0, frames: 0, skipped: 0, modifyStates: 0, reconnects: 0 };
let tuples: Array<[SimNode, string]> | undefined;
let streamingNodes: SimNode[] | undefined;
let cursor = 0;

function send(msg: FromSim): void {
  if (process.connected) process.send!(msg);
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function priceFrame(node: SimNode, pair: string): StreamFromNode {
  return {
    nodeUuid: node.spec.uuid,
    response: pack('NodePriceUpdateV1Notify', {
      currencyPair: pair,
      price: 1 + Math.random(),
      priceUpdatedAt: timestampFromMs(nowMs()),
    }),
    traceContext: {},
  };
}

function batchFrame(node: SimNode, pairs: Iterable<string>): StreamFromNode {
  const at = timestampFromMs(nowMs());
  return {
    nodeUuid: node.spec.uuid,
    response: pack('NodePriceUpdatesV1Notify', {
      updates: [...pairs].map((currencyPair) => ({
        currencyPair,
        price: 1 + Math.random(),
        priceUpdatedAt: at,
      })),
    }),
    traceContext: {},
  };
}

function write(node: SimNode, frame: StreamFromNode | Buffer): boolean {
  const call = node.call;
  if (!call || !node.registered) return false;
  try {
    (call.write as (m: StreamFromNode | Buffer) => boolean)(frame);
    return true;
  } catch {
    return false;
  }
}

function connect(node: SimNode): void {
  node.timer = undefined;
  if (node.removed) return;
  const client = dialWith(createNodeClient, {
    address: CONTROLLER,
    options: {
      ...clientChannelOptions(2000),
      // One TCP connection per simulated node, as with real node processes.
      'grpc.use_local_subchannel_pool': 1,
    },
  });
  const md = new grpc.Metadata();
  md.set(NODE_NAME_METADATA_KEY, node.spec.name);
  const call = client.client.nodeCommandStream(client.metadata(md));
  node.client = client;
  node.call = call;
  let lost = false;
  const onLost = () => {
    if (lost) return;
    lost = true;
    if (node.registered) stats.reconnects++;
    node.registered = false;
    node.streaming.clear();
    node.encodedBatches = undefined;
    tuples = undefined;
    streamingNodes = undefined;
    try {
      call.end();
    } catch {
      // already ended
    }
    client.close();
    if (node.call === call) node.call = undefined;
    if (node.removed) return;
    const delay = backoffDelayMs(node.attempt++, { initialMs: 100, maxMs: 2000 }, Math.random);
    node.timer = setTimeout(() => connect(node), delay);
  };
  node.acceptsBatches = false;
  call.on('metadata', (md: grpc.Metadata) => {
    node.acceptsBatches = md
      .get(CONTROLLER_ACCEPTS_METADATA_KEY)
      .join(',')
      .split(',')
      .some((n) => n.trim() === PRICE_BATCH_MESSAGE);
  });
  call.on('data', (frame: Frame<StreamToNode>) => onFrame(node, call, frame));
  call.on('error', onLost);
  call.on('end', onLost);
  call.on('status', (st: grpc.StatusObject) => {
    if (st.code !== grpc.status.OK) onLost();
  });
  call.write({
    nodeUuid: node.spec.uuid,
    response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: node.spec.pairs }),
    traceContext: {},
  });
}

function onFrame(node: SimNode, call: NodeClientCall, frame: Frame<StreamToNode>): void {
  if (node.call !== call) return;
  if (!node.registered) {
    node.registered = true;
    node.attempt = 0;
  }
  if (!frame.ok) return;
  const f = frame.value;
  const r = unpack(f.command);
  const reply = (response: StreamFromNode['response']) =>
    write(node, { nodeUuid: node.spec.uuid, fromUuid: f.fromUuid, response, traceContext: {} });
  if (!r.ok) {
    if (f.command) reply(pack('UnknownCommandV1Notify', { command: f.command }));
    return;
  }
  switch (r.value.name) {
    case 'NodeStreamModifyStateV1Req': {
      stats.modifyStates++;
      const wanted = new Set<string>();
      for (const s of r.value.message.streamStates) {
        if (s.streamState === StreamState.StreamStart && node.pairs.has(s.currencyPair)) {
          wanted.add(s.currencyPair);
        }
      }
      const started = [...wanted].filter((p) => !node.streaming.has(p));
      node.streaming = wanted;
      node.encodedBatches = undefined;
      tuples = undefined;
      streamingNodes = undefined;
      reply(pack('NodeStreamModifyStateV1Reply', {}));
      for (const pair of started) {
        // A first price at once, as the real node does.
        if (write(node, priceFrame(node, pair))) {
          stats.sent++;
          stats.frames++;
        }
        if (node.spec.report) send({ type: 'started', uuid: node.spec.uuid, pair, atMs: nowMs() });
      }
      return;
    }
    case 'NodeStatusV1Req':
      reply(
        pack('NodeStatusV1Reply', {
          appVersion: 'sim',
          connectedControllerServer: CONTROLLER,
          streamStates: [],
        }),
      );
      return;
    case 'NodeShutdownV1Req':
      reply(pack('NodeShutdownV1Reply', { shutdownAt: timestampFromMs(Date.now()) }));
      remove(node);
      return;
    case 'UnknownCommandV1Notify':
      return;
    default:
      reply(pack('UnknownCommandV1Notify', { command: f.command }));
  }
}

function remove(node: SimNode): void {
  node.removed = true;
  if (node.timer) clearTimeout(node.timer);
  node.streaming.clear();
  tuples = undefined;
  streamingNodes = undefined;
  try {
    node.call?.end();
  } catch {
    // already ended
  }
  node.client?.close();
  nodes.delete(node.spec.uuid);
}

function streamingTuples(): Array<[SimNode, string]> {
  if (!tuples) {
    tuples = [];
    for (const n of nodes.values()) for (const p of n.streaming) tuples.push([n, p]);
    cursor = 0;
  }
  return tuples;
}

function encodedFrame(node: SimNode, pair: string, i: number): Buffer {
  node.encoded ??= new Map();
  let frames = node.encoded.get(pair);
  if (!frames) {
    frames = Array.from({ length: 16 }, () =>
      Buffer.from(StreamFromNodeCodec.encode(priceFrame(node, pair)).finish()),
    );
    node.encoded.set(pair, frames);
  }
  return frames[i % frames.length]!;
}

function nodesStreaming(): SimNode[] {
  if (!streamingNodes) {
    streamingNodes = [...nodes.values()].filter((n) => n.streaming.size > 0);
    cursor = 0;
  }
  return streamingNodes;
}

function encodedBatch(node: SimNode, i: number): Buffer {
  node.encodedBatches ??= Array.from({ length: 16 }, () =>
    Buffer.from(StreamFromNodeCodec.encode(batchFrame(node, node.streaming)).finish()),
  );
  return node.encodedBatches[i % node.encodedBatches.length]!;
}

/**
 * Writes about `budget` updates round-robin over streaming nodes, each write one batch
 * with an update for every pair the node streams; skips streams that are not draining.
 */
function writeBatches(budget: number, preEncoded: boolean): void {
  const all = nodesStreaming();
  if (all.length === 0) return;
  let skippedInRow = 0;
  let written = 0;
  while (written < budget && skippedInRow < all.length) {
    const node = all[cursor++ % all.length]!;
    if (!node.call || node.call.writableNeedDrain) {
      stats.skipped++;
      skippedInRow++;
      continue;
    }
    skippedInRow = 0;
    const n = node.streaming.size;
    if (!node.acceptsBatches || n === 1) {
      // A controller that predates batches (or one pair): singles, as the real node does.
      for (const pair of node.streaming) {
        if (
          write(node, preEncoded ? encodedFrame(node, pair, stats.sent) : priceFrame(node, pair))
        ) {
          stats.sent++;
          stats.frames++;
        }
      }
    } else if (
      write(node, preEncoded ? encodedBatch(node, stats.frames) : batchFrame(node, node.streaming))
    ) {
      stats.sent += n;
      stats.frames++;
    }
    written += n;
  }
}

/** Writes up to `budget` updates round-robin over streaming pairs, skipping full streams. */
function writeSome(budget: number, preEncoded = false, batch = false): void {
  if (batch) return writeBatches(budget, preEncoded);
  const all = streamingTuples();
  if (all.length === 0) return;
  let skippedInRow = 0;
  for (let i = 0; i < budget && skippedInRow < all.length; i++) {
    const [node, pair] = all[cursor++ % all.length]!;
    if (!node.call || node.call.writableNeedDrain) {
      stats.skipped++;
      skippedInRow++;
      continue;
    }
    skippedInRow = 0;
    const frame = preEncoded ? encodedFrame(node, pair, stats.sent) : priceFrame(node, pair);
    if (write(node, frame)) {
      stats.sent++;
      stats.frames++;
    }
  }
}

let priceTimer: NodeJS.Timeout | undefined;
let priceImmediate: NodeJS.Immediate | undefined;

function setPrices(mode: PriceMode, perSec = 0, batch = false): void {
  if (priceTimer) clearInterval(priceTimer);
  if (priceImmediate) clearImmediate(priceImmediate);
  priceTimer = undefined;
  priceImmediate = undefined;
  if (mode === 'max') {
    const loop = () => {
      // Pre-encoded frames repeat their timestamps, which the controller drops as not newer;
      // fresh frames (the default) are what real nodes send. BENCH_FRESH_FRAMES=0 replays.
      writeSome(500, process.env.BENCH_FRESH_FRAMES === '0', batch);
      priceImmediate = setImmediate(loop);
    };
    loop();
  } else if (mode === 'paced' && perSec > 0) {
    const start = performance.now();
    let written = 0;
    priceTimer = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * perSec) / 1000) - written;
      // After a stall, catch up by at most 50 ms worth rather than bursting.
      const n = Math.min(due, Math.ceil(perSec / 20));
      written += due;
      if (n > 0) writeSome(n, false, batch);
    }, 1);
  }
}

function status(): SimStatus {
  let registered = 0;
  let streamingPairs = 0;
  for (const n of nodes.values()) {
    if (n.registered) registered++;
    streamingPairs += n.streaming.size;
  }
  return {
    nodes: nodes.size,
    registered,
    streamingPairs,
    ...stats,
    rssBytes: process.memoryUsage().rss,
  };
}

async function add(specs: SimNodeSpec[], perSec?: number): Promise<void> {
  const batch = perSec ? Math.max(1, Math.ceil(perSec / 100)) : specs.length;
  for (let i = 0; i < specs.length; i += batch) {
    for (const spec of specs.slice(i, i + batch)) {
      const node: SimNode = {
        spec,
        pairs: new Set(spec.pairs),
        registered: false,
        streaming: new Set(),
        attempt: 0,
        removed: false,
        acceptsBatches: false,
      };
      nodes.set(spec.uuid, node);
      connect(node);
    }
    if (perSec) await new Promise((r) => setTimeout(r, 10));
  }
}

function exit(): void {
  setPrices('off');
  for (const n of [...nodes.values()]) remove(n);
  setTimeout(() => process.exit(0), 50).unref();
}

process.on('message', (msg: ToSim) => {
  switch (msg.type) {
    case 'add':
      void add(msg.nodes, msg.perSec).then(() => send({ type: 'reply', id: msg.id }));
      return;
    case 'remove':
      for (const u of msg.uuids) {
        const n = nodes.get(u);
        if (n) remove(n);
      }
      send({ type: 'reply', id: msg.id });
      return;
    case 'prices':
      setPrices(msg.mode, msg.perSec, msg.batch);
      send({ type: 'reply', id: msg.id });
      return;
    case 'status':
      send({ type: 'reply', id: msg.id, status: status() });
      return;
    case 'exit':
      exit();
  }
});
// The runner went away (even by SIGKILL): do not linger.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
process.on('uncaughtException', (err) => {
  send({ type: 'fatal', error: String(err) });
  process.exit(1);
});
