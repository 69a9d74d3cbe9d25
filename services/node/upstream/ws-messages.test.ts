import { pairVars } from './extract';
import {
  pairsNamed,
  sharesSubscription,
  subscribeMessage,
  textOf,
  unsubscribeMessage,
} from './ws-messages';

const vars = (pair: string, symbols: Record<string, string> = {}) =>
  pairVars(pair, '{base}{quote}', symbols);

test('subscribe and unsubscribe messages are filled per pair, escaped for JSON strings', () => {
  const config = {
    subscribe: '{"op":"subscribe","symbol":"{symbol}"}',
    unsubscribe: '{"op":"unsubscribe","symbol":"{symbol}"}',
  };
  expect(subscribeMessage(config, vars('BTC_USD'))).toBe('{"op":"subscribe","symbol":"BTCUSD"}');
  expect(unsubscribeMessage(config, vars('BTC_USD', { BTC_USD: 'a"b' }))).toBe(
    '{"op":"unsubscribe","symbol":"a\\"b"}',
  );
  expect(subscribeMessage({}, vars('BTC_USD'))).toBeUndefined();
  expect(unsubscribeMessage({}, vars('BTC_USD'))).toBeUndefined();
});

test('a subscription is shared when another pair sends the same message', () => {
  const config = { subscribe: '{"s":"{symbol}"}', unsubscribe: '{"u":"{symbol}"}' };
  const btc = vars('BTC_USD', { BTC_USD: 'btc' });
  const alias = vars('XBT_USD', { XBT_USD: 'btc' });
  const eth = vars('ETH_USD');
  expect(sharesSubscription(config, btc, [eth, alias])).toBe(true);
  expect(sharesSubscription(config, btc, [eth])).toBe(false);
  expect(sharesSubscription({}, btc, [alias])).toBe(false);
  // One message per connection for everything: every pair shares it.
  expect(sharesSubscription({ subscribe: '{"all":true}' }, btc, [eth])).toBe(true);
});

describe('pairsNamed', () => {
  const followed = new Map([
    ['BTC_USD', vars('BTC_USD')],
    ['ETH_USD', vars('ETH_USD')],
  ]);

  test('without a symbol path every followed pair', () => {
    expect(pairsNamed({ p: 1 }, undefined, followed)).toBe(followed);
  });

  test('with one, the pairs whose symbol it names, in any case', () => {
    expect([...pairsNamed({ s: 'ethusd' }, 's', followed)].map(([p]) => p)).toEqual(['ETH_USD']);
    expect([...pairsNamed({ s: 'XRPUSD' }, 's', followed)]).toEqual([]);
  });

  test('none when the message names no symbol (an acknowledgement, a heartbeat)', () => {
    expect([...pairsNamed({ op: 'subscribed' }, 's', followed)]).toEqual([]);
    expect([...pairsNamed({ s: { x: 1 } }, 's', followed)]).toEqual([]);
  });
});

test('text of a message in any of the buffer shapes ws delivers', () => {
  const b = Buffer.from('{"a":1}');
  expect(textOf(b)).toBe('{"a":1}');
  expect(textOf([b.subarray(0, 3), b.subarray(3)])).toBe('{"a":1}');
  expect(textOf(b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer)).toBe(
    '{"a":1}',
  );
});
