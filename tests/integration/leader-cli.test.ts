/**
 * The CLI against controllers under leader election (two in-process controllers on an
 * in-memory Lease, tests/support/memory-lease.ts):
 * - a standby says it is one and names the leader for every command that needs the leader
 *   (exit 3), and still answers `controller version`; given both addresses, a command goes
 *   past the standby to the leader;
 * - `watch` and `controller nodes -w` follow a handover (graceful stop of the leader, or a
 *   leader that loses its Lease): they say so on stderr, reconnect and carry on; bounded
 *   by --reconnect-timeout (exit 3), and Ctrl-C while reconnecting still exits 0;
 * - `/readyz` says why a standby is not ready.
 */
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { Registry } from 'prom-client';
import { HealthStatus } from '../../services/controller/health';
import { loadNodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { silentLogger } from '../../services/shared/logger';
import { type InProcessCli, startInProcess } from '../support/cli-runner';
import { startTestController } from '../support/in-process';
import { capturingLogger } from '../support/log-capture';
import { MemoryLeaseStore } from '../support/memory-lease';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

type Ctl = Awaited<ReturnType<typeof startTestController>>;

const running: Ctl[] = [];
const nodes: RunningNode[] = [];
const clis: InProcessCli[] = [];
const proxies: SwitchProxy[] = [];

afterEach(async () => {
  for (const c of clis.splice(0)) {
    c.stop();
    await c.code.catch(() => undefined);
  }
  for (const n of nodes.splice(0)) await n.stop();
  for (const p of proxies.splice(0)) await p.close();
  for (const c of running.splice(0)) await c.controller.stop();
});

/** `currency-cli ARGS` in this process; stdout and stderr are kept. */
function cli(args: string[]): InProcessCli {
  const c = startInProcess(args);
  clis.push(c);
  return c;
}

async function finished(c: InProcessCli): Promise<{ code: number; out: string; err: string }> {
  const code = await c.code;
  return { code, out: c.out(), err: c.err() };
}

/** A controller under election on `store`; resolves once it leads, or knows who does. */
async function controller(
  store: MemoryLeaseStore,
  identity: string,
  opts: { follow?: string; failWith?: string; retryPeriodMs?: number } = {},
): Promise<Ctl & { api: ReturnType<MemoryLeaseStore['api']> }> {
  const api = store.api(identity);
  api.failWith = opts.failWith;
  const { logger, lines } = capturingLogger<{ msg: string; leader?: string }>('info', {
    service: 'currency-controller',
  });
  const c = await startTestController({
    logger,
    leader: {
      api,
      identity,
      follow: opts.follow,
      ...(opts.retryPeriodMs !== undefined && {
        retryPeriodMs: opts.retryPeriodMs,
        renewDeadlineMs: opts.retryPeriodMs * 2,
        leaseDurationMs: opts.retryPeriodMs * 3,
      }),
    },
  });
  running.push(c);
  if (opts.failWith === undefined)
    await waitFor(`${identity} leads or knows the leader`, () =>
      lines.some((l) => (l.msg === 'leading' || l.msg === 'not leading') && l.leader),
    );
  return { ...c, api };
}

/** Leader A (ctl-a) first, then standby B (ctl-b) following A's prices. */
async function leaderAndStandby(store = new MemoryLeaseStore()) {
  const a = await controller(store, 'ctl-a');
  await waitFor('ctl-a leads', () => a.controller.health.status() === HealthStatus.SERVING);
  const b = await controller(store, 'ctl-b', { follow: a.address });
  expect(b.controller.health.status()).toBe(HealthStatus.NOT_SERVING);
  return { store, a, b };
}

/** A node given both addresses, streaming USD_HKD every 50 ms. */
async function node(addresses: string[]): Promise<RunningNode> {
  const n = await startNode(
    loadNodeConfig({
      NODE_CONTROLLER_ADDR: addresses.join(','),
      NODE_CURRENCY_PAIRS: 'USD_HKD',
      NODE_NAME: 'edge-1',
      NODE_PRICE_INTERVAL_MS: '50',
      NODE_RECONNECT_INITIAL_MS: '50',
      NODE_RECONNECT_MAX_MS: '200',
      METRICS_ADDR: '127.0.0.1:0',
      LOG_LEVEL: 'silent',
    }),
    { logger: silentLogger(), registry: new Registry(), defaultMetrics: false, serveHttp: false },
  );
  nodes.push(n);
  return n;
}

const jsonLines = (text: string) => text.split('\n').filter((l) => l.startsWith('{'));

/**
 * A TCP proxy with one address and a backend that can be switched, as a Kubernetes Service
 * routes to whichever controller is ready (the leader).
 */
class SwitchProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(private target: number) {
    this.server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: this.target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined).on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  static async start(target: number): Promise<SwitchProxy> {
    const p = new SwitchProxy(target);
    proxies.push(p);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    return p;
  }

  get address(): string {
    const a = this.server.address();
    return `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  switchTo(target: number): void {
    this.target = target;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('a standby answering the CLI', () => {
  test('says it is a standby and names the leader, on stderr, exit 3, for every command that needs the leader', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address]);
    await waitFor('the node streams through ctl-a', () =>
      a.controller.core.connectedNodes().some((n) => n.streamingPairs.includes('USD_HKD')),
    );
    const commands = [
      ['node', 'status', '--all'],
      ['node', 'status', '--node', 'edge-1'],
      ['node', 'shutdown', '--all'],
      ['controller', 'streams'],
      ['--json', 'controller', 'streams'],
      ['controller', 'prices'],
      ['controller', 'nodes'],
      ['controller', 'kick', '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f'],
      ['watch'],
      ['controller', 'nodes', '-w', '--interval', '0.1'],
    ];
    for (const args of commands) {
      const r = await finished(cli(['--controller', b.address, '--timeout', '5', ...args]));
      const what = `${args.join(' ')}: ${r.err}`;
      expect([what, r.code]).toEqual([what, 3]);
      expect(r.err).toContain('this controller is a standby; the leader is ctl-a');
      expect(r.err).not.toContain('no nodes connected');
      expect(r.out).toBe('');
    }
    // The standby's own node streams are not touched: the node still streams through ctl-a.
    expect(a.controller.core.connectedNodes()).toHaveLength(1);
  });

  test('still answers controller version (it needs no leader)', async () => {
    const { b } = await leaderAndStandby();
    const r = await finished(cli(['--controller', b.address, 'controller', 'version']));
    expect(r.code).toBe(0);
    expect(r.out.trim()).not.toBe('');
  });

  test('given both addresses, standby first, a command goes past the standby to the leader', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address]);
    await waitFor('the node streams through ctl-a', () =>
      a.controller.core.connectedNodes().some((n) => n.streamingPairs.includes('USD_HKD')),
    );
    const r = await finished(
      cli(['--controller', `${b.address},${a.address}`, '--json', 'controller', 'streams']),
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { currencyPair: string; nodeUuids: string[] }[];
    expect(doc.map((p) => [p.currencyPair, p.nodeUuids.length])).toEqual([['USD_HKD', 1]]);
    const status = await finished(
      cli(['--controller', `${b.address},${a.address}`, 'node', 'status', '--all']),
    );
    expect(status.code).toBe(0);
    expect(status.err).not.toContain('standby');
  });
});

describe('watch across a handover', () => {
  test('watch follows a graceful stop of the leader to the standby that takes over (both addresses given)', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address, b.address]);
    const w = cli(['--controller', `${a.address},${b.address}`, '--json', 'watch']);
    await waitFor('three prices through ctl-a', () => jsonLines(w.out()).length >= 3);
    await a.controller.stop();
    await waitFor('the watch reconnects to ctl-b', () =>
      w.err().includes(`watching again via ${b.address}`),
    );
    const before = jsonLines(w.out()).length;
    await waitFor('three more prices through ctl-b', () => jsonLines(w.out()).length >= before + 3);
    const err = w.err();
    expect(err).toContain(
      `controller handover: reconnecting… (the controller at ${a.address} is stopping (shutdown))`,
    );
    expect(err.indexOf('controller handover: reconnecting')).toBeLessThan(
      err.indexOf('watching again via'),
    );
    expect(b.controller.health.status()).toBe(HealthStatus.SERVING);
    w.stop();
    expect(await w.code).toBe(0);
  });

  test('a graceful stop still ends the watches with shutdown, the cue a following standby takes over on', async () => {
    const store = new MemoryLeaseStore();
    const a = await controller(store, 'ctl-a');
    await waitFor('ctl-a leads', () => a.controller.health.status() === HealthStatus.SERVING);
    // Without the cue ctl-b would try the Lease again only 5 s later.
    const b = await controller(store, 'ctl-b', { follow: a.address, retryPeriodMs: 5000 });
    const watches = () =>
      a.metric('currency_controller_commands_total', {
        command: 'ControllerWatchPricesV2Req',
        outcome: 'ok',
      });
    await waitFor('ctl-b follows ctl-a', async () => ((await watches()) ?? 0) >= 1);
    const w = cli(['--controller', `${a.address},${b.address}`, 'watch']);
    await waitFor('the watch started', () => w.err().includes('watching all pairs'));
    const stoppedAt = Date.now();
    await a.controller.stop();
    await waitFor('ctl-b leads', () => b.controller.health.status() === HealthStatus.SERVING, {
      timeoutMs: 3000,
    });
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    await waitFor('the watch reconnects to ctl-b', () =>
      w.err().includes(`watching again via ${b.address}`),
    );
    expect(w.err()).toContain('is stopping (shutdown)');
    expect(w.err()).not.toContain('this controller is a standby');
  });

  test('watch through one address (a Service) follows the leader when the backend switches', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address, b.address]);
    const proxy = await SwitchProxy.start(a.controller.grpcPort);
    const w = cli(['--controller', proxy.address, '--json', 'watch', '--pair', 'USD_HKD']);
    await waitFor('three prices through ctl-a', () => jsonLines(w.out()).length >= 3);
    await a.controller.stop();
    proxy.switchTo(b.controller.grpcPort);
    await waitFor('the watch reconnects', () =>
      w.err().includes(`watching again via ${proxy.address}`),
    );
    const before = jsonLines(w.out()).length;
    await waitFor('three more prices through ctl-b', () => jsonLines(w.out()).length >= before + 3);
    expect(w.err()).toMatch(/controller handover: reconnecting/);
    w.stop();
    expect(await w.code).toBe(0);
  });

  test('a leader that loses its Lease tells its watchers, who go to the new leader', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address, b.address]);
    const w = cli(['--controller', `${a.address},${b.address}`, '--json', 'watch']);
    await waitFor('three prices through ctl-a', () => jsonLines(w.out()).length >= 3);
    a.api.failWith = 'connect ECONNREFUSED 127.0.0.1:6443';
    await waitFor(
      'the watch reconnects to ctl-b',
      () => w.err().includes(`watching again via ${b.address}`),
      { timeoutMs: 15_000 },
    );
    expect(w.err()).toContain('this controller is a standby');
    const before = jsonLines(w.out()).length;
    await waitFor('three more prices through ctl-b', () => jsonLines(w.out()).length >= before + 3);
    w.stop();
    expect(await w.code).toBe(0);
  });

  test('controller nodes -w follows the handover too', async () => {
    const { a, b } = await leaderAndStandby();
    await node([a.address, b.address]);
    await waitFor('the node on ctl-a', () => a.controller.core.connectedNodes().length === 1);
    const w = cli([
      '--controller',
      `${a.address},${b.address}`,
      '--json',
      'controller',
      'nodes',
      '-w',
      '--interval',
      '0.1',
    ]);
    await waitFor('the first listing', () => w.out().includes('edge-1'));
    const before = w.out().length;
    await a.controller.stop();
    await waitFor('the poll reconnects to ctl-b', () =>
      w.err().includes(`watching again via ${b.address}`),
    );
    expect(w.err()).toMatch(/controller handover: reconnecting/);
    // The node reconnected to ctl-b: a listing from it (its connection time changed).
    await waitFor(
      'a listing from ctl-b',
      () => {
        const lines = w
          .out()
          .slice(before)
          .split('\n')
          .filter((l) => l !== '');
        return lines.length > 0 && lines[lines.length - 1]!.includes('edge-1');
      },
      { timeoutMs: 15_000 },
    );
    expect(b.controller.core.connectedNodes()).toHaveLength(1);
    w.stop();
    expect(await w.code).toBe(0);
  });

  test('no leader within --reconnect-timeout: the watch gives up with exit 3', async () => {
    const solo = await startTestController();
    running.push(solo);
    const w = cli(['--controller', solo.address, '--reconnect-timeout', '1', 'watch']);
    await waitFor('the watch started', () => w.err().includes('watching all pairs'));
    await solo.controller.stop();
    const started = Date.now();
    const r = await finished(w);
    expect(r.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(6000);
    expect(r.err).toMatch(/controller handover: reconnecting/);
    expect(r.err).toMatch(/gave up/);
  });

  test('Ctrl-C while reconnecting still ends the watch with exit 0', async () => {
    const solo = await startTestController();
    running.push(solo);
    const w = cli(['--controller', solo.address, 'watch']);
    await waitFor('the watch started', () => w.err().includes('watching all pairs'));
    await solo.controller.stop();
    await waitFor('reconnecting', () => w.err().includes('controller handover: reconnecting'));
    w.stop();
    expect(await w.code).toBe(0);
  });
});

describe('/readyz', () => {
  const readyz = async (c: Ctl) => {
    const r = await fetch(`http://127.0.0.1:${c.controller.httpPort}/readyz`);
    return { status: r.status, body: await r.text() };
  };

  test('the leader is ready; a standby says it is one and names the leader', async () => {
    const { a, b } = await leaderAndStandby();
    expect(await readyz(a)).toEqual({ status: 200, body: 'ready\n' });
    expect(await readyz(b)).toEqual({
      status: 503,
      body: 'not ready: standby: the leader is ctl-a\n',
    });
  });

  test('a standby that cannot reach the Kubernetes API says so, with the cause', async () => {
    const c = await controller(new MemoryLeaseStore(), 'ctl-c', {
      failWith: 'connect ECONNREFUSED 127.0.0.1:6443',
    });
    const r = await waitFor('a failed round', async () => {
      const x = await readyz(c);
      return x.body.includes('ECONNREFUSED') ? x : undefined;
    });
    expect(r).toEqual({
      status: 503,
      body: 'not ready: standby: cannot reach the Kubernetes API: connect ECONNREFUSED 127.0.0.1:6443\n',
    });
  });
});
