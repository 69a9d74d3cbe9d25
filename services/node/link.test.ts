/** One stream of the node (link.ts): writes, closes, and how its end is read. */
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../shared/logger';
import { CLOSE_REASON_METADATA_KEY } from '../shared/wire';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { LiveLink, type NodeStream, isDisplaced, isStandbyRefusal } from './link';

function link() {
  const calls: string[] = [];
  const call = {
    write: () => (calls.push('write'), true),
    end: () => calls.push('end'),
    cancel: () => calls.push('cancel'),
    on: () => call,
    writableNeedDrain: false,
  } as unknown as NodeStream;
  const l = new LiveLink(
    'c:1',
    undefined,
    { call, close: () => calls.push('closeClient') },
    silentLogger(),
  );
  return { l, calls };
}

test('a closed link writes nothing more and closes its client', () => {
  const { l, calls } = link();
  l.write({ nodeUuid: 'n', traceContext: {} });
  l.close();
  l.write({ nodeUuid: 'n', traceContext: {} });
  expect(calls).toEqual(['write', 'cancel', 'closeClient']);
});

test('a graceful close half-closes, waits for the status (bounded), then closes', async () => {
  const scheduler = fakeScheduler();
  const seen = link();
  const closing = seen.l.closeGracefully(scheduler, 1000);
  seen.l.ended();
  await closing;
  expect(seen.calls).toEqual(['end', 'cancel', 'closeClient']);
  const silent = link();
  const waiting = silent.l.closeGracefully(scheduler, 1000);
  scheduler.advance(1000);
  await waiting;
  expect(silent.calls).toEqual(['end', 'cancel', 'closeClient']);
});

test('how a stream end is read: displaced, or refused by a standby', () => {
  const md = (reason: string) => {
    const m = new grpc.Metadata();
    m.set(CLOSE_REASON_METADATA_KEY, reason);
    return m;
  };
  expect(isDisplaced({ code: grpc.status.ABORTED, metadata: md('replaced') })).toBe(true);
  expect(isDisplaced({ code: grpc.status.ABORTED, details: 'replaced by a newer stream' })).toBe(
    true,
  );
  expect(isDisplaced({ code: grpc.status.UNAVAILABLE, details: 'gone' })).toBe(false);
  expect(isDisplaced(undefined)).toBe(false);
  expect(isStandbyRefusal({ code: grpc.status.UNAVAILABLE, metadata: md('not_leader') })).toBe(
    true,
  );
  expect(isStandbyRefusal({ code: grpc.status.UNAVAILABLE })).toBe(false);
});
