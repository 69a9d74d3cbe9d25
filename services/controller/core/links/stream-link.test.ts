/**
 * StreamLink (stream-link.ts) over a fake grpc-js server call and the fake scheduler: how
 * the order of the call's events names the close reason, what the peer is sent when the
 * controller ends a stream, the send-queue bound, timers that die with the link, headers.
 */
import * as grpc from '@grpc/grpc-js';
import { CLOSE_REASON_METADATA_KEY } from '../../../shared/wire';
import { FakeCall } from '../../../../tests/support/fake-call';
import { type FakeScheduler, fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { CLOSE_RULES, type CloseReason } from './close-reasons';
import { StreamLink } from './stream-link';

type In = { n: number };
type Out = { m: number };
type Link = StreamLink<In, Out, string>;

function setup(
  opts: {
    maxQueuedMessages?: number;
    headers?: Record<string, string>;
    call?: FakeCall<In, Out>;
  } = {},
) {
  const scheduler: FakeScheduler = fakeScheduler();
  const call = opts.call ?? new FakeCall<In, Out>('ipv4:10.0.0.7:51234');
  const frames: number[] = [];
  const closed: CloseReason[] = [];
  const link: Link = new StreamLink<In, Out, string>(
    call.asCall(),
    { scheduler, maxQueuedMessages: opts.maxQueuedMessages ?? 10, headers: opts.headers },
    {
      onFrame: (_l, f) => {
        if (f.ok) frames.push(f.value.n);
      },
      onClosed: (l, reason) => {
        expect(l.closed).toBe(true);
        closed.push(reason);
      },
    },
  );
  link.owner = 'owner';
  return { scheduler, call, link, frames, closed };
}

/** The close-reason trailer of what the link ended the call with. */
function trailerOf(md: grpc.Metadata | undefined): string | undefined {
  const v = md?.get(CLOSE_REASON_METADATA_KEY)[0];
  return typeof v === 'string' ? v : undefined;
}

describe('opening', () => {
  test('knows its peer and when it opened, and listens only once open() is called', () => {
    const { call, link, frames, scheduler } = setup();
    expect(link.peer).toBe('ipv4:10.0.0.7:51234');
    expect(link.openedAtMs).toBe(scheduler.now());
    call.receive({ n: 1 });
    expect(frames).toEqual([]);
    link.open();
    call.receive({ n: 2 });
    expect(frames).toEqual([2]);
  });

  test('sends its response headers at once when it has some, and none otherwise', () => {
    const withHeaders = setup({ headers: { 'x-currency-controller-accepts': 'Batch' } });
    withHeaders.link.open();
    expect(withHeaders.call.headers?.get('x-currency-controller-accepts')).toEqual(['Batch']);
    const without = setup();
    without.link.open();
    expect(without.call.headers).toBeUndefined();
  });

  test('a call already gone when the headers are sent does not throw; its events close the link', () => {
    const call = new FakeCall<In, Out>();
    call.sendMetadata = () => {
      throw new Error('call is gone');
    };
    const { link, closed } = setup({ call, headers: { a: 'b' } });
    expect(() => link.open()).not.toThrow();
    call.emit('close');
    expect(closed).toEqual(['lost']);
  });
});

describe('how a stream ends names its reason', () => {
  test("a clean half-close ('end', then 'finish') is answered with a clean end and closes as 'closed'", () => {
    const { call, link, closed } = setup();
    link.open();
    call.peerEnds();
    expect(call.status).toEqual({ code: grpc.status.OK, details: '' });
    expect(closed).toEqual(['closed']);
    expect(link.closed).toBe(true);
  });

  test("a dropped connection ('end', then 'cancelled' before any 'finish') closes as 'lost'", () => {
    const { call, link, closed } = setup();
    link.open();
    call.connectionDrops();
    call.emit('finish'); // late: the reason is settled already
    expect(closed).toEqual(['lost']);
  });

  test.each(['cancelled', 'error', 'close'])(
    "a '%s' event on its own closes as 'lost'",
    (event) => {
      const { call, link, closed } = setup();
      link.open();
      call.emit(event, { code: grpc.status.CANCELLED, details: 'x' });
      expect(closed).toEqual(['lost']);
    },
  );

  test("'finish' without the peer's 'end' (our side ended it, then the transport went) is 'lost'", () => {
    const { call, link, closed } = setup();
    link.open();
    call.emit('finish');
    expect(closed).toEqual(['lost']);
  });

  test('the owner hears of the close exactly once, whatever events follow', () => {
    const { call, link, closed } = setup();
    link.open();
    call.peerEnds();
    call.emit('cancelled');
    call.emit('error', { code: 1, details: '' });
    call.emit('close');
    link.close('kicked');
    expect(closed).toEqual(['closed']);
  });

  test('frames that arrive after the link closed are not handed on', () => {
    const { call, link, frames } = setup();
    link.open();
    call.receive({ n: 1 });
    link.close('kicked');
    call.receive({ n: 2 });
    expect(frames).toEqual([1]);
  });
});

describe('the controller ending a stream', () => {
  test.each(Object.keys(CLOSE_RULES) as CloseReason[])(
    "close('%s') sends the peer its rule's status with the reason in the close-reason trailer",
    (reason) => {
      const call = new FakeCall<In, Out>();
      let ended: grpc.Metadata | undefined;
      const end = call.end.bind(call);
      call.end = (md?: grpc.Metadata) => {
        ended = md;
        end();
      };
      const { link, closed } = setup({ call });
      link.open();
      link.close(reason, `because ${reason}`);
      // Settled as `reason`, even though ending the call emits 'error' at once.
      expect(closed).toEqual([reason]);
      const code = CLOSE_RULES[reason].code;
      if (code === grpc.status.OK) {
        expect(call.status).toEqual({ code: grpc.status.OK, details: '' });
        expect(trailerOf(ended)).toBe(reason);
      } else {
        expect(call.status).toMatchObject({ code, details: `because ${reason}` });
        expect(trailerOf(call.status?.metadata)).toBe(reason);
      }
    },
  );

  test('a close without details names the reason as the details', () => {
    const { call, link } = setup();
    link.open();
    link.close('replaced');
    expect(call.status).toMatchObject({ code: grpc.status.ABORTED, details: 'replaced' });
  });

  test('a second close changes nothing', () => {
    const { call, link, closed } = setup();
    link.open();
    link.close('kicked', 'first');
    link.close('shutdown', 'second');
    expect(closed).toEqual(['kicked']);
    expect(call.status?.details).toBe('first');
  });

  test('a close on a call that is already gone does not throw', () => {
    const call = new FakeCall<In, Out>();
    call.emit = () => {
      throw new Error('call is gone');
    };
    const { link, closed } = setup({ call });
    expect(() => link.close('kicked')).not.toThrow();
    expect(closed).toEqual(['kicked']);
  });
});

describe('sending', () => {
  test('writes while open, and refuses once closed', () => {
    const { call, link } = setup();
    link.open();
    expect(link.send({ m: 1 })).toBe(true);
    link.close('kicked');
    expect(link.send({ m: 2 })).toBe(false);
    expect(call.written).toEqual([{ m: 1 }]);
  });

  test("reports the transport's queue as queued()", () => {
    const { call, link } = setup();
    call.writableLength = 7;
    expect(link.queued()).toBe(7);
  });

  test('a peer that lets the send-queue limit pile up is disconnected as slow_consumer instead of written to', () => {
    const { call, link, closed } = setup({ maxQueuedMessages: 10 });
    link.open();
    call.writableLength = 9;
    expect(link.send({ m: 1 })).toBe(true);
    call.writableLength = 10;
    expect(link.send({ m: 2 })).toBe(false);
    expect(call.written).toEqual([{ m: 1 }]);
    expect(closed).toEqual(['slow_consumer']);
    expect(call.status).toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: 'not reading: 10 messages queued',
    });
  });

  test('a write that throws (the call went) is reported as not written', () => {
    const call = new FakeCall<In, Out>();
    call.write = () => {
      throw new Error('write after end');
    };
    const { link } = setup({ call });
    link.open();
    expect(link.send({ m: 1 })).toBe(false);
  });
});

describe('timers that die with the link', () => {
  test('after(ms) runs once when its time comes', () => {
    const { link, scheduler } = setup();
    link.open();
    const fired: number[] = [];
    link.after(100, () => fired.push(scheduler.now()));
    scheduler.advance(99);
    expect(fired).toEqual([]);
    scheduler.advance(1);
    scheduler.advance(1000);
    expect(fired).toHaveLength(1);
    expect(scheduler.pending()).toBe(0);
  });

  test('a cancelled timer never runs, and cancelling twice or after it ran is harmless', () => {
    const { link, scheduler } = setup();
    link.open();
    let fired = 0;
    const cancel = link.after(100, () => fired++);
    cancel();
    cancel();
    scheduler.advance(200);
    expect(fired).toBe(0);
    const cancelLater = link.after(10, () => fired++);
    scheduler.advance(10);
    expect(() => cancelLater()).not.toThrow();
    expect(fired).toBe(1);
  });

  test('closing the link clears its pending timers: none runs and none is left scheduled', () => {
    const { call, link, scheduler } = setup();
    link.open();
    let fired = 0;
    link.after(100, () => fired++);
    link.after(200, () => fired++);
    expect(scheduler.pending()).toBe(2);
    call.connectionDrops();
    expect(scheduler.pending()).toBe(0);
    scheduler.advance(1000);
    expect(fired).toBe(0);
  });
});

describe('request headers', () => {
  test('a text header is read as a string; an absent one is undefined', () => {
    const call = new FakeCall<In, Out>();
    call.metadata.set('x-currency-node-name', 'node-a');
    const { link } = setup({ call });
    expect(link.header('x-currency-node-name')).toBe('node-a');
    expect(link.header('x-other')).toBeUndefined();
  });

  test('a -bin header with valid UTF-8 wins over the text one (names beyond printable ASCII)', () => {
    const call = new FakeCall<In, Out>();
    call.metadata.set('x-currency-node-name', 'z%C3%BCrich');
    call.metadata.set('x-currency-node-name-bin', Buffer.from('zürich-1 ✓', 'utf8'));
    const { link } = setup({ call });
    expect(link.header('x-currency-node-name')).toBe('zürich-1 ✓');
  });

  test('a -bin header that is not UTF-8 falls back to the text header', () => {
    const call = new FakeCall<In, Out>();
    call.metadata.set('x-currency-node-name', 'fallback');
    call.metadata.set('x-currency-node-name-bin', Buffer.from([0xff, 0xfe, 0x80]));
    const { link } = setup({ call });
    expect(link.header('x-currency-node-name')).toBe('fallback');
  });
});
