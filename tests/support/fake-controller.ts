/**
 * A stand-in controller for testing a real node in-process: it accepts node streams,
 * records every frame, and lets the test send exactly the commands it wants.
 */
import * as grpc from '@grpc/grpc-js';
import type { StreamFromNode, StreamToNode } from '../../services/gen/protobuf/currency_nodes';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type NodeServerCall,
  type Frame,
  PRICE_BATCH_MESSAGE,
  nodeServerDefinition,
} from '../../services/shared/wire';

export class FakeController {
  readonly calls: NodeServerCall[] = [];
  readonly frames: StreamFromNode[] = [];
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  /** `acceptsPriceBatches`: say so in the response headers, as our controller does. */
  static async start(
    port = 0,
    opts: { acceptsPriceBatches?: boolean } = {},
  ): Promise<FakeController> {
    const server = new grpc.Server();
    const ref: { self?: FakeController } = {};
    server.addService(nodeServerDefinition, {
      nodeCommandStream: (call: NodeServerCall) => {
        ref.self!.calls.push(call);
        if (opts.acceptsPriceBatches) {
          const md = new grpc.Metadata();
          md.set(CONTROLLER_ACCEPTS_METADATA_KEY, PRICE_BATCH_MESSAGE);
          call.sendMetadata(md);
        }
        call.on('data', (f: Frame<StreamFromNode>) => {
          if (f.ok) ref.self!.frames.push(f.value);
        });
        call.on('error', () => {});
      },
    });
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    ref.self = new FakeController(server, bound);
    return ref.self;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  latestCall(): NodeServerCall | undefined {
    return this.calls[this.calls.length - 1];
  }

  send(msg: StreamToNode, call = this.latestCall()): void {
    call!.write(msg);
  }

  /** Drops every node stream abruptly, as a crashed controller would. */
  dropAll(): void {
    for (const c of this.calls)
      c.emit('error', { code: grpc.status.UNAVAILABLE, details: 'fake controller drop' });
  }

  async stop(): Promise<void> {
    for (const c of this.calls) {
      try {
        c.end();
      } catch {
        // gone already
      }
    }
    this.server.forceShutdown();
  }
}
