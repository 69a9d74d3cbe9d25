/**
 * Keepalive negotiation (issue 13): a node pings fast only a controller that permitted it
 * in its response headers (`x-currency-keepalive-permit-ms`), and sends no client pings
 * at all to one that did not, as a stock grpc-go server (one ping per 5 minutes allowed)
 * requires. PINGs are counted on raw HTTP/2 servers; fast detection of a frozen
 * controller is shown through a proxy that stops all traffic without closing anything,
 * and with a controller process stopped by SIGSTOP. Only such a silent controller counts in
 * `currency_node_keepalive_timeouts_total`; one whose process dies (the kernel closes its
 * connections) does not, although grpc-js ends the stream with the same status.
 */
import * as http2 from 'node:http2';
import { Registry } from 'prom-client';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { pack } from '../../services/shared/any';
import { silentLogger } from '../../services/shared/logger';
import { KEEPALIVE_PERMIT_METADATA_KEY } from '../../services/shared/wire';
import { BlackholeProxy } from '../support/blackhole-proxy';
import { makeCertDir } from '../support/certs';
import { FakeController } from '../support/fake-controller';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { ProcessHarness } from '../support/process-harness';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

let leaks: LeakWatch;
const nodes: RunningNode[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

function config(port: number, over: Partial<NodeConfig> = {}): NodeConfig {
  return testNodeConfig({ controllerAddrs: loopback(port), name: 'keepalive-test', ...over });
}

async function start(port: number, over: Partial<NodeConfig> = {}): Promise<RunningNode> {
  const n = await startNode(config(port, over), {
    logger: silentLogger(),
    registry: new Registry(),
    defaultMetrics: false,
    serveHttp: false,
  });
  nodes.push(n);
  return n;
}

/**
 * An HTTP/2 server that answers every stream with gRPC response headers (with the
 * permission or without) and keeps it open, counting the PING frames it receives.
 */
async function pingCountingServer(permitMs: number | undefined) {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const counts = { pings: 0, streams: 0 };
  server.on('session', (s) => {
    sessions.add(s);
    s.on('ping', () => counts.pings++);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream) => {
    counts.streams++;
    stream.on('error', () => {});
    stream.resume(); // take what the node writes
    stream.respond({
      ':status': 200,
      'content-type': 'application/grpc',
      ...(permitMs !== undefined && { [KEEPALIVE_PERMIT_METADATA_KEY]: String(permitMs) }),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  cleanups.push(async () => {
    for (const s of sessions) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { port: typeof addr === 'object' && addr ? addr.port : 0, counts };
}

beforeAll(() => {
  leaks = new LeakWatch().start();
});

afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

async function counted(n: RunningNode, name: string): Promise<number> {
  const m = await n.registry.getSingleMetric(name)?.get();
  return m?.values.reduce((a, v) => a + v.value, 0) ?? 0;
}
const KEEPALIVE_TIMEOUTS = 'currency_node_keepalive_timeouts_total';

test('pings go only to a controller that permitted them: none at all to one that did not', async () => {
  const quiet = await pingCountingServer(undefined);
  const permitting = await pingCountingServer(1000);
  // The quiet one first, so it has been connected at least as long as the other.
  await start(quiet.port);
  await waitFor('quiet stream', () => quiet.counts.streams === 1);
  await start(permitting.port);
  // The first stream learned the permission and was replaced by a fast one at once.
  await waitFor('fast stream', () => permitting.counts.streams === 2);
  await waitFor('pings to the permitting server', () => permitting.counts.pings >= 3, {
    timeoutMs: 15_000,
  });
  expect(quiet.counts.pings).toBe(0);
  expect(quiet.counts.streams).toBe(1);
});

test('a frozen controller that permitted fast pings is detected within about three seconds', async () => {
  const fake = await FakeController.start(0, { keepalivePermitMs: 1000 });
  const proxy = await BlackholeProxy.start(fake.port);
  cleanups.push(() => fake.stop());
  cleanups.push(() => proxy.close());
  const n = await start(proxy.port);
  await waitFor('fast stream', () => fake.calls.length === 2);
  fake.send({
    command: pack('NodeStreamModifyStateV1Req', { streamStates: [] }),
    traceContext: {},
  });
  await waitFor('registered', () => n.isConnected());
  const cutAt = Date.now();
  const teardown = proxy.cut();
  cleanups.push(teardown);
  await waitFor('the node notices', () => !n.isConnected(), { timeoutMs: 10_000, intervalMs: 20 });
  const noticedMs = Date.now() - cutAt;
  expect(noticedMs).toBeLessThan(3500);
});

test('against our controller, which permits fast pings, a frozen controller is detected within about three seconds', async () => {
  const ctl = await startTestController();
  cleanups.push(() => ctl.controller.stop());
  const proxy = await BlackholeProxy.start(ctl.controller.grpcPort);
  cleanups.push(() => proxy.close());
  const n = await start(proxy.port);
  await waitFor('registered', () => n.isConnected());
  // Registered on the fast channel, not counted as a reconnect.
  const attempts = await n.registry
    .getSingleMetric('currency_node_reconnect_attempts_total')
    ?.get();
  expect(attempts?.values[0]?.value ?? 0).toBe(0);
  const cutAt = Date.now();
  cleanups.push(proxy.cut());
  await waitFor('the node notices', () => !n.isConnected(), { timeoutMs: 10_000, intervalMs: 20 });
  expect(Date.now() - cutAt).toBeLessThan(3500);
  expect(await counted(n, KEEPALIVE_TIMEOUTS)).toBe(1);
});

describe('currency_node_keepalive_timeouts_total, against a controller process', () => {
  async function registeredNode() {
    const h = await ProcessHarness.start();
    cleanups.push(() => h.close());
    const n = await start(h.grpcPort);
    await waitFor('registered', () => n.isConnected());
    return { h, n };
  }

  test('a frozen controller (SIGSTOP) raises it once, within about three seconds', async () => {
    const { h, n } = await registeredNode();
    const frozenAt = Date.now();
    h.controller.signal('SIGSTOP');
    await waitFor('the node notices', () => !n.isConnected(), {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const noticedMs = Date.now() - frozenAt;
    expect(await counted(n, KEEPALIVE_TIMEOUTS)).toBe(1);
    expect(noticedMs).toBeLessThan(3500);
    console.log(
      `SIGSTOPped controller: stream lost after ${noticedMs} ms, counted as a keepalive timeout`,
    );
  });

  test('a killed controller (its connection closed by the kernel) does not raise it', async () => {
    const { h, n } = await registeredNode();
    h.controller.signal('SIGKILL');
    await h.controller.exited;
    await waitFor('the node notices', () => !n.isConnected(), {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    // Reconnect attempts to the dead address fail; none of them is a keepalive timeout either.
    await waitFor(
      'reconnect attempts',
      async () => (await counted(n, 'currency_node_reconnect_attempts_total')) >= 2,
    );
    expect(await counted(n, KEEPALIVE_TIMEOUTS)).toBe(0);
  });
});

test('over TLS too: a connection cut silently counts as a keepalive timeout, one closed by the other side does not', async () => {
  const certs = makeCertDir();
  cleanups.push(() => certs.remove());
  const ca = certs.newCa('keepalive-ca');
  const server = ca.issue('controller');
  const ctl = await startTestController({
    security: { tls: { certFile: server.cert, keyFile: server.key }, credentialsReloadMs: 60_000 },
  });
  cleanups.push(() => ctl.controller.stop());
  const tls = { tls: { caFile: ca.cert, serverName: 'localhost' } };
  // Silent: the proxy stops passing bytes and closes nothing.
  const silent = await BlackholeProxy.start(ctl.controller.grpcPort);
  cleanups.push(() => silent.close());
  const a = await start(silent.port, tls);
  await waitFor('registered over TLS', () => a.isConnected());
  cleanups.push(silent.cut());
  await waitFor('the node notices', () => !a.isConnected(), { timeoutMs: 10_000, intervalMs: 20 });
  expect(await counted(a, KEEPALIVE_TIMEOUTS)).toBe(1);
  // Closed: the proxy ends both connections, as a dying controller's kernel would.
  const closing = await BlackholeProxy.start(ctl.controller.grpcPort);
  const b = await start(closing.port, tls);
  await waitFor('registered over TLS', () => b.isConnected());
  await closing.close();
  await waitFor('the node notices', () => !b.isConnected(), { timeoutMs: 10_000, intervalMs: 20 });
  expect(await counted(b, KEEPALIVE_TIMEOUTS)).toBe(0);
});
