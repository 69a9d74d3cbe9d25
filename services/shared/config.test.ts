import { z } from 'zod';
import { configError } from '../../tests/support/fakes';
import {
  ConfigError,
  PAIR_PATTERN,
  dialAddrSchema,
  formatHostPort,
  listOf,
  listenAddrSchema,
  logLevelSchema,
  pairSchema,
  positiveIntSchema,
  readVar,
  uuidSchema,
} from './config';

describe('ConfigError', () => {
  test('carries the variable and the problem and reads "VARIABLE: problem"', () => {
    const e = new ConfigError('NODE_UUID', 'must be a UUID');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ConfigError');
    expect(e.variable).toBe('NODE_UUID');
    expect(e.problem).toBe('must be a UUID');
    expect(e.message).toBe('NODE_UUID: must be a UUID');
  });
});

describe('readVar', () => {
  test('an unset variable takes the fallback', () => {
    expect(readVar({}, 'X_PORT', positiveIntSchema, '7')).toBe(7);
  });

  test('a blank variable takes the fallback too', () => {
    expect(readVar({ X_PORT: '   ' }, 'X_PORT', positiveIntSchema, '7')).toBe(7);
  });

  test('a set variable wins over the fallback', () => {
    expect(readVar({ X_PORT: '9' }, 'X_PORT', positiveIntSchema, '7')).toBe(9);
  });

  test('a required variable that is not set throws naming it', () => {
    const e = configError(() => readVar({}, 'NEEDED', z.string()));
    expect(e.variable).toBe('NEEDED');
    expect(e.message).toBe('NEEDED: is required but not set');
  });

  test('an invalid value throws naming the variable, quoting the value and saying what is wrong', () => {
    const e = configError(() => readVar({ N: 'abc' }, 'N', positiveIntSchema, '1'));
    expect(e.variable).toBe('N');
    expect(e.message).toContain('"abc"');
    expect(e.message).toContain('must be a whole number');
  });

  test('an invalid fallback is held to the same rules', () => {
    const e = configError(() => readVar({}, 'N', positiveIntSchema, '0'));
    expect(e.variable).toBe('N');
    expect(e.message).toContain('must be greater than 0');
  });
});

describe('schemas', () => {
  test.each(['USD_HKD', 'BTC_USD', 'X1_Y2', 'A_B'])('pair %p is valid', (p) => {
    expect(PAIR_PATTERN.test(p)).toBe(true);
    expect(pairSchema.safeParse(p).success).toBe(true);
  });

  test.each([
    'usd-hkd',
    'usd_hkd',
    'USD-HKD',
    'USDHKD',
    'USD_',
    '_HKD',
    'USD_HKD_EUR',
    ' USD_HKD',
    '',
  ])('pair %p is rejected with an example of the right form', (p) => {
    const r = pairSchema.safeParse(p);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toContain('BASE_QUOTE');
  });

  test('a UUID of any version and case is accepted; other strings are not', () => {
    expect(uuidSchema.safeParse('3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f').success).toBe(true);
    expect(uuidSchema.safeParse('3F2B8C1E-8D3A-4B7E-9C2F-1A2B3C4D5E6F').success).toBe(true);
    const bad = uuidSchema.safeParse('node-1');
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain('must be a UUID');
  });

  test('a listen address parses host and port, and allows port 0', () => {
    expect(listenAddrSchema.parse('0.0.0.0:5160')).toEqual({ host: '0.0.0.0', port: 5160 });
    expect(listenAddrSchema.parse('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
  });

  test('an IPv6 address in brackets keeps its brackets', () => {
    expect(dialAddrSchema.parse('[::1]:5160')).toEqual({ host: '[::1]', port: 5160 });
    expect(formatHostPort(dialAddrSchema.parse('[::1]:5160'))).toBe('[::1]:5160');
  });

  test('a dial address refuses port 0', () => {
    const r = dialAddrSchema.safeParse('localhost:0');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('port 0 is out of range 1-65535');
  });

  test.each([
    ['localhost:70000', 'port 70000 is out of range 1-65535'],
    ['localhost:65536', 'port 65536 is out of range 1-65535'],
    ['localhost', '"localhost" is not HOST:PORT'],
    ['localhost:', '"localhost:" is not HOST:PORT'],
    [':5160', '":5160" is not HOST:PORT'],
    ['::1:5160', '"::1:5160" is not HOST:PORT'],
    ['host:port', '"host:port" is not HOST:PORT'],
    ['a b:1', '"a b:1" is not HOST:PORT'],
  ])('dial address %p is rejected: %s', (raw, message) => {
    const r = dialAddrSchema.safeParse(raw);
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe(message);
  });

  test('port 65535 is the highest accepted', () => {
    expect(dialAddrSchema.parse('h:65535')).toEqual({ host: 'h', port: 65535 });
  });

  test('a comma-separated list drops blanks and surrounding spaces', () => {
    expect(listOf(pairSchema).parse(' USD_HKD , ,BTC_USD,')).toEqual(['USD_HKD', 'BTC_USD']);
  });

  test('a list with nothing in it is rejected', () => {
    const r = listOf(pairSchema).safeParse(' , ');
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('must list at least one value');
  });

  test.each(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])(
    'log level %p is accepted',
    (l) => expect(logLevelSchema.parse(l)).toBe(l),
  );

  test.each(['verbose', 'INFO', '1'])('log level %p is rejected', (l) => {
    expect(logLevelSchema.safeParse(l).success).toBe(false);
  });

  test.each(['1.5', '-1', '0', 'ten', '1e999'])('positive whole number %p is rejected', (v) => {
    expect(positiveIntSchema.safeParse(v).success).toBe(false);
  });
});
