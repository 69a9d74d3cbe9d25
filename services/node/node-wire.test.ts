/** The node's frames (node-wire.ts): the announcement and the price sink over a link. */
import type { StreamFromNode } from '../gen/protobuf/currency_nodes';
import { unpack } from '../shared/any';
import type { Link } from './link';
import { announcementFrame, priceSink } from './node-wire';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';

function setup(link?: Partial<Link>) {
  const written: StreamFromNode[] = [];
  const sent: string[] = [];
  let dropped = 0;
  const l = link && ({ write: (m: StreamFromNode) => written.push(m), ...link } as Link);
  const sink = priceSink({
    nodeUuid: UUID,
    metrics: {
      priceUpdatesSent: { inc: (x: { pair: string }) => sent.push(x.pair) },
      priceUpdatesDropped: { inc: (n: number) => (dropped += n) },
    } as unknown as Parameters<typeof priceSink>[0]['metrics'],
    link: () => l,
  });
  const decoded = () =>
    written.map((w) => {
      const u = unpack(w.response);
      if (!u.ok) throw new Error('undecodable');
      return { nodeUuid: w.nodeUuid, name: u.value.name, message: u.value.message };
    });
  return { sink, decoded, sent, dropped: () => dropped };
}

const update = (currencyPair: string, price: number) => ({
  currencyPair,
  price,
  updatedAtMs: 1_700_000_000_123,
});

test('the announcement names the pairs known now', () => {
  const f = announcementFrame(UUID, ['USD_HKD']);
  const u = unpack(f.response);
  expect(f.nodeUuid).toBe(UUID);
  expect(u.ok && u.value).toEqual({
    name: 'NodeKnownCurrenciesV1Notify',
    message: { knownCurrencyPairs: ['USD_HKD'] },
  });
});

test('without a registered stream the sink is not ready and writes nothing', () => {
  const t = setup();
  expect(t.sink.ready()).toBe(false);
  expect(t.sink.backedUp()).toBe(false);
  expect(t.sink.takesBatches()).toBe(false);
});

test('one update goes in a frame of its own, counted per pair', () => {
  const t = setup({ acceptsPriceBatches: false, backedUp: () => false });
  expect(t.sink.ready()).toBe(true);
  t.sink.sendOne(update('USD_HKD', 7.8), false);
  const [f] = t.decoded();
  expect(f!.nodeUuid).toBe(UUID);
  expect(f!.name).toBe('NodePriceUpdateV1Notify');
  expect(f!.message).toMatchObject({ currencyPair: 'USD_HKD', price: 7.8 });
  expect(t.sent).toEqual(['USD_HKD']);
});

test('a batch goes in one frame, each update counted; drops are counted', () => {
  const t = setup({ acceptsPriceBatches: true, backedUp: () => true });
  expect(t.sink.takesBatches()).toBe(true);
  expect(t.sink.backedUp()).toBe(true);
  t.sink.sendBatch([update('USD_HKD', 7.8), update('EUR_USD', 1.1)]);
  expect(t.decoded().map((f) => f.name)).toEqual(['NodePriceUpdatesV1Notify']);
  expect(t.sent).toEqual(['USD_HKD', 'EUR_USD']);
  t.sink.dropped(2);
  expect(t.dropped()).toBe(2);
});
