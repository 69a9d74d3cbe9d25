/**
 * The graceful stop's grace timer (shutdown-grace.ts) on the fake scheduler: streams still
 * open are cut exactly when CONTROLLER_SHUTDOWN_GRACE_MS has passed, not before.
 */
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { type ShutdownableServer, shutdownWithin } from './shutdown-grace';

function fakeServer() {
  let done: (() => void) | undefined;
  const s = {
    forced: 0,
    server: {
      tryShutdown: (cb: () => void) => void (done = cb),
      forceShutdown: () => void s.forced++,
    } satisfies ShutdownableServer,
    /** The last stream ends: grpc-js calls tryShutdown's callback. */
    streamsEnded: () => done?.(),
  };
  return s;
}

describe('the grace timer of a graceful stop', () => {
  test('forces the server exactly when the grace period has passed', async () => {
    const scheduler = fakeScheduler();
    const s = fakeServer();
    const warned: number[] = [];
    let result: boolean | undefined;
    const stopped = shutdownWithin(s.server, 5000, scheduler, () => warned.push(scheduler.now()));
    void stopped.then((forced) => (result = forced));
    const start = scheduler.now();
    scheduler.advance(4999);
    await Promise.resolve();
    expect(s.forced).toBe(0);
    expect(result).toBeUndefined();
    scheduler.advance(1);
    expect(s.forced).toBe(1);
    expect(warned).toEqual([start + 5000]);
    await expect(stopped).resolves.toBe(true);
  });

  test('streams that end in time: no force, and the timer is gone', async () => {
    const scheduler = fakeScheduler();
    const s = fakeServer();
    const stopped = shutdownWithin(s.server, 5000, scheduler, () => {
      throw new Error('not forced');
    });
    expect(scheduler.pending()).toBe(1);
    scheduler.advance(1000);
    s.streamsEnded();
    await expect(stopped).resolves.toBe(false);
    expect(scheduler.pending()).toBe(0);
    scheduler.advance(10_000);
    expect(s.forced).toBe(0);
  });
});
