import { redact, safeUrl } from './safe-detail';

test('a URL is shown without its query string or fragment, from a URL or a string', () => {
  expect(safeUrl('wss://feed.example:8443/v1/stream?key=SECRET#x')).toBe(
    'wss://feed.example:8443/v1/stream',
  );
  expect(safeUrl(new URL('https://api.example/q/BTC?apikey=SECRET'))).toBe(
    'https://api.example/q/BTC',
  );
  expect(safeUrl('not a url')).toBe('(invalid URL)');
});

test('secrets of three characters or more are redacted wherever they appear', () => {
  expect(redact('Bearer abc123 failed for abc123', ['abc123'])).toBe(
    'Bearer [redacted] failed for [redacted]',
  );
  // Too short to redact without mangling ordinary text.
  expect(redact('a 1 b', ['1', 'ab'])).toBe('a 1 b');
});
