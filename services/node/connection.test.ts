import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  CLOSE_REASON_METADATA_KEY,
  CONTROLLER_ACCEPTS_METADATA_KEY,
  KEEPALIVE_PERMIT_METADATA_KEY,
} from '../shared/wire';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import { capturingLogger } from '../../tests/support/log-capture';
import { ControllerConnection, type NodeStream } from './connection';
import { createNodeMetrics } from './metrics';

const ANNOUNCE = { nodeUuid: 'n', traceContext: {} };

class FakeCall extends EventEmitter {
  writes: unknown[] = [];
  cancelled = false;
  writableNeedDrain = false;
  write(m: unknown) {
    this.writes.push(m);
    return true;
  }
  end() {}
  cancel() {
    this.cancelled = true;
  }
  headers(h: Record<string, string>) {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(h)) md.set(k, v);
    this.emit('metadata', md);
  }
  status(code: grpc.status, details: string, trailers: Record<string, string> = {}) {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(trailers)) metadata.set(k, v);
    this.emit('status', { code, details, metadata });
  }
  frame() {
    this.emit('data', { ok: true, value: { command: undefined, traceContext: {} } });
  }
}

function setup(
  over: {
    displacedWaitMs?: number;
    displacedJitterMs?: number;
    addresses?: string[];
    random?: () => number;
  } = {},
) {
  /** What the fake dials say of their connections: held open by the controller, or closed by it. */
  const connection = { heldOpenByPeer: true };
  /** Whether the fake dials have their connection, and how many clients were closed. */
  const channel = { connected: true, closed: 0 };
  const clock = fakeScheduler();
  const { logger, lines } = capturingLogger('debug', { service: 'test' });
  const registry = new Registry();
  const metrics = createNodeMetrics(registry, { defaultMetrics: false });
  const dials: { address: string; permitMs: number | undefined; call: FakeCall }[] = [];
  let lost = 0;
  let registered = 0;
  const conn = new ControllerConnection({
    uuid: 'b1c2d3e4-0000-4000-8000-000000000001',
    addresses: over.addresses ?? ['ctl:5160'],
    backoff: { initialMs: 100, maxMs: 2000 },
    displacedWaitMs: over.displacedWaitMs ?? 30_000,
    displacedJitterMs: over.displacedJitterMs ?? 15_000,
    headerWaitMs: 1000,
    connectTimeoutMs: 10_000,
    stopGraceMs: 1000,
    announce: () => ANNOUNCE,
    dial: (address, permitMs) => {
      const call = new FakeCall();
      dials.push({ address, permitMs, call });
      return {
        call: call as unknown as NodeStream,
        close: () => channel.closed++,
        connection: { heldOpenByPeer: () => connection.heldOpenByPeer },
        connected: () => channel.connected,
      };
    },
    scheduler: clock,
    random: over.random ?? (() => 0.5),
    log: logger,
    metrics,
    onRegistered: () => registered++,
    onFrame: () => {},
    onLost: () => lost++,
  });
  const last = () => dials[dials.length - 1]!.call;
  const metric = async (name: string) =>
    (await registry.getSingleMetric(name)?.get())?.values.reduce((a, v) => a + v.value, 0);
  return {
    clock,
    conn,
    connection,
    channel,
    dials,
    last,
    lines,
    metric,
    counts: () => ({ lost, registered }),
  };
}

describe('a connect that hangs', () => {
  test('is given up after connectTimeoutMs, said at warn, its client closed, and dialled again', () => {
    const { clock, channel, conn, dials, last, lines, counts } = setup();
    channel.connected = false; // SYNs dropped: grpc-js would wait for the kernel
    conn.start();
    clock.advance(9_999);
    expect(dials).toHaveLength(1);
    expect(conn.kind()).toBe('connecting');
    clock.advance(1);
    expect(dials[0]!.call.cancelled).toBe(true);
    expect(channel.closed).toBe(1); // before the next dial: its hung subchannel is released
    expect(conn.kind()).toBe('backing_off');
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        cause: 'no connection within 10000 ms (NODE_CONNECT_TIMEOUT_MS)',
        controller: 'ctl:5160',
      }),
    );
    clock.advance(2000); // the backoff
    expect(dials).toHaveLength(2);
    channel.connected = true;
    last().frame();
    expect(conn.kind()).toBe('registered');
    expect(counts().registered).toBe(1);
    clock.advance(60_000);
    expect(channel.closed).toBe(1);
    expect(dials).toHaveLength(2);
  });

  test('a dial that has its connection is never given up for a slow answer', () => {
    const { clock, channel, conn, dials } = setup();
    conn.start();
    clock.advance(60_000); // registered without headers at 1 s; the controller is slow to answer
    expect(conn.kind()).toBe('connecting');
    expect(dials).toHaveLength(1);
    expect(channel.closed).toBe(0);
  });

  test('with several controllers, the next dial prefers another address', () => {
    const { clock, channel, conn, dials } = setup({
      addresses: ['a:1', 'b:1'],
      random: () => 0,
    });
    channel.connected = false;
    conn.start();
    expect(dials[0]!.address).toBe('a:1');
    clock.advance(10_000);
    clock.advance(2000);
    expect(dials[1]!.address).toBe('b:1');
  });
});

describe('keepalive negotiation', () => {
  test('to an unknown address: no client pings, and a short wait for headers before registering', () => {
    const { clock, dials, last, conn } = setup();
    conn.start();
    expect(dials[0]!.permitMs).toBeUndefined();
    expect(last().writes).toHaveLength(0);
    clock.advance(999);
    expect(last().writes).toHaveLength(0);
    clock.advance(1);
    // No header came (a foreign controller sends them with its first message): register slowly.
    expect(last().writes).toEqual([ANNOUNCE]);
    expect(dials).toHaveLength(1);
  });

  test('headers without the permission: register at once on the quiet channel', () => {
    const { dials, last, conn } = setup();
    conn.start();
    last().headers({ [CONTROLLER_ACCEPTS_METADATA_KEY]: 'NodePriceUpdatesV1Notify' });
    expect(last().writes).toEqual([ANNOUNCE]);
    expect(dials).toHaveLength(1);
  });

  test('headers with the permission: the unregistered stream is replaced at once by a fast one, counted as nothing', async () => {
    const { clock, dials, last, conn, counts, metric } = setup();
    conn.start();
    const slow = last();
    slow.headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    expect(slow.writes).toHaveLength(0); // never registered on the slow channel
    expect(slow.cancelled).toBe(true);
    expect(dials).toHaveLength(2);
    expect(dials[1]!.permitMs).toBe(1000);
    expect(last().writes).toEqual([ANNOUNCE]); // known permission: registers at once
    last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    last().frame();
    expect(conn.kind()).toBe('registered');
    expect(counts().registered).toBe(1);
    expect(await metric('currency_node_reconnect_attempts_total')).toBe(0);
    expect(await metric('currency_node_reconnects_total')).toBe(0);
    // The permission is remembered: after a loss the next stream is fast from the start.
    last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    clock.advance(2000);
    expect(dials).toHaveLength(3);
    expect(dials[2]!.permitMs).toBe(1000);
    expect(last().writes).toEqual([ANNOUNCE]);
  });

  test('a permission below a second still pings at most once a second', () => {
    const { dials, last, conn } = setup();
    conn.start();
    last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '10' });
    expect(dials[1]!.permitMs).toBe(10); // grpc-options raises it to KEEPALIVE_TIME_MS
  });

  test('headers arriving after the wait: registration stays on the slow channel, the next one is fast', () => {
    const { clock, dials, last, conn } = setup();
    conn.start();
    clock.advance(1000);
    last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    expect(dials).toHaveLength(1);
    last().frame();
    expect(conn.kind()).toBe('registered');
    last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    clock.advance(2000);
    expect(dials[1]!.permitMs).toBe(1000);
  });

  test('a fast channel whose controller no longer permits pings, or that is refused for pinging, goes quiet next time', () => {
    const { clock, dials, last, conn } = setup();
    conn.start();
    last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    last().headers({}); // the controller behind that address changed
    last().frame();
    last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    clock.advance(100); // the backoff, not the header wait
    expect(dials[2]!.permitMs).toBeUndefined();
    // Learn it again, then be refused for pinging (GOAWAY too_many_pings).
    last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    expect(dials[3]!.permitMs).toBe(1000);
    last().frame();
    last().status(grpc.status.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded');
    clock.advance(2000);
    expect(dials[4]!.permitMs).toBeUndefined();
  });
});

describe('keepalive timeouts (currency_node_keepalive_timeouts_total)', () => {
  const KEEPALIVE = 'currency_node_keepalive_timeouts_total';
  /** Registered on the fast channel (the controller permitted client pings). */
  function fastAndRegistered(s: ReturnType<typeof setup>) {
    s.conn.start();
    s.last().headers({ [KEEPALIVE_PERMIT_METADATA_KEY]: '1000' });
    s.last().frame();
    expect(s.conn.kind()).toBe('registered');
    expect(s.dials[s.dials.length - 1]!.permitMs).toBe(1000);
  }

  test('grpc-js dropping a pinging stream whose connection the controller never closed counts, and says so', async () => {
    const s = setup();
    fastAndRegistered(s);
    // What grpc-js 1.14 reports for an unanswered keepalive ping: the same status as for a reset.
    s.last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    expect(await s.metric(KEEPALIVE)).toBe(1);
    const lost = s.lines.find((l) => l.msg === 'controller stream lost');
    expect(lost).toMatchObject({ level: 'warn', keepalive_timeout: true });
  });

  test('a connection the controller closed or reset, a quiet stream, or a status from the controller do not count', async () => {
    // Closed by the controller (killed, restarted, a proxy's reset): not a keepalive timeout.
    const closed = setup();
    fastAndRegistered(closed);
    closed.connection.heldOpenByPeer = false;
    closed.last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    expect(await closed.metric(KEEPALIVE)).toBe(0);
    expect(closed.lines.find((l) => l.msg === 'controller stream lost')).toMatchObject({
      keepalive_timeout: false,
    });
    // No client pings on this channel: nothing could have timed out.
    const quiet = setup();
    quiet.conn.start();
    quiet.last().headers({});
    quiet.last().frame();
    quiet.last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    expect(await quiet.metric(KEEPALIVE)).toBe(0);
    // A status the controller sent (here a standby's refusal) proves it alive.
    const refused = setup();
    fastAndRegistered(refused);
    refused.last().status(grpc.status.UNAVAILABLE, 'this controller is a standby', {
      [CLOSE_REASON_METADATA_KEY]: 'not_leader',
    });
    expect(await refused.metric(KEEPALIVE)).toBe(0);
  });
});

describe('displaced by a newer stream with our UUID', () => {
  test('logs an error naming the conflict and waits at least 30 s before reconnecting', () => {
    const { clock, dials, last, conn, lines, counts } = setup({ displacedJitterMs: 15_000 });
    conn.start();
    last().headers({});
    last().frame();
    last().status(grpc.status.ABORTED, 'replaced by a newer stream with the same node UUID', {
      [CLOSE_REASON_METADATA_KEY]: 'replaced',
    });
    expect(conn.kind()).toBe('backing_off');
    expect(counts().lost).toBe(1);
    const err = lines.find((l) => l.level === 'error');
    expect(err?.msg).toMatch(
      /another process is using this node UUID \(b1c2d3e4-0000-4000-8000-000000000001\)/,
    );
    expect(err?.msg).toMatch(/NODE_UUID/);
    expect(err?.retry_in_ms).toBe(30_000 + 7_500);
    clock.advance(30_000 + 7_499);
    expect(dials).toHaveLength(1);
    clock.advance(1);
    expect(dials).toHaveLength(2);
  });

  test('is recognised by the trailer alone, and by the details alone (a proxy dropping trailers)', () => {
    for (const [code, details, trailers] of [
      [grpc.status.UNAVAILABLE, 'closed', { [CLOSE_REASON_METADATA_KEY]: 'replaced' }],
      [grpc.status.ABORTED, 'replaced by a newer stream with the same node UUID', {}],
    ] as const) {
      const { clock, dials, last, conn } = setup({ displacedJitterMs: 0 });
      conn.start();
      last().headers({});
      last().frame();
      last().status(code, details, trailers);
      clock.advance(29_999);
      expect(dials).toHaveLength(1);
    }
  });

  test('other ABORTED streams and a kick back off as usual', () => {
    const { clock, dials, last, conn } = setup();
    conn.start();
    last().headers({});
    last().frame();
    last().status(grpc.status.UNAVAILABLE, 'kicked', { [CLOSE_REASON_METADATA_KEY]: 'kicked' });
    clock.advance(100);
    expect(dials).toHaveLength(2);
  });
});

describe('refused by a standby controller (leader election)', () => {
  test('tries the next address at once, and backs off as usual once every address refused', () => {
    const { clock, dials, last, conn } = setup({ addresses: ['a:5160', 'b:5160', 'c:5160'] });
    conn.start();
    const standby = () =>
      last().status(grpc.status.UNAVAILABLE, 'this controller is a standby; the leader is x', {
        [CLOSE_REASON_METADATA_KEY]: 'not_leader',
      });
    expect(dials.map((d) => d.address)).toEqual(['b:5160']); // random() = 0.5
    standby();
    clock.advance(0);
    expect(dials.map((d) => d.address)).toEqual(['b:5160', 'c:5160']);
    standby();
    clock.advance(0);
    expect(dials.map((d) => d.address)).toEqual(['b:5160', 'c:5160', 'a:5160']);
    standby(); // all three are standbys: the usual backoff now
    clock.advance(50);
    expect(dials).toHaveLength(3);
    clock.advance(2000);
    expect(dials).toHaveLength(4);
  });
});

describe('during an election', () => {
  test('an address that refused the connection is avoided, and retries stay near the Lease retry period', () => {
    const { clock, dials, last, conn } = setup({ addresses: ['a:5160', 'b:5160'] });
    conn.start(); // random() = 0.5: b
    last().status(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED'); // b is down
    for (let i = 0; i < 4; i++) {
      clock.advance(1000); // within the 5 s that b is avoided
      last().status(grpc.status.UNAVAILABLE, 'this controller is a standby; the leader is x', {
        [CLOSE_REASON_METADATA_KEY]: 'not_leader',
      });
    }
    // After b refused the connection, only a (a standby) was tried.
    expect(dials.slice(1).map((d) => d.address)).toEqual(['a:5160', 'a:5160', 'a:5160', 'a:5160']);
    // Every address answered as a standby: the next try comes within 0.5 s, not the 2 s cap.
    const before = dials.length;
    clock.advance(500);
    expect(dials.length).toBe(before + 1);
  });
});

describe('during a handover (the leader stops gracefully)', () => {
  const shutdown = (call: {
    status: (c: grpc.status, d: string, t: Record<string, string>) => void;
  }) =>
    call.status(grpc.status.OK, 'controller shutting down', {
      [CLOSE_REASON_METADATA_KEY]: 'shutdown',
    });
  const notLeader = { [CLOSE_REASON_METADATA_KEY]: 'not_leader' };

  test('an address avoided earlier is tried at once when the leader says it is stopping: the next leader may be there', () => {
    // random(): 0.5 for the first pick (b), then 0: a random pick among all would be a.
    const picks = [0.5];
    const { clock, dials, last, conn } = setup({
      addresses: ['a:5160', 'b:5160'],
      random: () => picks.shift() ?? 0,
    });
    conn.start(); // b
    last().status(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED'); // b restarting: avoided 5 s
    clock.advance(200);
    expect(last()).toBe(dials[1]!.call);
    expect(dials[1]!.address).toBe('a:5160');
    last().headers({});
    last().frame(); // registered with a
    clock.advance(1000); // b is back (a standby now), still within its 5 s
    shutdown(last()); // a hands over
    clock.advance(100);
    expect(dials.slice(2).map((d) => d.address)).toEqual(['b:5160']);
  });

  test("a standby's refusal right after the leader stopped is retried within 50 ms, not 250", () => {
    const { clock, dials, last, conn } = setup({ addresses: ['a:5160', 'b:5160'] });
    conn.start(); // b
    last().headers({});
    last().frame();
    shutdown(last()); // b stops; a is taking over
    clock.advance(100);
    expect(dials[1]!.address).toBe('a:5160');
    last().status(grpc.status.UNAVAILABLE, 'standby', notLeader); // a: not yet
    clock.advance(0); // b is avoided: a again at once
    expect(dials.map((d) => d.address)).toEqual(['b:5160', 'a:5160', 'a:5160']);
    last().status(grpc.status.UNAVAILABLE, 'standby', notLeader); // still not
    clock.advance(50);
    expect(dials).toHaveLength(4);
    expect(dials[3]!.address).toBe('a:5160');
  });
});

describe('connect failures', () => {
  test('are logged at warn with their cause, the first at once, then one line per 30 s with a count', () => {
    const { clock, last, conn, lines } = setup();
    conn.start();
    const fail = () =>
      last().status(
        grpc.status.UNAVAILABLE,
        'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1',
      );
    fail();
    for (let i = 0; i < 40; i++) {
      clock.advance(2000);
      fail();
    }
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns[0]?.msg).toBe('cannot reach the controller: connection refused');
    expect(warns[0]?.controller).toBe('ctl:5160');
    expect(warns.length).toBeGreaterThanOrEqual(2);
    expect(warns.length).toBeLessThanOrEqual(4); // ~82 s of failures
    expect(warns[1]?.suppressed).toBeGreaterThan(5);
    expect(warns[1]?.msg).toMatch(/more failed attempts not logged/);
  });

  test('a registration resets the limit, so the next outage is reported at once', () => {
    const { clock, last, conn, lines } = setup();
    conn.start();
    last().status(grpc.status.UNAVAILABLE, 'Name resolution failed for target dns:ctl:5160');
    clock.advance(200);
    last().headers({});
    last().frame();
    last().status(grpc.status.UNAVAILABLE, 'Connection dropped');
    clock.advance(200);
    last().status(grpc.status.UNAVAILABLE, 'connect ECONNREFUSED');
    const warns = lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warns).toEqual([
      'cannot reach the controller: name not resolved',
      'controller stream lost',
      'cannot reach the controller: connection refused',
    ]);
  });
});

test('stop half-closes the stream, ends the loop, and nothing reconnects afterwards', async () => {
  const { clock, dials, last, conn, counts } = setup();
  conn.start();
  last().headers({});
  last().frame();
  const stopped = conn.stop();
  last().status(grpc.status.OK, '');
  await stopped;
  expect(conn.kind()).toBe('stopped');
  expect(counts().lost).toBe(1);
  clock.advance(60_000);
  expect(dials).toHaveLength(1);
  expect(clock.pending()).toBe(0);
});
