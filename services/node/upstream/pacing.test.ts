import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { MessagePacer, TokenBucket } from './pacing';

describe('TokenBucket', () => {
  test('starts full (ceil of the rate), then earns rate tokens a second up to the burst', () => {
    const clock = fakeScheduler();
    const bucket = new TokenBucket(clock.now, 2.5);
    expect(bucket.burst).toBe(3);
    expect([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    // Empty: a token in 1 / 2.5 s.
    expect(bucket.waitMs()).toBe(400);
    clock.advance(399);
    bucket.refill();
    expect(bucket.tryTake()).toBe(false);
    clock.advance(1);
    bucket.refill();
    expect(bucket.tryTake()).toBe(true);
    // A long quiet spell refills to the burst, no more.
    clock.advance(60_000);
    bucket.refill();
    let taken = 0;
    while (bucket.tryTake()) taken++;
    expect(taken).toBe(3);
  });

  test('a rate below one still holds one token, and waits at least 1 ms', () => {
    const clock = fakeScheduler();
    const bucket = new TokenBucket(clock.now, 0.5);
    expect(bucket.burst).toBe(1);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.waitMs()).toBe(2000);
    clock.advance(2000);
    bucket.refill();
    expect(bucket.waitMs()).toBe(1);
    expect(bucket.tryTake()).toBe(true);
  });
});

describe('MessagePacer', () => {
  function setup(rate = 2) {
    const clock = fakeScheduler();
    const sent: Array<[number, string]> = [];
    const start = clock.now();
    const pacer = new MessagePacer(clock, rate, (m) => sent.push([clock.now() - start, m]));
    return { clock, sent, pacer };
  }

  test('the first message goes at once, the next ones one spacing apart, in order', () => {
    const { clock, sent, pacer } = setup(2);
    pacer.send('a');
    pacer.send('b');
    pacer.send('c');
    expect(sent).toEqual([[0, 'a']]);
    expect(pacer.waiting('b')).toBe(true);
    clock.advance(499);
    expect(sent).toHaveLength(1);
    clock.advance(1);
    expect(sent).toEqual([
      [0, 'a'],
      [500, 'b'],
    ]);
    clock.advance(500);
    expect(sent.map(([, m]) => m)).toEqual(['a', 'b', 'c']);
    expect(sent[2]![0]).toBe(1000);
    expect(pacer.waiting('c')).toBe(false);
    // After a quiet spell a message goes at once again.
    clock.advance(10_000);
    pacer.send('d');
    expect(sent[3]).toEqual([11_000, 'd']);
  });

  test('flush sends what waits out of turn; stop drops it and sends nothing after', () => {
    const { clock, sent, pacer } = setup(1);
    pacer.send('a');
    pacer.send('b');
    pacer.send('c');
    pacer.flush();
    expect(sent.map(([t, m]) => `${t}:${m}`)).toEqual(['0:a', '0:b', '0:c']);
    pacer.send('d');
    pacer.stop();
    pacer.send('e');
    clock.advance(5000);
    expect(sent.map(([, m]) => m)).toEqual(['a', 'b', 'c']);
    expect(clock.pending()).toBe(0);
  });
});
