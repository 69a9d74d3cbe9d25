/**
 * A TCP proxy on loopback that can cut its connections without closing them: bytes stop
 * flowing both ways but neither side sees a FIN or RST, as with a pulled cable. Only
 * keepalive can notice.
 */
import { type Server, type Socket, createConnection, createServer } from 'node:net';

export class BlackholeProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly server: Server;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  static async start(targetPort: number): Promise<BlackholeProxy> {
    const proxy = new BlackholeProxy(targetPort);
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    return proxy;
  }

  get port(): number {
    const addr = this.server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  /** Stops every current connection's traffic, silently; returns a function that tears them down. */
  cut(): () => void {
    const cut = [...this.pairs];
    for (const [a, b] of cut) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
    return () => {
      for (const pair of cut) {
        pair[0].destroy();
        pair[1].destroy();
        this.pairs.delete(pair);
      }
    };
  }

  close(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    return new Promise((r) => this.server.close(() => r()));
  }
}
