/**
 * The floor of price intake (issue #22): a grpc-js server with the controller's node
 * service definition (services/shared/wire.ts: the same never-throwing deserializer and
 * serializers) and the controller's server channel options (keepalive pings included),
 * that does only what any receiver of node prices must do: answer each
 * NodeKnownCurrenciesV1Notify with a NodeStreamModifyStateV1Req that starts every pair the
 * node announced (with the response headers the controller sends, so that nodes batch),
 * then unpack each price frame (single and batch) and count its updates. No assignment,
 * no checks, no price store, no watchers, no prom-client.
 *
 *   FLOOR_GRPC_ADDR=127.0.0.1:PORT FLOOR_HTTP_ADDR=127.0.0.1:PORT node floor-server.js
 *
 * HTTP (loopback): GET /readyz -> 200 once serving; GET /count -> JSON
 * `{ updates, frames, malformed, streams, registered }` (totals since the start).
 * Ends on SIGTERM/SIGINT, and by itself after FLOOR_MAX_LIFETIME_MS (default 20 min).
 */
import { createServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type StreamFromNode,
} from '../../services/gen/protobuf/currency_nodes';
import { pack, unpack } from '../../services/shared/any';
import { KEEPALIVE_TIME_MS, serverChannelOptions } from '../../services/shared/grpc-options';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  KEEPALIVE_PERMIT_METADATA_KEY,
  type NodeServerCall,
  PRICE_BATCH_MESSAGE,
  nodeServerDefinition,
} from '../../services/shared/wire';

const GRPC_ADDR = process.env.FLOOR_GRPC_ADDR ?? '127.0.0.1:5170';
const HTTP_ADDR = process.env.FLOOR_HTTP_ADDR ?? '127.0.0.1:5171';
const MAX_LIFETIME_MS = Number(process.env.FLOOR_MAX_LIFETIME_MS ?? 20 * 60_000);

const counts = { updates: 0, frames: 0, malformed: 0, streams: 0, registered: 0 };

/** Written at once on every node stream, as the controller does (node-side/node-streams.ts `headers`). */
const HEADERS: Record<string, string> = {
  [CONTROLLER_ACCEPTS_METADATA_KEY]: PRICE_BATCH_MESSAGE,
  [KEEPALIVE_PERMIT_METADATA_KEY]: String(KEEPALIVE_TIME_MS),
};

function onFrame(call: NodeServerCall, frame: Frame<StreamFromNode>): void {
  counts.frames++;
  if (!frame.ok) {
    counts.malformed++;
    return;
  }
  const r = unpack(frame.value.response);
  if (!r.ok) {
    counts.malformed++;
    return;
  }
  switch (r.value.name) {
    case 'NodePriceUpdateV1Notify':
      counts.updates++;
      return;
    case 'NodePriceUpdatesV1Notify':
      counts.updates += r.value.message.updates.length;
      return;
    case 'NodeKnownCurrenciesV1Notify':
      counts.registered++;
      call.write({
        command: pack('NodeStreamModifyStateV1Req', {
          streamStates: r.value.message.knownCurrencyPairs.map((currencyPair) => ({
            currencyPair,
            streamState: StreamState.StreamStart,
          })),
        }),
        traceContext: {},
      });
      return;
    default:
      // Replies to our commands (NodeStreamModifyStateV1Reply): nothing to do.
      return;
  }
}

function nodeCommandStream(call: NodeServerCall): void {
  counts.streams++;
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(HEADERS)) md.set(k, v);
  call.sendMetadata(md);
  call.on('data', (frame: Frame<StreamFromNode>) => onFrame(call, frame));
  call.on('end', () => {
    try {
      call.end();
    } catch {
      // already gone
    }
  });
  call.on('error', () => {});
}

function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

async function main(): Promise<void> {
  const server = new grpc.Server(serverChannelOptions());
  server.addService(nodeServerDefinition, { nodeCommandStream });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(GRPC_ADDR, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  const http = createServer((req, res) => {
    if (req.url === '/count') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(counts));
    } else if (req.url === '/readyz') {
      res.writeHead(200).end('ok');
    } else {
      res.writeHead(404).end();
    }
  });
  const { host, port } = hostPort(HTTP_ADDR);
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve());
  });
  const stop = () => {
    server.forceShutdown();
    http.close();
    http.closeAllConnections();
    setTimeout(() => process.exit(0), 100).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
