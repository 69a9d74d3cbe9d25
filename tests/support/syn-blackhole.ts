/**
 * A loopback port where a TCP connect hangs: the kernel drops every SYN, as for an address
 * behind a stale NAT rule or a dead pod's IP (no RST, no ICMP), until the kernel gives up
 * after about two minutes. No root needed: a child process listens with an accept queue
 * of one, two connections fill it, and the child's event loop is blocked so it never
 * accepts them; Linux drops a SYN to a listener whose accept queue is full.
 * (blackhole-proxy.ts is the other kind: connections that open and then go silent.)
 */
import { type Socket, connect } from 'node:net';
import { ProcessGroup, type TrackedProcess } from './processes';

/** Listens, says its port, and blocks its event loop for at most HOLD ms, then exits. */
const CHILD = `
const net = require('node:net');
const server = net.createServer();
server.listen({ host: '127.0.0.1', port: Number(process.argv[1]), backlog: 1 }, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n', () => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(process.argv[2]));
    process.exit(0);
  });
});
`;

const holes = new ProcessGroup();

export class SynBlackhole {
  private constructor(
    private readonly child: TrackedProcess,
    private readonly fill: Socket[],
    readonly port: number,
  ) {}

  /** `holdMs`: the child stops by itself after this long, whatever the test does. */
  static async start(port = 0, holdMs = 60_000): Promise<SynBlackhole> {
    const child = holes.spawn('syn-blackhole', process.execPath, [
      '-e',
      CHILD,
      String(port),
      String(holdMs),
    ]);
    await child.waitForOutput(/"port":\d+}\n/);
    const bound = child.logLines<{ port: number }>()[0]!.port;
    // The accept queue of a backlog of one holds two connections; fill it.
    const fill: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      fill.push(
        await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port: bound }, () => resolve(s));
          s.once('error', reject);
        }),
      );
    }
    for (const s of fill) s.on('error', () => {});
    return new SynBlackhole(child, fill, bound);
  }

  /** Frees the port: SYNs still retried by the kernel then get a RST, or a new listener. */
  async stop(): Promise<void> {
    for (const s of this.fill) s.destroy();
    await this.child.kill('SIGKILL');
  }
}
