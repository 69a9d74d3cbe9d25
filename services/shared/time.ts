import type { Timestamp } from '../gen/google/protobuf/timestamp';

export function timestampFromMs(ms: number): Timestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1e6)) };
}

export function msFromTimestamp(ts: Timestamp | undefined): number | undefined {
  if (!ts) return undefined;
  return ts.seconds * 1000 + Math.floor(ts.nanos / 1e6);
}

export function isoFromTimestamp(ts: Timestamp | undefined): string {
  const ms = msFromTimestamp(ts);
  return ms === undefined ? '' : new Date(ms).toISOString();
}
