/**
 * An in-process CLI run leaves nothing of grpc-js behind once it has returned, however it
 * ends, also against a controller that stopped under it: no channel left retrying the
 * stopped controller (its backoff timers and connection attempts would run on for the rest
 * of the process, and later leak checks would count them).
 */
import { runCli } from '../../services/cli/cli';
import type { CliIo } from '../../services/cli/io';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

function cli(args: string[]) {
  let err = '';
  const abort = new AbortController();
  const io: CliIo = { out: () => undefined, err: (t) => (err += t), signal: abort.signal };
  return { err: () => err, abort, code: runCli(args, io, {}) };
}

test('a watch that gives up reconnecting to its stopped controller closes every channel it made', async () => {
  const leaks = new LeakWatch().start();
  const solo = await startTestController();
  const w = cli(['--controller', solo.address, '--reconnect-timeout', '1', 'watch']);
  await waitFor('the watch started', () => w.err().includes('watching all pairs'));
  await solo.controller.stop();
  expect(await w.code).toBe(3);
  expect(w.err()).toMatch(/gave up/);
  await leaks.expectNoLeaks();
});

test('a watch interrupted while reconnecting closes every channel it made', async () => {
  const leaks = new LeakWatch().start();
  const solo = await startTestController();
  const w = cli(['--controller', solo.address, 'watch']);
  await waitFor('the watch started', () => w.err().includes('watching all pairs'));
  await solo.controller.stop();
  await waitFor('reconnecting', () => w.err().includes('controller handover: reconnecting'));
  w.abort.abort();
  expect(await w.code).toBe(0);
  await leaks.expectNoLeaks();
});

test('a command to controllers that are gone (several addresses) closes every channel it made', async () => {
  const leaks = new LeakWatch().start();
  const a = await startTestController();
  const b = await startTestController();
  const addresses = `${a.address},${b.address}`;
  await a.controller.stop();
  await b.controller.stop();
  const r = cli(['--controller', addresses, '--timeout', '1', 'controller', 'version']);
  expect(await r.code).toBe(3);
  await leaks.expectNoLeaks();
});
