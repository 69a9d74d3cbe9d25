/** The leak check used in teardown can fail: it sees a timer or a server the project's code left open. */
import { Registry } from 'prom-client';
import { startObservabilityServer } from '../../services/shared/http-server';
import { systemScheduler } from '../../services/shared/scheduler';
import { LeakWatch } from '../support/leaks';

test('a timer the project code leaves running is reported as a leak, and not once it is cleared', async () => {
  const watch = new LeakWatch().start();
  const t = systemScheduler.setTimeout(() => {}, 10_000);
  await expect(watch.expectNoLeaks(200)).rejects.toThrow(/Timeout \(.*services\/shared\/scheduler/);
  systemScheduler.clearTimeout(t);
  const again = new LeakWatch().start();
  await again.expectNoLeaks(200);
});

test('a server the project code leaves listening is reported as a leak', async () => {
  const watch = new LeakWatch().start();
  const srv = await startObservabilityServer(
    { host: '127.0.0.1', port: 0 },
    new Registry(),
    () => true,
  );
  await expect(watch.expectNoLeaks(200)).rejects.toThrow(/TCPSERVERWRAP/);
  const again = new LeakWatch().start();
  await srv.close();
  await again.expectNoLeaks(1000);
});
