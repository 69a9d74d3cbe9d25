/**
 * Values from the wire, shown safely: whatever a peer sends (a timestamp in the year
 * 300,000, nanos out of range, a NaN price), printing it never throws. Tables show
 * `invalid (...)`, --json shows null.
 */
import type { Timestamp } from '../gen/google/protobuf/timestamp';
import { type Unpacked, toJson } from '../shared/any';

// The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MIN_SECONDS = -62_135_596_800;
const MAX_SECONDS = 253_402_300_799;

function isValidTimestamp(ts: Timestamp): boolean {
  return (
    Number.isInteger(ts.seconds) &&
    ts.seconds >= MIN_SECONDS &&
    ts.seconds <= MAX_SECONDS &&
    Number.isInteger(ts.nanos) &&
    ts.nanos >= 0 &&
    ts.nanos <= 999_999_999
  );
}

/** ISO 8601 text; '' when absent, null when the value is not a valid timestamp. */
export function isoOrNull(ts: Timestamp | undefined): string | null {
  if (!ts) return '';
  if (!isValidTimestamp(ts)) return null;
  return new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6)).toISOString();
}

/** For tables: ISO 8601, '' when absent, `invalid (seconds=…, nanos=…)` when malformed. */
export function showTime(ts: Timestamp | undefined): string {
  return isoOrNull(ts) ?? `invalid (seconds=${ts!.seconds}, nanos=${ts!.nanos})`;
}

export function isValidPrice(p: number): boolean {
  return Number.isFinite(p) && p > 0;
}

/** For tables: the price, or `invalid (…)` when it is not finite and positive. */
export function showPrice(p: number): string {
  return isValidPrice(p) ? String(p) : `invalid (${p})`;
}

/** For --json: the number if JSON can carry it (a negative one too), else null. */
export function jsonPrice(p: number): number | null {
  return Number.isFinite(p) ? p : null;
}

function isTimestampLike(v: unknown): v is Timestamp {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return (
    keys.length === 2 &&
    typeof (v as Timestamp).seconds === 'number' &&
    typeof (v as Timestamp).nanos === 'number'
  );
}

/**
 * Drops invalid timestamps from a decoded message (the generated toJSON would throw on
 * them) and returns the paths where they were, so the JSON can show null there.
 */
function withoutBadTimestamps(
  v: unknown,
  path: (string | number)[],
  bad: (string | number)[][],
): unknown {
  if (isTimestampLike(v)) {
    if (isValidTimestamp(v)) return v;
    bad.push(path);
    return undefined;
  }
  if (Array.isArray(v)) return v.map((x, i) => withoutBadTimestamps(x, [...path, i], bad));
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array))
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, withoutBadTimestamps(x, [...path, k], bad)]),
    );
  return v;
}

/** The proto3 JSON form of a reply, never throwing on malformed values. */
export function safeToJson(value: Unpacked): unknown {
  const bad: (string | number)[][] = [];
  const message = withoutBadTimestamps(value.message, [], bad);
  const out = toJson({ name: value.name, message } as Unpacked) as Record<string, unknown>;
  for (const path of bad) {
    let at: unknown = out;
    for (const key of path.slice(0, -1))
      at = at && typeof at === 'object' ? (at as Record<string | number, unknown>)[key] : undefined;
    if (at && typeof at === 'object')
      (at as Record<string | number, unknown>)[path[path.length - 1]!] = null;
  }
  return out;
}

/** Time since `ts`, as kubectl shows an AGE: 45s, 12m, 3h, 2d; `?` when malformed or absent. */
export function age(ts: Timestamp | undefined, nowMs: number): string {
  if (!ts || !isValidTimestamp(ts)) return '?';
  const s = Math.max(0, Math.floor((nowMs - (ts.seconds * 1000 + ts.nanos / 1e6)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 120 * 60) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

// C0 (TAB, LF, CR and ESC among them), DEL and C1: what a terminal may act on.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * A string from the wire (a node name, a pair, a version, an error message) for human
 * output: control characters shown as `\t`, `\n`, `\r` or `\xNN`, so that a peer cannot
 * move the cursor, retitle the terminal or forge a table row. --json keeps them exact.
 */
export function shown(s: string): string {
  return s.replace(
    CONTROL,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** For stderr, whose every message is one line of text: anything but the line ends escaped. */
export function shownLines(text: string): string {
  return text.split('\n').map(shown).join('\n');
}
