/** newCliSession (cli-session.ts): one CLI stream's state beside its link. */
import type { StreamFromCli, StreamToCli } from '../../../gen/protobuf/currency_nodes';
import { FakeCall } from '../../../../tests/support/fake-call';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { newCliSession } from './cli-session';
import { StreamLink } from '../links/stream-link';

function link() {
  const scheduler = fakeScheduler(1_000);
  const l = new StreamLink<StreamFromCli, StreamToCli>(
    new FakeCall<StreamFromCli, StreamToCli>().asCall(),
    { scheduler, maxQueuedMessages: 10 },
    { onFrame: () => {}, onClosed: () => {} },
  );
  return { l, scheduler };
}

describe('a new CLI session', () => {
  test('starts its slow-watcher clock when its stream opened, not when it first watches', () => {
    const { l, scheduler } = link();
    scheduler.advance(5_000);
    const s = newCliSession(l);
    expect(s.lastWatchWriteMs).toBe(1_000);
    expect(s.link).toBe(l);
  });

  test('has no watches and no batches waiting, each its own (sessions share nothing)', () => {
    const a = newCliSession(link().l);
    const b = newCliSession(link().l);
    expect(a.watches.size).toBe(0);
    expect(a.batches.size).toBe(0);
    a.watches.set('w', { pairs: null, batched: true });
    expect(b.watches.size).toBe(0);
  });
});
