/**
 * Node names are for people: a real node in-process with a Unicode name (or one gRPC's
 * ASCII-only text headers cannot carry) connects to a real controller, and the name
 * reaches `currency-cli controller nodes` intact. A peer sending the plain ASCII header
 * (an older node, the Go interop node) still works.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { pack } from '../../services/shared/any';
import { NODE_NAME_METADATA_KEY, createNodeClient } from '../../services/shared/wire';
import { runInProcess } from '../support/cli-runner';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { capturingLogger } from '../support/log-capture';
import { waitFor } from '../support/wait';
import { testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

let leaks: LeakWatch;
let ctl: Awaited<ReturnType<typeof startTestController>>;
const nodes: RunningNode[] = [];
const closers: (() => void)[] = [];
let lines: Record<string, unknown>[];

beforeAll(() => {
  leaks = new LeakWatch().start();
});

beforeEach(async () => {
  lines = [];
  ctl = await startTestController();
});

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await ctl.controller.stop();
});

afterAll(async () => {
  await leaks.expectNoLeaks();
});

async function start(name: string): Promise<RunningNode> {
  const [host, port] = ctl.address.split(':');
  const config: NodeConfig = testNodeConfig({
    controllerAddrs: [{ host: host!, port: Number(port) }],
    name,
    logLevel: 'debug',
    headerWaitMs: 100,
  });
  const { logger } = capturingLogger('debug', { into: lines });
  const node = await startNode(config, {
    logger,
    registry: new Registry(),
    defaultMetrics: false,
    serveHttp: false,
  });
  nodes.push(node);
  return node;
}

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return runInProcess(['--controller', ctl.address, '--timeout', '5', ...args]);
}

async function listed(count: number): Promise<{ nodeUuid: string; name: string }[]> {
  return waitFor(
    `${count} node(s) in controller nodes`,
    async () => {
      const r = await cli(['--json', 'controller', 'nodes']);
      const list = JSON.parse(r.out) as { nodeUuid: string; name: string }[];
      return list.length === count ? list : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  );
}

test.each([
  ['Latin with a diacritic', 'Zürich-1'],
  ['CJK', '東京'],
  ['an emoji (outside the BMP)', 'edge-🚀'],
  ['surrounding spaces', '  spaced  '],
])('a node named with %s connects and shows under that name', async (_what, name) => {
  const node = await start(name);
  const [entry] = await listed(1);
  expect(entry).toMatchObject({ nodeUuid: node.uuid, name });
  const human = await cli(['controller', 'nodes']);
  expect(human.code).toBe(0);
  expect(human.out).toContain(name);
  expect(lines.filter((l) => l.msg === 'cannot read the TLS or token files')).toEqual([]);
});

test('a peer sending the plain ASCII header (an older node) keeps its name', async () => {
  const uuid = randomUUID();
  const client = createNodeClient(ctl.address, grpc.credentials.createInsecure(), {});
  const md = new grpc.Metadata();
  md.set(NODE_NAME_METADATA_KEY, 'legacy-1');
  const call = client.nodeCommandStream(md);
  call.on('data', () => {});
  call.on('error', () => {});
  closers.push(() => {
    call.cancel();
    client.close();
  });
  call.write({
    nodeUuid: uuid,
    response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: ['USD_HKD'] }),
    traceContext: {},
  });
  const [entry] = await listed(1);
  expect(entry).toMatchObject({ nodeUuid: uuid, name: 'legacy-1' });
});
