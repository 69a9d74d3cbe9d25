/** Reaching a channel (session-channel.ts) on a fake channel and the fake scheduler. */
import * as grpc from '@grpc/grpc-js';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { channelReady } from './session-channel';

const S = grpc.connectivityState;

/** A channel whose state the test sets; records whether it was asked to connect. */
function fakeClient(states: grpc.connectivityState[]) {
  const asked: boolean[] = [];
  const watchers: ((err?: Error) => void)[] = [];
  const channel = {
    getConnectivityState: (tryToConnect: boolean) => (asked.push(tryToConnect), states[0]!),
    watchConnectivityState: (_s: grpc.connectivityState, _d: number, cb: (e?: Error) => void) =>
      watchers.push(cb),
  };
  const client = { getChannel: () => channel } as unknown as grpc.Client;
  const next = () => {
    states.shift();
    watchers.shift()!();
  };
  return { client, asked, next };
}

test('past the deadline the channel is not asked to connect (a dial nobody waits for)', async () => {
  const scheduler = fakeScheduler();
  const c = fakeClient([S.IDLE]);
  expect(await channelReady(c.client, scheduler.now(), false, scheduler)).toBe(false);
  expect(c.asked).toEqual([false]);
});

test('READY in time: true; a first failed attempt ends an impatient wait', async () => {
  const scheduler = fakeScheduler();
  const ok = fakeClient([S.IDLE, S.CONNECTING, S.READY]);
  const ready = channelReady(ok.client, scheduler.now() + 1000, false, scheduler);
  ok.next();
  ok.next();
  expect(await ready).toBe(true);
  expect(ok.asked[0]).toBe(true);
  const failing = fakeClient([S.CONNECTING, S.TRANSIENT_FAILURE]);
  const failed = channelReady(failing.client, scheduler.now() + 1000, false, scheduler);
  failing.next();
  expect(await failed).toBe(false);
});

test('an abort ends the wait at once', async () => {
  const scheduler = fakeScheduler();
  const c = fakeClient([S.CONNECTING]);
  const abort = new AbortController();
  const ready = channelReady(c.client, scheduler.now() + 1000, false, scheduler, abort.signal);
  abort.abort();
  expect(await ready).toBe(false);
});
