/**
 * NodeStreams (node-streams.ts) with the real registry, assignment and observer, fake
 * streams and the fake scheduler, and a recording host in place of the core: who may open
 * a node stream, what a registration hands the host, where price frames and replies go,
 * and what a departure hands the host. The whole core with the same streams:
 * core.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { StreamFromNode, StreamToNode } from '../../../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack } from '../../../shared/any';
import { silentLogger } from '../../../shared/logger';
import { seededRandom } from '../../../shared/scheduler';
import { CLOSE_REASON_METADATA_KEY } from '../../../shared/wire';
import { FakeCall } from '../../../../tests/support/fake-call';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { loadControllerConfig } from '../../config';
import { createControllerMetrics } from '../../metrics';
import { Observer } from '../observer';
import type { CommandRouting } from '../routing/command-routing';
import { Assignment } from './assignment';
import type { AssignmentChange } from './assignment-change';
import { NodeStreams } from './node-streams';
import type { PriceIntake } from './price-intake';
import { NodeRegistry } from './registry';
import type { Upkeep } from './upkeep';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

function setup(leading = true) {
  const scheduler = fakeScheduler();
  const assignment = new Assignment(1, seededRandom(1));
  const registry = new NodeRegistry(10);
  const metrics = createControllerMetrics(new Registry(), { defaultMetrics: false });
  const applied: AssignmentChange[] = [];
  const taken: { uuid?: string; pairs: string[] }[] = [];
  const gone: string[] = [];
  let counted = 0;
  const streams = new NodeStreams(
    {
      scheduler,
      logger: silentLogger(),
      limits: loadControllerConfig({}).limits,
      registry,
      assignment,
      observer: new Observer(metrics, silentLogger(), assignment),
      routing: {
        takeReply: () => false,
        nodeGone: (uuid: string) => gone.push(uuid),
      } as unknown as CommandRouting,
      intake: {
        take: (s: { uuid?: string }, updates: { currencyPair: string }[]) =>
          taken.push({ uuid: s.uuid, pairs: updates.map((u) => u.currencyPair) }),
      } as unknown as PriceIntake,
      upkeep: { mark: () => {} } as unknown as Upkeep,
    },
    {
      leading: () => leading,
      standbyDetails: () => 'a standby; the leader is ctl-0',
      apply: (change) => applied.push(change),
      countConnections: () => counted++,
    },
  );
  const node = (uuid = A) => {
    const call = new FakeCall<StreamFromNode, StreamToNode>('ipv4:127.0.0.1:40001');
    streams.attach(call.asCall());
    const send = <N extends MessageName>(name: N, m: MessageOf<N>) =>
      call.receive({ nodeUuid: uuid, fromUuid: '', response: pack(name, m), traceContext: {} });
    return { call, send };
  };
  return { assignment, registry, applied, taken, gone, node, counted: () => counted };
}

describe('node streams', () => {
  test('a standby refuses every node stream with not_leader, naming the leader', () => {
    const t = setup(false);
    const { call } = t.node();
    expect(call.status?.code).toBe(grpc.status.UNAVAILABLE);
    expect(call.status?.metadata?.get(CLOSE_REASON_METADATA_KEY)).toEqual(['not_leader']);
    expect(call.status?.details).toContain('the leader is ctl-0');
    expect(t.registry.openCount()).toBe(0);
  });

  test("a registration hands the host the assignment's change, with the node in it", () => {
    const t = setup();
    const { call, send } = t.node();
    send('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: ['BTC_USD', 'ETH_USD'] });
    expect(call.status).toBeUndefined();
    expect(t.assignment.streamingPairsOf(A)).toEqual(['BTC_USD', 'ETH_USD']);
    expect(t.applied).toHaveLength(1);
    expect([...t.applied[0]!.changedNodes]).toEqual([A]);
    expect(t.counted()).toBeGreaterThanOrEqual(2); // attached, then registered
  });

  test('single and batched price frames go to the price intake', () => {
    const t = setup();
    const { send } = t.node();
    send('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: ['BTC_USD', 'ETH_USD'] });
    send('NodePriceUpdateV1Notify', { currencyPair: 'BTC_USD', price: 1 });
    send('NodePriceUpdatesV1Notify', {
      updates: [
        { currencyPair: 'BTC_USD', price: 2 },
        { currencyPair: 'ETH_USD', price: 3 },
      ],
    });
    expect(t.taken).toEqual([
      { uuid: A, pairs: ['BTC_USD'] },
      { uuid: A, pairs: ['BTC_USD', 'ETH_USD'] },
    ]);
  });

  test('a node that leaves: its commands end (routing) and its pairs move (host)', () => {
    const t = setup();
    const { call, send } = t.node();
    send('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: ['BTC_USD'] });
    call.peerEnds();
    expect(t.gone).toEqual([A]);
    expect(t.applied.at(-1)!.reassignments).toEqual([
      { pair: 'BTC_USD', from: A, reason: 'node_left' },
    ]);
    expect(t.registry.openCount()).toBe(0);
  });
});
