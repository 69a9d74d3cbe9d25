/**
 * NODE_UPSTREAM_HEADERS_FILE (headers-file.ts): `Name: value` lines, checked line by line
 * without ever quoting a value; the file is re-read when it changes (at most once a
 * second, on the injected clock), and a file that went bad keeps the last good headers.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadersFile, parseHeaders } from './headers-file';

describe('parseHeaders', () => {
  test('takes `Name: value` lines, trimmed, skipping blank lines and # comments', () => {
    expect(
      parseHeaders('# API key\n\nX-Api-Key:  s3cr3t \r\nAccept: application/json\n  # indented\n'),
    ).toEqual({ 'X-Api-Key': 's3cr3t', Accept: 'application/json' });
  });

  test('a value may contain colons, and may be empty', () => {
    expect(parseHeaders('Authorization: Bearer a:b:c\nX-Empty:')).toEqual({
      Authorization: 'Bearer a:b:c',
      'X-Empty': '',
    });
  });

  test('the last of two lines with the same name wins', () => {
    expect(parseHeaders('X-Key: old\nX-Key: new')).toEqual({ 'X-Key': 'new' });
  });

  test.each([
    ['no colon', 'X-Api-Key s3cr3t'],
    ['an empty name', ': s3cr3t'],
    ['a space in the name', 'X Api: s3cr3t'],
  ])('a line with %s is refused by its number, never quoting the value', (_what, line) => {
    let message = '';
    try {
      parseHeaders(`# ok\n${line}`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe('line 2 is not "Name: value"');
    expect(message).not.toContain('s3cr3t');
  });

  test.each(['Host', 'content-length', 'Connection', 'Transfer-Encoding', 'upgrade'])(
    'the client-set header %s may not be given',
    (name) => {
      expect(() => parseHeaders(`${name}: x`)).toThrow(
        `line 1: the header ${name} is set by the client and may not be given`,
      );
    },
  );

  test('a value with a NUL is refused (a header cannot carry it)', () => {
    expect(() => parseHeaders('X-Key: a\0b')).toThrow('line 1: the value has a control character');
  });
});

describe('HeadersFile', () => {
  let dir: string;
  let path: string;
  let now: number;
  let problems: (string | undefined)[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'headers-file-'));
    path = join(dir, 'headers');
    now = 1_000_000;
    problems = [];
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = () =>
    new HeadersFile(
      path,
      () => now,
      (p) => problems.push(p),
    );

  test('a file that cannot be read or parsed at start is an error then (a config error)', () => {
    expect(() => open()).toThrow();
    writeFileSync(path, 'not a header');
    expect(() => open()).toThrow('line 1 is not "Name: value"');
  });

  test('a changed file is read again, but not more often than once a second', () => {
    writeFileSync(path, 'X-Key: one');
    const h = open();
    now += 1000;
    expect(h.current()).toEqual({ 'X-Key': 'one' });
    writeFileSync(path, 'X-Key: two-rotated');
    now += 999;
    expect(h.current()).toEqual({ 'X-Key': 'one' });
    now += 1;
    expect(h.current()).toEqual({ 'X-Key': 'two-rotated' });
    expect(problems).toEqual([]);
  });

  test('a file that went bad keeps the last good headers, reported once, and recovery is reported', () => {
    writeFileSync(path, 'X-Key: good');
    const h = open();
    writeFileSync(path, 'X-Key: also fine\nbroken line with secret');
    now += 1000;
    expect(h.current()).toEqual({ 'X-Key': 'good' });
    now += 1000;
    expect(h.current()).toEqual({ 'X-Key': 'good' });
    expect(problems).toEqual([
      `cannot use ${path} (line 2 is not "Name: value"); keeping the headers read before`,
    ]);
    writeFileSync(path, 'X-Key: fixed');
    now += 1000;
    expect(h.current()).toEqual({ 'X-Key': 'fixed' });
    expect(problems.at(-1)).toBeUndefined();
    expect(problems).toHaveLength(2);
  });

  test('a file that disappeared keeps the last good headers too', () => {
    writeFileSync(path, 'X-Key: good');
    const h = open();
    unlinkSync(path);
    now += 1000;
    expect(h.current()).toEqual({ 'X-Key': 'good' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^cannot use .* keeping the headers read before$/);
  });
});
