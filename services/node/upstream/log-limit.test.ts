import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { capturingLogger } from '../../../tests/support/log-capture';
import { LOG_EVERY_MS, limitedLog } from './log-limit';

test('a key is written at most once per period, with the count of lines left out', () => {
  const clock = fakeScheduler();
  const { logger, lines } = capturingLogger('debug');
  const log = limitedLog(logger, clock.now, { upstream: 'websocket' });
  log('warn', 'fail', { n: 1 }, 'failed');
  log('warn', 'fail', { n: 2 }, 'failed');
  log('info', 'open', {}, 'connected');
  clock.advance(LOG_EVERY_MS - 1);
  log('warn', 'fail', { n: 3 }, 'failed');
  clock.advance(1);
  log('warn', 'fail', { n: 4 }, 'failed');
  expect(lines.map((l) => [l.msg, l.n, l.suppressed, l.upstream])).toEqual([
    ['failed', 1, 0, 'websocket'],
    ['connected', undefined, 0, 'websocket'],
    ['failed', 4, 2, 'websocket'],
  ]);
});
