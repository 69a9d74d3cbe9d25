/**
 * The core as a standby (leader election), towards CLIs: it answers `controller version`
 * and refuses every command that needs the leader with UNAVAILABLE naming the leader; a
 * leader that stops leading tells its watches the same way; one that stops gracefully
 * leaves its watches to end with `shutdown` (the cue a following standby takes over on).
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { StreamFromCli, StreamToCli } from '../../gen/protobuf/currency_nodes';
import type { MessageName, MessageOf } from '../../shared/any';
import { silentLogger } from '../../shared/logger';
import { seededRandom } from '../../shared/scheduler';
import { STANDBY_MESSAGE_PREFIX } from '../../shared/wire';
import { FakeCall, cliReplies, sendCliCommand } from '../../../tests/support/fake-call';
import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { loadControllerConfig } from '../config';
import { ControllerCore } from './core';
import { createControllerMetrics } from '../metrics';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

function setup(leading: boolean) {
  const core = new ControllerCore({
    scheduler: fakeScheduler(),
    random: seededRandom(7),
    logger: silentLogger(),
    metrics: createControllerMetrics(new Registry(), { defaultMetrics: false }),
    appVersion: 'test',
    streamsPerPair: 1,
    newId: randomUUID,
    limits: loadControllerConfig({}).limits,
    leading,
  });
  const call = new FakeCall<StreamFromCli, StreamToCli>();
  core.attachCli(call.asCall());
  const send = <N extends MessageName>(streamId: string, name: N, m: MessageOf<N>) =>
    sendCliCommand(call, streamId, name, m);
  const replies = (streamId: string) => cliReplies(call, streamId);
  return { core, call, send, replies };
}

const refusal = (leader: string) => ({
  name: 'CliErrorV1Notify',
  message: {
    code: grpc.status.UNAVAILABLE,
    message: `${STANDBY_MESSAGE_PREFIX}; the leader is ${leader}`,
  },
});

test('a standby refuses every command that needs the leader, naming the leader; it answers version', () => {
  const t = setup(false);
  t.core.setLeading(false, 'ctl-a');
  t.send('1', 'ControllerListNodesV1Req', {});
  t.send('2', 'ControllerStreamsV1Req', {});
  t.send('3', 'ControllerPricesV1Req', {});
  t.send('4', 'ControllerKickNodesV1Req', { nodeUuids: [UUID] });
  t.send('5', 'ControllerWatchPricesV2Req', { currencyPairs: [] });
  t.send('6', 'ControllerWatchPricesV1Req', { currencyPairs: [] });
  t.send('7', 'NodeStatusV1Req', {});
  t.send('8', 'NodeShutdownV1Req', {});
  for (const id of ['1', '2', '3', '4', '5', '6', '7', '8'])
    expect([id, t.replies(id)]).toEqual([id, [refusal('ctl-a')]]);
  t.send('9', 'ControllerAppVersionV1Req', {});
  expect(t.replies('9')).toEqual([
    { name: 'ControllerAppVersionV1Reply', message: { controllerAppVersion: 'test' } },
  ]);
  expect(t.call.status).toBeUndefined(); // the stream stays open
});

test('a standby that knows no leader yet says so', () => {
  const t = setup(false);
  t.send('1', 'ControllerStreamsV1Req', {});
  expect(t.replies('1')).toEqual([refusal('not known yet')]);
});

test('a leader that stops leading tells each of its watches; leading again, it answers again', () => {
  const t = setup(true);
  t.send('w', 'ControllerWatchPricesV2Req', { currencyPairs: [] });
  expect(t.replies('w').map((r) => r?.name)).toEqual(['ControllerWatchPricesV1Reply']);
  t.core.setLeading(false, 'ctl-b');
  expect(t.replies('w')[1]).toEqual(refusal('ctl-b'));
  // Its leadership back: new commands are answered again.
  t.core.setLeading(true, 'ctl-a');
  t.send('s', 'ControllerStreamsV1Req', {});
  expect(t.replies('s').map((r) => r?.name)).toEqual(['ControllerStreamsV1Reply']);
});

test('a leader stopping gracefully answers until its CLI streams end with shutdown', () => {
  const t = setup(true);
  t.send('w', 'ControllerWatchPricesV2Req', { currencyPairs: [] });
  t.core.closeNodes();
  t.core.setLeading(false, undefined); // the Lease released
  expect(t.replies('w').map((r) => r?.name)).toEqual(['ControllerWatchPricesV1Reply']);
  t.send('s', 'ControllerStreamsV1Req', {});
  expect(t.replies('s').map((r) => r?.name)).toEqual(['ControllerStreamsV1Reply']);
  t.core.closeClis();
  // A clean end (its trailer says `shutdown`), not a refusal on the watch.
  expect(t.call.status?.code).toBe(grpc.status.OK);
  expect(t.replies('w').map((r) => r?.name)).toEqual(['ControllerWatchPricesV1Reply']);
});
