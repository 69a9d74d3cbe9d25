/**
 * A stand-in controller for testing a real node in-process: it accepts node streams,
 * records every frame, and lets the test send exactly the commands it wants.
 */
import * as grpc from '@grpc/grpc-js';
import type {
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../../services/gen/protobuf/currency_nodes';
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type CliServerCall,
  cliServerDefinition,
  type NodeServerCall,
  type Frame,
  CLOSE_REASON_METADATA_KEY,
  KEEPALIVE_PERMIT_METADATA_KEY,
  PRICE_BATCH_MESSAGE,
  nodeServerDefinition,
} from '../../services/shared/wire';

export class FakeController {
  readonly calls: NodeServerCall[] = [];
  readonly frames: StreamFromNode[] = [];
  /** CLI streams that ended or were cancelled by the CLI (a finished command closes its stream). */
  cliStreamsClosed = 0;
  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  /**
   * `acceptsPriceBatches`: say so in the response headers, as our controller does.
   * `cli`: also serve the CLI service; called with every decoded frame a CLI sends and a
   * function that answers on that CLI's stream (tests script exactly what a CLI receives).
   */
  static async start(
    port = 0,
    opts: {
      acceptsPriceBatches?: boolean;
      /** Send `x-currency-keepalive-permit-ms` in the response headers, as our controller does. */
      keepalivePermitMs?: number;
      cli?: (frame: StreamFromCli, reply: (m: StreamToCli) => void) => void;
    } = {},
  ): Promise<FakeController> {
    const server = new grpc.Server();
    const ref: { self?: FakeController } = {};
    server.addService(nodeServerDefinition, {
      nodeCommandStream: (call: NodeServerCall) => {
        ref.self!.calls.push(call);
        if (opts.acceptsPriceBatches || opts.keepalivePermitMs !== undefined) {
          const md = new grpc.Metadata();
          if (opts.acceptsPriceBatches)
            md.set(CONTROLLER_ACCEPTS_METADATA_KEY, PRICE_BATCH_MESSAGE);
          if (opts.keepalivePermitMs !== undefined) {
            md.set(KEEPALIVE_PERMIT_METADATA_KEY, String(opts.keepalivePermitMs));
          }
          call.sendMetadata(md);
        }
        call.on('data', (f: Frame<StreamFromNode>) => {
          if (f.ok) ref.self!.frames.push(f.value);
        });
        call.on('error', () => {});
      },
    });
    const onCli = opts.cli;
    if (onCli)
      server.addService(cliServerDefinition, {
        cliCommandStream: (call: CliServerCall) => {
          call.on('data', (f: Frame<StreamFromCli>) => {
            if (f.ok) onCli(f.value, (m) => call.write(m));
          });
          let closed = false;
          const onClosed = () => {
            if (!closed) ref.self!.cliStreamsClosed++;
            closed = true;
          };
          call.on('end', () => {
            onClosed();
            call.end();
          });
          call.on('cancelled', onClosed);
          call.on('error', onClosed);
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

  /** Ends one node stream with a status and, optionally, the close-reason trailer. */
  endStream(
    call: NodeServerCall,
    st: { code: grpc.status; details: string; closeReason?: string },
  ): void {
    const metadata = new grpc.Metadata();
    if (st.closeReason) metadata.set(CLOSE_REASON_METADATA_KEY, st.closeReason);
    call.emit('error', { code: st.code, details: st.details, metadata });
  }

  /** Ends a node stream as our controller ends one displaced by a newer stream with its UUID. */
  displace(call = this.latestCall()!): void {
    this.endStream(call, {
      code: grpc.status.ABORTED,
      details: 'replaced by a newer stream with the same node UUID',
      closeReason: 'replaced',
    });
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
