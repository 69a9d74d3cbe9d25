import * as grpc from '@grpc/grpc-js';
import { KEEPALIVE_PERMIT_METADATA_KEY } from '../shared/wire';
import { clientChannelOptions, cliChannelOptions } from '../shared/grpc-options';
import { KeepalivePermits, isTooManyPings, permitFromHeaders } from './keepalive';

const headers = (permit?: string) => {
  const md = new grpc.Metadata();
  if (permit !== undefined) md.set(KEEPALIVE_PERMIT_METADATA_KEY, permit);
  return md;
};

test('the permission is read as a positive decimal number of ms, anything else is none', () => {
  expect(permitFromHeaders(headers('1000'))).toBe(1000);
  expect(permitFromHeaders(headers(' 250 '))).toBe(250);
  for (const bad of ['0', '-5', '1e3', '0x10', 'soon', '', '99999999999']) {
    expect(permitFromHeaders(headers(bad))).toBeUndefined();
  }
  expect(permitFromHeaders(headers())).toBeUndefined();
});

test('decisions: register, or redial fast only from a quiet channel that learned a permission', () => {
  const p = new KeepalivePermits();
  expect(p.forAddress('a:1')).toBeUndefined();
  expect(p.onHeaders('a:1', undefined, undefined)).toBe('register'); // no headers in time
  expect(p.onHeaders('a:1', undefined, headers())).toBe('register'); // headers, no permission
  expect(p.forAddress('a:1')).toBeUndefined();
  expect(p.onHeaders('a:1', undefined, headers('1000'))).toBe('redial_fast');
  expect(p.forAddress('a:1')).toBe(1000);
  expect(p.forAddress('b:1')).toBeUndefined(); // per address
  expect(p.onHeaders('a:1', 1000, headers('1000'))).toBe('register'); // already fast
  expect(p.onHeaders('a:1', 1000, headers())).toBe('register');
  expect(p.forAddress('a:1')).toBeUndefined(); // withdrawn: forgotten
  p.onHeaders('a:1', undefined, headers('1000'));
  p.forget('a:1');
  expect(p.forAddress('a:1')).toBeUndefined();
});

test('too_many_pings is recognised as grpc-js reports it', () => {
  expect(
    isTooManyPings(grpc.status.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded'),
  ).toBe(true);
  expect(isTooManyPings(grpc.status.RESOURCE_EXHAUSTED, 'too many nodes')).toBe(false);
  expect(isTooManyPings(grpc.status.UNAVAILABLE, 'Bandwidth exhausted')).toBe(false);
});

test('channel options: client pings only with a permission, never faster than a second; none for the CLI', () => {
  const quiet = clientChannelOptions(2000);
  expect(quiet['grpc.keepalive_time_ms']).toBeUndefined();
  expect(quiet['grpc.keepalive_permit_without_calls']).toBeUndefined();
  expect(clientChannelOptions(2000, 1000)).toMatchObject({
    'grpc.keepalive_time_ms': 1000,
    'grpc.keepalive_timeout_ms': 1000,
  });
  expect(clientChannelOptions(2000, 10)['grpc.keepalive_time_ms']).toBe(1000);
  expect(clientChannelOptions(2000, 5000)['grpc.keepalive_time_ms']).toBe(5000);
  expect(cliChannelOptions()['grpc.keepalive_time_ms']).toBeUndefined();
});
