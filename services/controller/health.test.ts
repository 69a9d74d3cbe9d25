/**
 * HealthState (health.ts): the standard grpc.health.v1 Check and Watch, on fake calls.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { HealthCheckResponse } from '../gen/grpc/health/v1/health';
import { HealthState, HealthStatus } from './health';

const SERVICE = 'protobuf.NodeCmdStream';

type Check = (
  call: { request: { service: string } },
  cb: (
    err: grpc.ServiceError | null | { code: number; details: string },
    r?: HealthCheckResponse,
  ) => void,
) => void;

/** A server-streaming Watch call: what the service writes, and whether it ended it. */
class WatchCall extends EventEmitter {
  readonly written: HealthCheckResponse['status'][] = [];
  ended = false;
  constructor(readonly request: { service: string }) {
    super();
  }
  write(r: HealthCheckResponse): boolean {
    this.written.push(r.status);
    return true;
  }
  end(): void {
    this.ended = true;
  }
}

function check(h: HealthState, service: string) {
  let got: { err: unknown; status?: HealthStatus } | undefined;
  (h.implementation().check as unknown as Check)({ request: { service } }, (err, r) => {
    got = { err, status: r?.status };
  });
  return got!;
}

function watch(h: HealthState, service: string): WatchCall {
  const call = new WatchCall({ service });
  (h.implementation().watch as unknown as (c: WatchCall) => void)(call);
  return call;
}

describe('Check', () => {
  test('the server as a whole ("") and every named service start NOT_SERVING', () => {
    const h = new HealthState([SERVICE]);
    expect(check(h, '')).toEqual({ err: null, status: HealthStatus.NOT_SERVING });
    expect(check(h, SERVICE)).toEqual({ err: null, status: HealthStatus.NOT_SERVING });
  });

  test('setAll changes every service at once', () => {
    const h = new HealthState([SERVICE, 'other']);
    h.setAll(HealthStatus.SERVING);
    expect(h.status()).toBe(HealthStatus.SERVING);
    expect(h.status('other')).toBe(HealthStatus.SERVING);
    expect(check(h, SERVICE).status).toBe(HealthStatus.SERVING);
  });

  test('an unknown service is NOT_FOUND, naming it', () => {
    const h = new HealthState([SERVICE]);
    const r = check(h, 'nope');
    expect(r.err).toEqual({ code: grpc.status.NOT_FOUND, details: 'unknown service "nope"' });
    expect(h.status('nope')).toBeUndefined();
  });
});

describe('Watch', () => {
  test('sends the status at once, then every change', () => {
    const h = new HealthState([SERVICE]);
    const w = watch(h, SERVICE);
    h.setAll(HealthStatus.SERVING);
    h.setAll(HealthStatus.NOT_SERVING);
    expect(w.written).toEqual([
      HealthStatus.NOT_SERVING,
      HealthStatus.SERVING,
      HealthStatus.NOT_SERVING,
    ]);
  });

  test('a watch on an unknown service is told SERVICE_UNKNOWN and kept (it may appear)', () => {
    const h = new HealthState([SERVICE]);
    const w = watch(h, 'nope');
    h.setAll(HealthStatus.SERVING);
    expect(w.written).toEqual([HealthStatus.SERVICE_UNKNOWN, HealthStatus.SERVICE_UNKNOWN]);
  });

  test.each(['cancelled', 'error', 'close'])(
    'a watcher whose call emits %s is dropped',
    (event) => {
      const h = new HealthState([SERVICE]);
      const w = watch(h, SERVICE);
      w.emit(event, new Error('gone'));
      h.setAll(HealthStatus.SERVING);
      expect(w.written).toEqual([HealthStatus.NOT_SERVING]);
    },
  );

  test('endWatches ends every watch (so the server can close) and forgets them', () => {
    const h = new HealthState([SERVICE]);
    const a = watch(h, SERVICE);
    const b = watch(h, '');
    h.endWatches();
    expect(a.ended && b.ended).toBe(true);
    h.setAll(HealthStatus.SERVING);
    expect(a.written).toEqual([HealthStatus.NOT_SERVING]);
  });
});
