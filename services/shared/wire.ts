/**
 * gRPC service definitions whose inbound deserializers never throw: a frame that cannot
 * be decoded arrives as `{ ok: false }`, so the receiver counts and logs it and the
 * stream (and the process) carries on. Every inbound frame goes through `Frame`.
 */
import * as grpc from '@grpc/grpc-js';
import { UUID_PATTERN } from './config';
import {
  CliCmdStreamService,
  NodeCmdStreamService,
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../gen/protobuf/currency_nodes';

export type Frame<T> = { ok: true; value: T } | { ok: false; error: string; bytes: number };

function safeDecode<T>(decode: (input: Uint8Array) => T): (buf: Buffer) => Frame<T> {
  return (buf) => {
    try {
      return { ok: true, value: decode(buf) };
    } catch (err) {
      return {
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        bytes: buf.length,
      };
    }
  };
}

function encoder<T>(codec: { encode(m: T): { finish(): Uint8Array } }): (m: T) => Buffer {
  return (m) => bufferOf(codec.encode(m).finish());
}

/**
 * A Buffer over the bytes an encoder's finish() returned, without copying them: finish()
 * hands over a fresh array that nothing else holds. Every frame sent goes through here.
 */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const nodeMethod = NodeCmdStreamService.nodeCommandStream;
const cliMethod = CliCmdStreamService.cliCommandStream;

/** Server side: frames from nodes arrive as Frame<StreamFromNode>. */
export const nodeServerDefinition = {
  nodeCommandStream: {
    path: nodeMethod.path,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder(StreamFromNode),
    requestDeserialize: safeDecode((b) => StreamFromNode.decode(b)),
    responseSerialize: encoder(StreamToNode),
    responseDeserialize: (b: Buffer) => StreamToNode.decode(b),
  },
} satisfies grpc.ServiceDefinition;

export const cliServerDefinition = {
  cliCommandStream: {
    path: cliMethod.path,
    requestStream: true,
    responseStream: true,
    requestSerialize: encoder(StreamFromCli),
    requestDeserialize: safeDecode((b) => StreamFromCli.decode(b)),
    responseSerialize: encoder(StreamToCli),
    responseDeserialize: (b: Buffer) => StreamToCli.decode(b),
  },
} satisfies grpc.ServiceDefinition;

/** Client side: frames from the controller arrive as Frame<StreamToNode>. */
export const nodeClientDefinition = {
  nodeCommandStream: {
    ...nodeServerDefinition.nodeCommandStream,
    requestDeserialize: (b: Buffer) => StreamFromNode.decode(b),
    responseDeserialize: safeDecode((b) => StreamToNode.decode(b)),
  },
} satisfies grpc.ServiceDefinition;

export const cliClientDefinition = {
  cliCommandStream: {
    ...cliServerDefinition.cliCommandStream,
    requestDeserialize: (b: Buffer) => StreamFromCli.decode(b),
    responseDeserialize: safeDecode((b) => StreamToCli.decode(b)),
  },
} satisfies grpc.ServiceDefinition;

export type NodeServerCall = grpc.ServerDuplexStream<Frame<StreamFromNode>, StreamToNode>;
export type CliServerCall = grpc.ServerDuplexStream<Frame<StreamFromCli>, StreamToCli>;
export type NodeClientCall = grpc.ClientDuplexStream<StreamFromNode, Frame<StreamToNode>>;
export type CliClientCall = grpc.ClientDuplexStream<StreamFromCli, Frame<StreamToCli>>;

interface NodeStreamClient extends grpc.Client {
  nodeCommandStream(metadata?: grpc.Metadata, options?: grpc.CallOptions): NodeClientCall;
}
interface CliStreamClient extends grpc.Client {
  cliCommandStream(metadata?: grpc.Metadata, options?: grpc.CallOptions): CliClientCall;
}

const NodeClientCtor = grpc.makeGenericClientConstructor(nodeClientDefinition, 'NodeCmdStream');
const CliClientCtor = grpc.makeGenericClientConstructor(cliClientDefinition, 'CliCmdStream');

export function createNodeClient(
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
): NodeStreamClient {
  return new NodeClientCtor(address, credentials, options) as unknown as NodeStreamClient;
}

export function createCliClient(
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
): CliStreamClient {
  return new CliClientCtor(address, credentials, options) as unknown as CliStreamClient;
}

export function isUuid(s: string): boolean {
  return UUID_PATTERN.test(s);
}

/**
 * Metadata key a node uses to tell the controller its friendly name. Text headers carry
 * printable ASCII only, so our node sends any other name as UTF-8 under `<key>-bin`
 * (which our controller prefers) and a percent-encoded copy under the plain key.
 */
export const NODE_NAME_METADATA_KEY = 'x-currency-node-name';

/**
 * Response-header key on node streams: the optional messages the controller takes
 * (comma-separated message names). A node sends NodePriceUpdatesV1Notify only when it is
 * listed, so that it keeps working with controllers that predate it.
 */
export const CONTROLLER_ACCEPTS_METADATA_KEY = 'x-currency-controller-accepts';
export const PRICE_BATCH_MESSAGE = 'NodePriceUpdatesV1Notify';

/**
 * Response header of a node stream from our controller: the shortest client keepalive
 * ping interval (ms) it permits. A node sends fast pings only to a controller that said
 * so; a stock grpc-go server allows one ping per 5 minutes and ends streams that ping more.
 */
export const KEEPALIVE_PERMIT_METADATA_KEY = 'x-currency-keepalive-permit-ms';

/** The close-reason trailer: its values are CLOSE_REASONS in protocol.ts. */
export { CLOSE_REASON_METADATA_KEY } from './protocol';

/**
 * How a standby controller (leader election) begins the message of the CliErrorV1Notify
 * (UNAVAILABLE, no node UUID) it answers commands that need the leader with, and of the
 * `not_leader` close of a node stream; the rest names the leader.
 */
export const STANDBY_MESSAGE_PREFIX = 'this controller is a standby';
