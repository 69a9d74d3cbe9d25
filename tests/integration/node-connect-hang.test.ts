/**
 * A dial whose TCP connect hangs (SYNs dropped: a stale NAT rule, a dead pod's IP behind a
 * Service) is given up after NODE_CONNECT_TIMEOUT_MS and dialled again. grpc-js puts no
 * bound on a connect, so before this a node waited for the kernel to give up (10-20 s or
 * more here, 73 s in a Kubernetes cluster), whatever NODE_RECONNECT_MAX_MS said.
 */
import { type Socket, createServer } from 'node:net';
import { Registry } from 'prom-client';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { FakeController } from '../support/fake-controller';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { SynBlackhole } from '../support/syn-blackhole';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(60_000);

let leaks: LeakWatch;
let node: RunningNode | undefined;
let lines: { level: string; msg: string; cause?: string }[];
const cleanups: (() => Promise<void> | void)[] = [];

function config(ports: number[], over: Partial<NodeConfig> = {}): NodeConfig {
  return testNodeConfig({
    controllerAddrs: ports.flatMap(loopback),
    name: 'hang-test',
    logLevel: 'info',
    reconnectInitialMs: 20,
    reconnectMaxMs: 50,
    headerWaitMs: 100,
    connectTimeoutMs: 1000,
    ...over,
  });
}

async function start(
  ports: number[],
  random?: () => number,
  registry = new Registry(),
): Promise<RunningNode> {
  const { logger } = capturingLogger('info', { into: lines });
  node = await startNode(config(ports), {
    logger,
    registry,
    defaultMetrics: false,
    serveHttp: false,
    ...(random && { random }),
  });
  return node;
}

const announced = (c: FakeController) => c.frames.some((f) => f.response?.typeUrl !== undefined);

beforeAll(() => {
  leaks = new LeakWatch().start();
});

beforeEach(() => {
  lines = [];
});

afterEach(async () => {
  await node?.stop();
  node = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('a hung connect is given up and the next controller in the list is dialled', async () => {
  const hole = await SynBlackhole.start();
  cleanups.push(() => hole.stop());
  const ctl = await FakeController.start();
  cleanups.push(() => ctl.stop());
  // random() = 0 picks the first address, the one that hangs.
  await start([hole.port, ctl.port], () => 0);
  // Before the bound: only once the kernel gave the first connect up, 10-20 s or more.
  await waitFor('the node to announce itself to the reachable controller', () => announced(ctl), {
    timeoutMs: 8000,
  });
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'warn',
      cause: expect.stringMatching(/no connection within 1000 ms/),
    }),
  );
});

test('a node dials a hung address again every NODE_CONNECT_TIMEOUT_MS, and gets through once a controller listens there', async () => {
  const hole = await SynBlackhole.start();
  cleanups.push(() => hole.stop());
  const registry = new Registry();
  await start([hole.port], undefined, registry);
  const attempts = async () =>
    (await registry.getSingleMetric('currency_node_reconnect_attempts_total')?.get())?.values[0]
      ?.value ?? 0;
  // Before the bound, the first dial waited for the kernel to give up its connect (SYNs
  // retried for 10-20 s or more, by kernel and settings) and made no other attempt.
  await waitFor('three more dials to the hung address', async () => (await attempts()) >= 3, {
    timeoutMs: 8000,
  });
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'warn',
      cause: expect.stringMatching(/no connection within/),
    }),
  );
  await hole.stop();
  const ctl = await FakeController.start(hole.port);
  cleanups.push(() => ctl.stop());
  await waitFor('the node to announce itself', () => announced(ctl), { timeoutMs: 8000 });
});

test('a connection that opens but never speaks HTTP/2 is given up the same way', async () => {
  // E.g. a frozen controller whose kernel still completes handshakes, or a wrong port.
  const held = new Set<Socket>();
  const silent = createServer((s) => {
    held.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });
  const ctl = await FakeController.start();
  cleanups.push(() => ctl.stop());
  const port = (silent.address() as { port: number }).port;
  await start([port, ctl.port], () => 0);
  await waitFor('the node to announce itself to the answering controller', () => announced(ctl), {
    timeoutMs: 8000,
  });
  expect(held.size).toBeGreaterThan(0);
});
