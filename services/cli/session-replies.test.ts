/** What the controller's answers and stream ends mean (session-replies.ts). */
import * as grpc from '@grpc/grpc-js';
import { pack, unpack } from '../shared/any';
import { CLOSE_REASON_METADATA_KEY, STANDBY_MESSAGE_PREFIX } from '../shared/wire';
import { describeUnexpected, endOf, standbyRefusal } from './session-replies';

const status = (code: grpc.status, details = '', reason?: string): grpc.StatusObject => {
  const metadata = new grpc.Metadata();
  if (reason) metadata.set(CLOSE_REASON_METADATA_KEY, reason);
  return { code, details, metadata };
};

test('how a stream ended: a handover, or not', () => {
  expect(endOf(status(grpc.status.UNAVAILABLE, 'x', 'shutdown'), 'a:1')).toEqual({
    why: 'the controller at a:1 is stopping (shutdown)',
    handover: true,
  });
  expect(endOf(status(grpc.status.OK), 'a:1').handover).toBe(true);
  expect(endOf(status(grpc.status.UNAVAILABLE, 'gone'), 'a:1')).toEqual({
    why: 'stream to the controller failed: gone',
    handover: true,
  });
  expect(endOf(status(grpc.status.INTERNAL, ''), 'a:1')).toEqual({
    why: 'stream to the controller failed: INTERNAL',
    handover: false,
  });
  const refused = endOf(status(grpc.status.UNAUTHENTICATED, 'no token'), 'a:1');
  expect(refused.handover).toBe(false);
  expect(refused.why).toContain('check CLI_TOKEN / CLI_TOKEN_FILE');
});

test("a standby's refusal is UNAVAILABLE for no node, its message naming the leader", () => {
  const message = `${STANDBY_MESSAGE_PREFIX} the leader is ctl-a`;
  const frame = {
    streamId: 's',
    response: pack('CliErrorV1Notify', { code: grpc.status.UNAVAILABLE, message }),
    traceContext: {},
  };
  const r = unpack(frame.response);
  expect(standbyRefusal(frame, r.ok ? r.value : undefined)).toBe(message);
  expect(standbyRefusal({ ...frame, nodeUuid: 'n' }, r.ok ? r.value : undefined)).toBeUndefined();
});

test('why a reply is not the one expected', () => {
  const frame = { streamId: 's', traceContext: {} };
  expect(describeUnexpected(frame, undefined)).toBe('undecodable reply of type (none)');
  expect(describeUnexpected(frame, { name: 'UnknownCommandV1Notify', message: {} })).toBe(
    'the controller does not know this command',
  );
  expect(
    describeUnexpected(frame, { name: 'CliErrorV1Notify', message: { code: 3, message: 'bad' } }),
  ).toBe('the controller rejected the command: bad');
});
