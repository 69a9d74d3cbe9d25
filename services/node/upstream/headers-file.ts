/**
 * NODE_UPSTREAM_HEADERS_FILE: `Name: value` lines sent with every request or WebSocket
 * handshake (API keys). Blank lines and lines starting with `#` are skipped. The file is
 * read again when its modification time or size changes (checked at most once a second),
 * so a rotated key is used from the next request on; a file that became unreadable or
 * malformed keeps the last good headers and is reported once. Values are never logged.
 */
import { readFileSync, statSync } from 'node:fs';

const NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FORBIDDEN = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'upgrade']);

/** Parses the file's text; throws an Error naming the line (never its value). */
export function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const colon = t.indexOf(':');
    const name = colon > 0 ? t.slice(0, colon).trim() : '';
    if (!NAME_RE.test(name)) throw new Error(`line ${i + 1} is not "Name: value"`);
    if (FORBIDDEN.has(name.toLowerCase()))
      throw new Error(
        `line ${i + 1}: the header ${name} is set by the client and may not be given`,
      );
    const value = t.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value)) throw new Error(`line ${i + 1}: the value has a control character`);
    headers[name] = value;
  });
  return headers;
}

export class HeadersFile {
  private headers: Record<string, string>;
  private stamp: string;
  private checkedAtMs = 0;
  private problem: string | undefined;

  /** Reads the file once; throws (for a config error at start) if it cannot. */
  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
    private readonly onProblem: (problem: string | undefined) => void = () => {},
  ) {
    this.stamp = this.statStamp();
    this.headers = parseHeaders(readFileSync(path, 'utf8'));
  }

  /** The headers now, re-read if the file changed. */
  current(): Record<string, string> {
    const now = this.now();
    if (now - this.checkedAtMs < 1000) return this.headers;
    this.checkedAtMs = now;
    try {
      const stamp = this.statStamp();
      if (stamp !== this.stamp) {
        this.headers = parseHeaders(readFileSync(this.path, 'utf8'));
        this.stamp = stamp;
      }
      if (this.problem !== undefined) this.onProblem((this.problem = undefined));
    } catch (err) {
      const problem = `cannot use ${this.path} (${(err as Error).message}); keeping the headers read before`;
      if (problem !== this.problem) this.onProblem((this.problem = problem));
    }
    return this.headers;
  }

  private statStamp(): string {
    const s = statSync(this.path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  }
}
