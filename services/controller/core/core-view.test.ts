/**
 * CoreView (core-view.ts): what ControllerCore answers the CLI side, driven on the core
 * itself with fake streams and the fake scheduler.
 */
import { type Gauge, Registry } from 'prom-client';
import type {
  StreamFromCli,
  StreamFromNode,
  StreamToCli,
  StreamToNode,
} from '../../gen/protobuf/currency_nodes';
import { pack } from '../../shared/any';
import { silentLogger } from '../../shared/logger';
import { seededRandom } from '../../shared/scheduler';
import { STANDBY_MESSAGE_PREFIX } from '../../shared/wire';
import { FakeCall } from '../../../tests/support/fake-call';
import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { loadControllerConfig } from '../config';
import { createControllerMetrics } from '../metrics';
import { ControllerCore } from './core';
import type { CoreView } from './core-view';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

function setup() {
  const scheduler = fakeScheduler();
  const registry = new Registry();
  const core = new ControllerCore({
    scheduler,
    random: seededRandom(7),
    logger: silentLogger(),
    metrics: createControllerMetrics(registry, { defaultMetrics: false }),
    appVersion: 'test',
    streamsPerPair: 1,
    newId: () => 'id',
    limits: loadControllerConfig({}).limits,
  });
  const view: CoreView = core;
  const clis = registry.getSingleMetric('currency_controller_connected_clis') as Gauge;
  const gauge = async () => (await clis.get()).values[0]?.value;
  const node = (uuid: string, pairs: string[]) => {
    const call = new FakeCall<StreamFromNode, StreamToNode>('ipv4:127.0.0.1:40001');
    core.attachNode(call.asCall());
    call.receive({
      nodeUuid: uuid,
      response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }),
      traceContext: {},
    });
    return call;
  };
  return { core, view, scheduler, clis, gauge, node };
}

describe('the core as the CLI side sees it', () => {
  test('standbyReason: none while leading; names the leader as a standby; none while stopping', () => {
    const { core, view } = setup();
    expect(view.standbyReason()).toBeUndefined();
    core.setLeading(false, 'controller-b');
    expect(view.standbyReason()).toBe(`${STANDBY_MESSAGE_PREFIX}; the leader is controller-b`);
    // A stopping controller answers as before until its CLI streams end with `shutdown`.
    core.closeNodes();
    expect(view.standbyReason()).toBeUndefined();
  });

  test("viewOf (what connectedNodes lists): a registered node's peer, pairs and when it came", () => {
    const { core, scheduler, node } = setup();
    node(A, ['EUR_USD', 'GBP_USD']);
    const [v] = core.connectedNodes();
    expect(v).toMatchObject({
      uuid: A,
      peer: 'ipv4:127.0.0.1:40001',
      connectedAtMs: scheduler.now(),
      knownPairs: ['EUR_USD', 'GBP_USD'],
      streamingPairs: ['EUR_USD', 'GBP_USD'],
    });
  });

  test('kick: true for a registered node, whose stream ends; false for a UUID no node holds', () => {
    const { view, node } = setup();
    const call = node(A, ['EUR_USD']);
    expect(view.kick('0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31')).toBe(false);
    expect(view.kick(A)).toBe(true);
    expect(call.status).toBeDefined();
    expect(view.kick(A)).toBe(false);
  });

  test('clisChanged: the CLI streams gauge is set to the streams open', async () => {
    const { core, view, clis, gauge } = setup();
    core.attachCli(new FakeCall<StreamFromCli, StreamToCli>().asCall());
    expect(core.openStreamCount().clis).toBe(1);
    clis.set(7); // anything but the truth
    view.clisChanged();
    expect(await gauge()).toBe(1);
  });
});
