/**
 * The CLI side of the core on its own (cli-service.ts): a fake CoreView and a fake routing
 * in place of the node side, and the real assignment, price store, registry, fan-out and
 * observer it reads. What it answers itself, what it refuses, what it hands to the
 * routing, and how its streams come and go. (Through the whole core: core.test.ts,
 * standby.test.ts, list-nodes.test.ts.)
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { StreamFromCli } from '../../../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack } from '../../../shared/any';
import { silentLogger } from '../../../shared/logger';
import { seededRandom } from '../../../shared/scheduler';
import {
  FakeCall,
  type FakeCliCall,
  cliReplies,
  sendCliCommand,
} from '../../../../tests/support/fake-call';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { loadControllerConfig } from '../../config';
import { createControllerMetrics } from '../../metrics';
import type { CoreView } from '../core-view';
import { Assignment } from '../node-side/assignment';
import { PriceStore } from '../node-side/prices';
import { NodeRegistry } from '../node-side/registry';
import { Observer } from '../observer';
import type { CommandRouting } from '../routing/command-routing';
import { CliService } from './cli-service';
import { WatchFanout } from './fanout';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';
const CLI_UUID = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

function setup(opts: { maxCliStreams?: number } = {}) {
  const scheduler = fakeScheduler();
  const registry = new Registry();
  const metrics = createControllerMetrics(registry, { defaultMetrics: false });
  const limits = { ...loadControllerConfig({}).limits, ...opts };
  const assignment = new Assignment(1, seededRandom(7));
  const prices = new PriceStore(assignment.slots);
  const observer = new Observer(metrics, silentLogger(), assignment);
  const fanout = new WatchFanout({
    scheduler,
    maxQueuedMessages: limits.maxQueuedMessages,
    slowWatcherMs: limits.slowWatcherMs,
    onDropped: () => {},
  });
  /** What the fake core was asked, and what it answers. */
  const core = {
    standby: undefined as string | undefined,
    connected: new Set<string>(),
    kicked: [] as string[],
    clisChanged: 0,
  };
  const view: CoreView = {
    standbyReason: () => core.standby,
    kick: (uuid) => {
      if (!core.connected.has(uuid)) return false;
      core.kicked.push(uuid);
      return true;
    },
    viewOf: () => {
      throw new Error('not listed here (list-nodes.test.ts)');
    },
    clisChanged: () => void core.clisChanged++,
  };
  const routed: { name: MessageName; streamId: string }[] = [];
  const gone: unknown[] = [];
  const routing = {
    route: (c: { name: MessageName; frame: StreamFromCli }) =>
      void routed.push({ name: c.name, streamId: c.frame.streamId }),
    cliGone: (cli: unknown) => void gone.push(cli),
  } as unknown as CommandRouting;
  const service = new CliService({
    scheduler,
    logger: silentLogger(),
    appVersion: '1.2.3',
    newId: () => 'id',
    limits,
    core: view,
    routing,
    fanout,
    observer,
    registry: new NodeRegistry(limits.maxNodes),
    assignment,
    prices,
  });
  const cli = () => {
    const call: FakeCliCall = new FakeCall();
    service.attach(call.asCall());
    const send = <N extends MessageName>(streamId: string, name: N, m: MessageOf<N>) =>
      sendCliCommand(call, streamId, name, m, CLI_UUID);
    const replies = (streamId: string) => cliReplies(call, streamId);
    return { call, send, replies };
  };
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)?.get())?.values.find((v) =>
      Object.entries(labels).every(([k, x]) => v.labels[k] === x),
    )?.value;
  return { service, core, routed, gone, assignment, prices, cli, metric };
}

describe('answered by the controller', () => {
  test('controller version', () => {
    const t = setup();
    const c = t.cli();
    c.send('1', 'ControllerAppVersionV1Req', {});
    expect(c.replies('1')).toEqual([
      { name: 'ControllerAppVersionV1Reply', message: { controllerAppVersion: '1.2.3' } },
    ]);
  });

  test('controller streams and controller prices read the assignment and the price store', () => {
    const t = setup();
    t.assignment.addNode(A, ['USD_HKD', 'EUR_USD']);
    t.assignment.addNode(B, ['USD_HKD']);
    t.prices.offer({ pair: 'USD_HKD', price: 7.8, updatedAtMs: 1_700_000_000_000, nodeUuid: A });
    const c = t.cli();
    c.send('s', 'ControllerStreamsV1Req', {});
    c.send('p', 'ControllerPricesV1Req', {});
    expect(c.replies('s')).toEqual([
      {
        name: 'ControllerStreamsV1Reply',
        message: {
          pairs: [
            { currencyPair: 'EUR_USD', nodeUuids: [A], capableNodes: 1, desiredStreams: 1 },
            {
              currencyPair: 'USD_HKD',
              nodeUuids: t.assignment.streamersOf('USD_HKD'),
              capableNodes: 2,
              desiredStreams: 1,
            },
          ],
        },
      },
    ]);
    expect(c.replies('p')).toEqual([
      {
        name: 'ControllerPricesV1Reply',
        message: {
          prices: [
            {
              currencyPair: 'USD_HKD',
              price: 7.8,
              priceUpdatedAt: { seconds: 1_700_000_000, nanos: 0 },
              nodeUuid: A,
            },
          ],
        },
      },
    ]);
  });

  test('kick asks the core for each UUID once, in any case, and lists the ones it does not hold', () => {
    const t = setup();
    t.core.connected.add(A);
    const c = t.cli();
    c.send('k', 'ControllerKickNodesV1Req', { nodeUuids: [A.toUpperCase(), A, B, 'not-a-uuid'] });
    expect(t.core.kicked).toEqual([A]);
    expect(c.replies('k')).toEqual([
      {
        name: 'ControllerKickNodesV1Reply',
        message: { kickedNodeUuids: [A], unknownNodeUuids: [B, 'not-a-uuid'] },
      },
    ]);
  });

  test('a watch is answered with the pairs it covers: those asked, or every known pair', () => {
    const t = setup();
    t.assignment.addNode(A, ['USD_HKD', 'EUR_USD']);
    const c = t.cli();
    c.send('w1', 'ControllerWatchPricesV2Req', { currencyPairs: ['USD_HKD', 'USD_HKD'] });
    c.send('w2', 'ControllerWatchPricesV1Req', { currencyPairs: [] });
    expect(c.replies('w1')).toEqual([
      { name: 'ControllerWatchPricesV1Reply', message: { currencyPairs: ['USD_HKD'] } },
    ]);
    expect(c.replies('w2')).toEqual([
      { name: 'ControllerWatchPricesV1Reply', message: { currencyPairs: ['EUR_USD', 'USD_HKD'] } },
    ]);
  });
});

describe('handed to the routing, refused, or not understood', () => {
  test('a node command goes to the routing and is not answered here', () => {
    const t = setup();
    const c = t.cli();
    c.send('n', 'NodeStatusV1Req', {});
    expect(t.routed).toEqual([{ name: 'NodeStatusV1Req', streamId: 'n' }]);
    expect(c.replies('n')).toEqual([]);
  });

  test('a standby refuses what needs the leader with UNAVAILABLE and its reason; it answers version', () => {
    const t = setup();
    t.core.standby = 'standby: the leader is controller-b';
    const c = t.cli();
    c.send('s', 'ControllerStreamsV1Req', {});
    c.send('n', 'NodeStatusV1Req', {});
    c.send('v', 'ControllerAppVersionV1Req', {});
    const refusal = {
      name: 'CliErrorV1Notify',
      message: { code: grpc.status.UNAVAILABLE, message: 'standby: the leader is controller-b' },
    };
    expect(c.replies('s')).toEqual([refusal]);
    expect(c.replies('n')).toEqual([refusal]);
    expect(t.routed).toEqual([]);
    expect(c.replies('v')[0]?.name).toBe('ControllerAppVersionV1Reply');
  });

  test('a frame with a bad CLI UUID is answered INVALID_ARGUMENT and counted', async () => {
    const t = setup();
    const c = t.cli();
    c.call.receive({
      streamId: 'x',
      cliUuid: 'nope',
      nodeUuids: [],
      command: pack('ControllerAppVersionV1Req', {}),
      traceContext: {},
    });
    expect(c.replies('x')).toEqual([
      {
        name: 'CliErrorV1Notify',
        message: { code: grpc.status.INVALID_ARGUMENT, message: 'cli_uuid "nope" is not a UUID' },
      },
    ]);
    expect(await t.metric('currency_controller_malformed_frames_total', { peer: 'cli' })).toBe(1);
  });

  test('a message that is no CLI command (a node price) is answered with UnknownCommandV1Notify', async () => {
    const t = setup();
    const c = t.cli();
    const command = pack('NodePriceUpdateV1Notify', { currencyPair: 'USD_HKD', price: 7.8 });
    c.send('u', 'NodePriceUpdateV1Notify', { currencyPair: 'USD_HKD', price: 7.8 });
    expect(c.replies('u')).toEqual([{ name: 'UnknownCommandV1Notify', message: { command } }]);
    expect(t.routed).toEqual([]);
    expect(await t.metric('currency_controller_unknown_commands_total', { peer: 'cli' })).toBe(1);
  });
});

describe('CLI streams', () => {
  test('beyond CONTROLLER_MAX_CLI_STREAMS a stream is refused with RESOURCE_EXHAUSTED; one that goes makes room', async () => {
    const t = setup({ maxCliStreams: 2 });
    const a = t.cli();
    t.cli();
    const third = t.cli();
    expect(third.call.status?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(t.service.openCount()).toBe(2);
    expect(await t.metric('currency_controller_rejected_total', { reason: 'max_clis' })).toBe(1);
    a.call.peerEnds();
    expect(t.service.openCount()).toBe(1);
    expect(t.gone).toHaveLength(1); // the routing forgets its commands
    expect(t.cli().call.status).toBeUndefined();
    expect(t.core.clisChanged).toBe(4); // two opened, one went, one opened
  });

  test('closeAll ends every stream cleanly (the shutdown reason)', () => {
    const t = setup();
    const a = t.cli();
    const b = t.cli();
    t.service.closeAll();
    expect([a.call.status?.code, b.call.status?.code]).toEqual([grpc.status.OK, grpc.status.OK]);
    expect(t.service.openCount()).toBe(0);
  });

  test('standbyNow tells each open watch why and drops it; a stream with no watch is left alone', () => {
    const t = setup();
    t.assignment.addNode(A, ['USD_HKD']);
    const watching = t.cli();
    const idle = t.cli();
    watching.send('w', 'ControllerWatchPricesV2Req', { currencyPairs: [] });
    t.service.standbyNow('standby: the leader is controller-b');
    expect(watching.replies('w').at(-1)).toEqual({
      name: 'CliErrorV1Notify',
      message: { code: grpc.status.UNAVAILABLE, message: 'standby: the leader is controller-b' },
    });
    expect(idle.call.written).toEqual([]);
    expect([watching.call.status, idle.call.status]).toEqual([undefined, undefined]);
  });
});
