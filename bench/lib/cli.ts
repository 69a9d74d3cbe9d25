/**
 * A protocol-level CLI client for the benches: one stream, requests matched by stream_id,
 * and a price watch that timestamps each update on arrival.
 */
import { randomUUID } from 'node:crypto';
import type { StreamToCli } from '../../services/gen/protobuf/currency_nodes';
import {
  type MessageName,
  type MessageOf,
  type Unpacked,
  pack,
  unpack,
} from '../../services/shared/any';
import { type Dialled, dialController } from '../../services/shared/client';
import { cliChannelOptions } from '../../services/shared/grpc-options';
import { msFromTimestamp } from '../../services/shared/time';
import type { CliClientCall, Frame, createCliClient } from '../../services/shared/wire';
import { nowMs } from './clock';

export interface PriceSeen {
  pair: string;
  nodeUuid: string;
  /** The node's price timestamp (sub-millisecond when the sender filled nanos). */
  sentAtMs: number;
  receivedAtMs: number;
}

export class BenchCli {
  private readonly cliUuid = randomUUID();
  private readonly dialled: Dialled<ReturnType<typeof createCliClient>>;
  private readonly client: ReturnType<typeof createCliClient>;
  private call?: CliClientCall;
  private readonly pending = new Map<string, (u: Unpacked) => void>();
  private readonly watchers = new Map<string, (p: PriceSeen) => void>();

  constructor(readonly address: string) {
    this.dialled = dialController({
      address,
      options: {
        // The real CLI's channel options, so that "over the protocol" is what the CLI gets.
        ...cliChannelOptions(),
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        'grpc.use_local_subchannel_pool': 1,
      },
    });
    this.client = this.dialled.client;
  }

  async open(timeoutMs = 10_000): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
    const call = this.client.cliCommandStream();
    this.call = call;
    call.on('data', (frame: Frame<StreamToCli>) => {
      const receivedAtMs = nowMs();
      if (!frame.ok) return;
      const f = frame.value;
      const r = unpack(f.response);
      if (!r.ok) return;
      const watch = this.watchers.get(f.streamId);
      if (watch && r.value.name === 'NodePriceUpdateV1Notify') {
        const m = r.value.message;
        watch({
          pair: m.currencyPair,
          nodeUuid: f.nodeUuid ?? '',
          sentAtMs: preciseMs(m.priceUpdatedAt),
          receivedAtMs,
        });
        return;
      }
      if (watch && r.value.name === 'ControllerPriceUpdatesV1Notify') {
        for (const p of r.value.message.prices) {
          watch({
            pair: p.currencyPair,
            nodeUuid: p.nodeUuid,
            sentAtMs: preciseMs(p.priceUpdatedAt),
            receivedAtMs,
          });
        }
        return;
      }
      const waiter = this.pending.get(f.streamId);
      if (waiter) {
        this.pending.delete(f.streamId);
        waiter(r.value);
      }
    });
    // A stream that ends (e.g. a keepalive timeout on a starved machine) fails what waits.
    const fail = () => {
      this.ended = true;
      for (const [id, w] of this.failers) {
        this.failers.delete(id);
        w();
      }
    };
    call.on('error', fail);
    call.on('end', fail);
  }

  /** True once the stream has ended; open a new BenchCli to go on. */
  ended = false;
  private readonly failers = new Map<string, () => void>();

  /** Sends one controller command and resolves with its first reply. */
  request<N extends MessageName>(
    name: N,
    message: MessageOf<N>,
    timeoutMs = 10_000,
  ): Promise<Unpacked> {
    const streamId = randomUUID();
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(new Error(`${name}: the CLI stream has ended`));
      const timer = setTimeout(() => {
        this.pending.delete(streamId);
        this.failers.delete(streamId);
        reject(new Error(`${name}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.failers.set(streamId, () => {
        clearTimeout(timer);
        this.pending.delete(streamId);
        reject(new Error(`${name}: the CLI stream ended`));
      });
      this.pending.set(streamId, (u) => {
        clearTimeout(timer);
        this.failers.delete(streamId);
        resolve(u);
      });
      this.call!.write({
        streamId,
        cliUuid: this.cliUuid,
        nodeUuids: [],
        command: pack(name, message),
        traceContext: {},
      });
    });
  }

  /**
   * Subscribes to price updates (all pairs when `pairs` is empty); resolves once
   * acknowledged. Batched (V2, what the CLI asks for) unless `batched` is false.
   */
  async watch(pairs: string[], onPrice: (p: PriceSeen) => void, batched = true): Promise<void> {
    const streamId = randomUUID();
    this.watchers.set(streamId, onPrice);
    const ack = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('watch not acknowledged')), 10_000);
      this.pending.set(streamId, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.call!.write({
      streamId,
      cliUuid: this.cliUuid,
      nodeUuids: [],
      command: batched
        ? pack('ControllerWatchPricesV2Req', { currencyPairs: pairs })
        : pack('ControllerWatchPricesV1Req', { currencyPairs: pairs }),
      traceContext: {},
    });
    await ack;
  }

  close(): void {
    try {
      this.call?.end();
      this.call?.cancel();
    } catch {
      // already closed
    }
    this.dialled.close();
  }
}

/** A price timestamp in ms with its sub-millisecond part (when the sender filled nanos). */
function preciseMs(ts: { seconds: number; nanos: number } | undefined): number {
  return ts ? ts.seconds * 1000 + ts.nanos / 1e6 : (msFromTimestamp(ts) ?? NaN);
}
