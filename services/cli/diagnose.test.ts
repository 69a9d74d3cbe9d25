import { EventEmitter } from 'node:events';
import * as dns from 'node:dns';
import net from 'node:net';
import { systemScheduler } from '../shared/scheduler';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { diagnoseUnreachable } from './diagnose';

afterEach(() => jest.restoreAllMocks());

test('a name that does not resolve is named, with the flag and variable to fix', async () => {
  jest
    .spyOn(dns.promises, 'lookup')
    .mockRejectedValue(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }));
  const why = await diagnoseUnreachable('ctl.nowhere:5160', {
    tls: false,
    timeoutMs: 5000,
    scheduler: systemScheduler,
  });
  expect(why).toBe(
    'the name "ctl.nowhere" does not resolve (ENOTFOUND); check --controller or CLI_CONTROLLER_ADDR',
  );
});

test('a connect that gets no answer is a deadline, with --timeout in the hint', async () => {
  jest.spyOn(dns.promises, 'lookup').mockResolvedValue({ address: '192.0.2.1', family: 4 });
  const silent = Object.assign(new EventEmitter(), { destroy: jest.fn() });
  jest.spyOn(net, 'connect').mockReturnValue(silent as unknown as net.Socket);
  const scheduler = fakeScheduler();
  const probing = diagnoseUnreachable('ctl:5160', {
    tls: false,
    timeoutMs: 2500,
    budgetMs: 20,
    scheduler,
  });
  // The name is looked up first; the connect's budget runs on the scheduler.
  await new Promise((r) => setImmediate(r));
  scheduler.advance(19);
  expect(silent.destroy).not.toHaveBeenCalled();
  scheduler.advance(1);
  const why = await probing;
  expect(why).toContain('no answer within the deadline (--timeout 2.5 s)');
  expect(why).toContain('CLI_CONTROLLER_ADDR');
  expect(silent.destroy).toHaveBeenCalled();
});

test('an IPv6 address is split at its last colon', async () => {
  const lookup = jest
    .spyOn(dns.promises, 'lookup')
    .mockRejectedValue(Object.assign(new Error('x'), { code: 'EAI_AGAIN' }));
  await diagnoseUnreachable('[::1]:5160', {
    tls: false,
    timeoutMs: 1000,
    scheduler: systemScheduler,
  });
  expect(lookup).toHaveBeenCalledWith('::1');
});
