/**
 * Protocol-level peers for tests: a node or CLI that speaks the wire protocol directly,
 * so a test can send exactly the frame it wants (unknown types, garbage, duplicates)
 * and see exactly what comes back.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../../services/gen/google/protobuf/any';
import type {
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../../services/gen/protobuf/currency_nodes';
import {
  type MessageName,
  type MessageOf,
  type Unpacked,
  pack,
  unpack,
} from '../../services/shared/any';
import { timestampFromMs } from '../../services/shared/time';
import { type Frame, createCliClient, createNodeClient } from '../../services/shared/wire';
import { waitFor } from './wait';

const insecure = () => grpc.credentials.createInsecure();

abstract class RawPeer<In> {
  readonly received: In[] = [];
  status?: grpc.StatusObject;
  readonly ended: Promise<grpc.StatusObject>;
  protected resolveEnded!: (s: grpc.StatusObject) => void;

  constructor() {
    this.ended = new Promise((r) => (this.resolveEnded = r));
  }

  protected onFrame(frame: Frame<In>): void {
    if (frame.ok) this.received.push(frame.value);
  }

  protected onStatus(s: grpc.StatusObject): void {
    this.status = s;
    this.resolveEnded(s);
  }

  /** Waits (bounded) for a received frame that `match` picks out, and returns what it returns. */
  async next<T>(what: string, match: (f: In) => T | undefined, timeoutMs = 5000): Promise<T> {
    return waitFor(
      what,
      () => {
        for (const f of this.received) {
          const v = match(f);
          if (v !== undefined) return v;
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 10 },
    );
  }
}

/** Unpacks `any` if it is message `name`. */
export function as<N extends MessageName>(name: N, any: Any | undefined): MessageOf<N> | undefined {
  const r = unpack(any);
  return r.ok && r.value.name === name ? (r.value.message as MessageOf<N>) : undefined;
}

export function unpacked(any: Any | undefined): Unpacked | undefined {
  const r = unpack(any);
  return r.ok ? r.value : undefined;
}

export class RawNode extends RawPeer<StreamToNode> {
  private readonly client: ReturnType<typeof createNodeClient>;
  readonly call: ReturnType<ReturnType<typeof createNodeClient>['nodeCommandStream']>;
  /** The controller's response headers on this stream. */
  readonly headers: Promise<grpc.Metadata>;

  constructor(
    address: string,
    readonly uuid: string,
  ) {
    super();
    this.client = createNodeClient(address, insecure(), {});
    this.call = this.client.nodeCommandStream();
    this.headers = new Promise((r) => this.call.once('metadata', r));
    this.call.on('data', (f: Frame<StreamToNode>) => this.onFrame(f));
    this.call.on('status', (s: grpc.StatusObject) => this.onStatus(s));
    this.call.on('error', () => {});
  }

  send(frame: Partial<StreamFromNode>): void {
    this.call.write({ nodeUuid: this.uuid, traceContext: {}, ...frame });
  }

  announce(pairs: string[]): void {
    this.send({ response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }) });
  }

  /**
   * Default timestamps: now, and always later than this peer's previous one (by a
   * microsecond within one millisecond), as a real market's updates are; the controller
   * keeps only prices newer than the latest it holds.
   */
  private lastAtMs = 0;
  private stamp(): number {
    this.lastAtMs = Math.max(Date.now(), this.lastAtMs + 0.001);
    return this.lastAtMs;
  }

  price(pair: string, price: number, atMs = this.stamp()): void {
    this.send({
      response: pack('NodePriceUpdateV1Notify', {
        currencyPair: pair,
        price,
        priceUpdatedAt: timestampFromMs(atMs),
      }),
    });
  }

  /** Several updates in one NodePriceUpdatesV1Notify frame. */
  prices(updates: { pair: string; price: number; atMs?: number }[]): void {
    this.send({
      response: pack('NodePriceUpdatesV1Notify', {
        updates: updates.map((u) => ({
          currencyPair: u.pair,
          price: u.price,
          priceUpdatedAt: timestampFromMs(u.atMs ?? this.stamp()),
        })),
      }),
    });
  }

  /** The latest desired state received: pairs to stream, with the prices handed over. */
  latestDesiredState(): MessageOf<'NodeStreamModifyStateV1Req'> | undefined {
    for (let i = this.received.length - 1; i >= 0; i--) {
      const m = as('NodeStreamModifyStateV1Req', this.received[i]!.command);
      if (m) return m;
    }
    return undefined;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export class RawCli extends RawPeer<StreamToCli> {
  private readonly client: ReturnType<typeof createCliClient>;
  readonly call: ReturnType<ReturnType<typeof createCliClient>['cliCommandStream']>;

  constructor(
    address: string,
    readonly cliUuid = '11111111-2222-4333-8444-555555555555',
  ) {
    super();
    this.client = createCliClient(address, insecure(), {});
    this.call = this.client.cliCommandStream();
    this.call.on('data', (f: Frame<StreamToCli>) => this.onFrame(f));
    this.call.on('status', (s: grpc.StatusObject) => this.onStatus(s));
    this.call.on('error', () => {});
  }

  send(frame: Partial<StreamFromCli> & { streamId: string }): void {
    this.call.write({ cliUuid: this.cliUuid, nodeUuids: [], traceContext: {}, ...frame });
  }

  onStream(streamId: string): StreamToCli[] {
    return this.received.filter((f) => f.streamId === streamId);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/** Opens a stream on `path` and writes raw bytes, bypassing protobuf encoding. */
export function rawBytesStream(
  address: string,
  path: string,
): { write(b: Buffer): void; close(): void; ended: Promise<grpc.StatusObject> } {
  const client = new grpc.Client(address, insecure());
  const call = client.makeBidiStreamRequest<Buffer, Buffer>(
    path,
    (b) => b,
    (b) => b,
  );
  call.on('data', () => {});
  call.on('error', () => {});
  const ended = new Promise<grpc.StatusObject>((r) => call.on('status', r));
  return {
    write: (b) => call.write(b),
    close: () => {
      call.cancel();
      client.close();
    },
    ended,
  };
}
