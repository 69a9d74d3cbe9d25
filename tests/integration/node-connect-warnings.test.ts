/**
 * A node that cannot reach its controller says why at `warn` (refused, TLS mismatch, an
 * untrusted certificate), rate-limited: before, all of these looked like silence at `info`.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { type CertDir, makeCertDir } from '../support/certs';
import { FakeController } from '../support/fake-controller';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

let leaks: LeakWatch;
let certs: CertDir;
let node: RunningNode | undefined;
let lines: { level: string; msg: string; cause?: string; suppressed?: number }[];
const cleanups: (() => Promise<void> | void)[] = [];

function config(port: number, over: Partial<NodeConfig> = {}): NodeConfig {
  return testNodeConfig({
    controllerAddrs: loopback(port),
    name: 'warn-test',
    logLevel: 'info',
    reconnectInitialMs: 20,
    reconnectMaxMs: 50,
    headerWaitMs: 100,
    ...over,
  });
}

async function start(port: number, over: Partial<NodeConfig> = {}): Promise<RunningNode> {
  const { logger } = capturingLogger('info', { into: lines });
  node = await startNode(config(port, over), {
    logger,
    registry: new Registry(),
    defaultMetrics: false,
    serveHttp: false,
  });
  return node;
}

const warnings = () => lines.filter((l) => l.level === 'warn');

/** A TLS gRPC server on loopback with a certificate from `ca` (serves nothing). */
async function tlsServer(ca: ReturnType<CertDir['newCa']>): Promise<number> {
  const leaf = ca.issue('controller');
  const server = new grpc.Server();
  const creds = grpc.ServerCredentials.createSsl(
    null,
    [{ private_key: readFileSync(leaf.key), cert_chain: readFileSync(leaf.cert) }],
    false,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  return port;
}

beforeAll(() => {
  leaks = new LeakWatch().start();
  certs = makeCertDir();
});

beforeEach(() => {
  lines = [];
});

afterEach(async () => {
  await node?.stop();
  node = undefined;
  for (const c of cleanups.splice(0)) await c();
});

afterAll(async () => {
  certs.remove();
  await leaks.expectNoLeaks();
});

test('a refused port: one warn line naming the cause, then silence within the window', async () => {
  const port = await freePort();
  await start(port);
  const first = await waitFor('a warning', () => warnings()[0]);
  expect(first.msg).toBe('cannot reach the controller: connection refused');
  // Many more attempts follow (20-50 ms apart), but no more lines within 30 s.
  await waitFor('attempts continuing', async () => {
    const m = await node!.registry.getSingleMetric('currency_node_reconnect_attempts_total')?.get();
    return (m?.values[0]?.value ?? 0) >= 10;
  });
  expect(warnings()).toHaveLength(1);
});

test('TLS against a plaintext controller: a TLS mismatch', async () => {
  const fake = await FakeController.start();
  cleanups.push(() => fake.stop());
  const ca = certs.newCa('ca-plain');
  await start(fake.port, { tls: { caFile: ca.cert, serverName: 'localhost' } });
  const w = await waitFor('a warning', () => warnings()[0]);
  expect(w.msg).toMatch(/^cannot reach the controller: TLS mismatch.*TLS against a plaintext/);
});

test('plaintext against a TLS controller: a TLS mismatch', async () => {
  const port = await tlsServer(certs.newCa('ca-server'));
  await start(port);
  const w = await waitFor('a warning', () => warnings()[0]);
  expect(w.msg).toMatch(/^cannot reach the controller: TLS mismatch.*plaintext against a TLS/);
});

test('a controller certificate from another CA: not trusted', async () => {
  const port = await tlsServer(certs.newCa('ca-real'));
  const wrong = certs.newCa('ca-wrong');
  await start(port, { tls: { caFile: wrong.cert, serverName: 'localhost' } });
  const w = await waitFor('a warning', () => warnings()[0]);
  expect(w.msg).toMatch(
    /^cannot reach the controller: TLS: the controller certificate is not trusted/,
  );
});
