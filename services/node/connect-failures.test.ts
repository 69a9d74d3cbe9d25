import * as grpc from '@grpc/grpc-js';
import { capturingLogger } from '../../tests/support/log-capture';
import { ConnectFailureLog, connectFailureCause } from './connect-failures';

test('causes are named from what grpc-js reports', () => {
  const u = grpc.status.UNAVAILABLE;
  const cases: [string, RegExp][] = [
    ['No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1', /refused/],
    ['Name resolution failed for target dns:nohost:5160', /name not resolved/],
    [
      'No connection established. Last error: Error: 80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number',
      /TLS mismatch/,
    ],
    ['No connection established. Last error: Error: self-signed certificate', /not trusted/],
    [
      'No connection established. Last error: Error: unable to verify the first certificate',
      /not trusted/,
    ],
    ['No connection established. Last error: Error: connect ETIMEDOUT', /deadline/],
    ['Connection dropped', /reset/],
    [
      'No connection established. Last error: Failed to connect (2026-12-01T02:06:04.281Z).',
      /plaintext against a TLS controller/,
    ],
  ];
  for (const [details, cause] of cases) expect(connectFailureCause(u, details)).toMatch(cause);
  expect(connectFailureCause(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded')).toMatch(
    /deadline/,
  );
  expect(connectFailureCause(grpc.status.RESOURCE_EXHAUSTED, 'too many nodes')).toBe(
    'RESOURCE_EXHAUSTED: too many nodes',
  );
});

test('rate limit: the first failure, then at most one line per window, counting the rest', () => {
  let now = 0;
  const { logger: log, lines } = capturingLogger<{ msg: string; suppressed?: number }>('info', {
    service: 't',
  });
  const f = new ConnectFailureLog(log, () => now, 30_000);
  for (; now < 95_000; now += 1000) f.failed({ cause: 'connection refused' });
  expect(lines.map((l) => l.suppressed)).toEqual([undefined, 29, 29, 29]);
  f.reset();
  f.failed({ cause: 'connection refused' });
  expect(lines).toHaveLength(5);
});
