/**
 * What failure details and logs may show of an upstream, for both kinds: a URL without its
 * query string (API keys sometimes sit there) and no header value.
 */

/** `scheme://host/path` of a URL; '(invalid URL)' if it cannot be read. */
export function safeUrl(url: URL | string): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return '(invalid URL)';
  }
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** `text` with every secret (a header value sent) of 3 characters or more replaced. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('[redacted]');
  return out;
}
