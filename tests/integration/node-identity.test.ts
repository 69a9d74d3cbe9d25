/**
 * A node displaced by a newer stream with its UUID (our controller ends the old stream
 * with ABORTED and `x-currency-close-reason: replaced`) does not fight back: it logs an
 * error naming the conflict and waits (30 s plus jitter; shortened here through the
 * programmatic config) before reconnecting, so two nodes sharing a UUID settle.
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { pack } from '../../services/shared/any';
import { FakeController } from '../support/fake-controller';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

const DISPLACED_WAIT_MS = 1500;
const EMPTY_STATE = {
  command: pack('NodeStreamModifyStateV1Req', { streamStates: [] }),
  traceContext: {},
};

let leaks: LeakWatch;
let fake: FakeController;
let node: RunningNode | undefined;
let lines: Record<string, unknown>[];

function config(over: Partial<NodeConfig> = {}): NodeConfig {
  return testNodeConfig({
    controllerAddrs: loopback(fake.port),
    name: 'identity-test',
    logLevel: 'debug',
    displacedWaitMs: DISPLACED_WAIT_MS,
    displacedJitterMs: 0,
    headerWaitMs: 100,
    ...over,
  });
}

async function start(): Promise<RunningNode> {
  const { logger } = capturingLogger('debug', { into: lines });
  node = await startNode(config(), {
    logger,
    registry: new Registry(),
    defaultMetrics: false,
    serveHttp: false,
  });
  return node;
}

beforeAll(() => {
  leaks = new LeakWatch().start();
});

beforeEach(async () => {
  lines = [];
  fake = await FakeController.start(0, { acceptsPriceBatches: true });
});

afterEach(async () => {
  await node?.stop();
  node = undefined;
  await fake.stop();
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('a displaced node logs the conflict as an error and waits before reconnecting', async () => {
  const n = await start();
  const first = await waitFor('stream', () => fake.latestCall());
  fake.send(EMPTY_STATE); // the controller's first frame: registered
  await waitFor('registered', () => n.isConnected());
  const displacedAt = Date.now();
  fake.displace(first);
  await waitFor('disconnected', () => !n.isConnected());
  const err = await waitFor('the error line', () => lines.find((l) => l.level === 'error'));
  expect(err.msg).toMatch(/another process is using this node UUID/);
  expect(err.msg).toMatch(/own NODE_UUID/);
  expect(err.msg).toContain(n.uuid);
  expect(err.node_uuid).toBe(n.uuid);
  expect(err.retry_in_ms).toBe(DISPLACED_WAIT_MS);
  // It comes back by itself, but only after the wait (a kicked node is back in ~100 ms).
  await waitFor('reconnected', () => fake.calls.length === 2, { timeoutMs: 10_000 });
  expect(Date.now() - displacedAt).toBeGreaterThanOrEqual(DISPLACED_WAIT_MS - 20);
});

test('a stream ended for another reason is retried at once, not after the displaced wait', async () => {
  const n = await start();
  const first = await waitFor('stream', () => fake.latestCall());
  fake.send(EMPTY_STATE);
  await waitFor('registered', () => n.isConnected());
  const endedAt = Date.now();
  fake.endStream(first, {
    code: grpc.status.UNAVAILABLE,
    details: 'kicked',
    closeReason: 'kicked',
  });
  await waitFor('reconnected', () => fake.calls.length === 2, { timeoutMs: 5000 });
  expect(Date.now() - endedAt).toBeLessThan(DISPLACED_WAIT_MS);
  expect(lines.some((l) => l.level === 'error')).toBe(false);
});
