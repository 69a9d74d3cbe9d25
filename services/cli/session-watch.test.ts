/**
 * `CliSession.watch` (session.ts) on a fake client stream and the fake scheduler, no gRPC
 * (tests/support/fake-cli-client.ts): batched updates, the V1 fallback, and how a watch ends.
 */
import * as grpc from '@grpc/grpc-js';
import { opened, resetFakes } from '../../tests/support/fake-cli-client';
import type { CliSession } from './session';

jest.mock('../shared/wire', () =>
  jest
    .requireActual<typeof import('../../tests/support/fake-cli-client')>(
      '../../tests/support/fake-cli-client',
    )
    .wireMock(),
);
jest.mock('./diagnose', () =>
  jest
    .requireActual<typeof import('../../tests/support/fake-cli-client')>(
      '../../tests/support/fake-cli-client',
    )
    .diagnoseMock(),
);

beforeEach(() => resetFakes());

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

describe('watching prices', () => {
  type Update = { node: string; pair: string; price: number };

  function watching(session: CliSession, pairs: string[], signal = new AbortController().signal) {
    const starts: string[][] = [];
    const updates: Update[] = [];
    const done = session.watch(
      pairs,
      signal,
      (p) => starts.push(p),
      (node, u) => updates.push({ node, pair: u.currencyPair, price: u.price }),
    );
    return { starts, updates, done };
  }

  test('asks for batched updates, and hands on each update of each batch with its node', async () => {
    const { session, stream } = await opened();
    const stop = new AbortController();
    const w = watching(session, ['BTC_USD'], stop.signal);
    const req = stream.last();
    expect(req.name).toBe('ControllerWatchPricesV2Req');
    expect(req.message).toEqual({ currencyPairs: ['BTC_USD'] });
    stream.answer(req.streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: ['BTC_USD'] });
    stream.answer(req.streamId, 'ControllerPriceUpdatesV1Notify', {
      prices: [
        { currencyPair: 'BTC_USD', price: 1, nodeUuid: A },
        { currencyPair: 'BTC_USD', price: 2, nodeUuid: B },
      ],
    });
    stop.abort();
    await expect(w.done).resolves.toMatchObject({ ended: 'interrupted' });
    expect(w.starts).toEqual([['BTC_USD']]);
    expect(w.updates).toEqual([
      { node: A, pair: 'BTC_USD', price: 1 },
      { node: B, pair: 'BTC_USD', price: 2 },
    ]);
  });

  test('falls back to a V1 watch on a fresh stream_id when the controller does not know V2', async () => {
    const { session, stream } = await opened();
    const stop = new AbortController();
    const w = watching(session, [], stop.signal);
    const v2 = stream.last();
    stream.answer(v2.streamId, 'UnknownCommandV1Notify', {});
    const v1 = stream.last();
    expect(v1.name).toBe('ControllerWatchPricesV1Req');
    expect(v1.streamId).not.toBe(v2.streamId);
    stream.answer(v1.streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: ['EUR_USD'] });
    stream.answer(
      v1.streamId,
      'NodePriceUpdateV1Notify',
      { currencyPair: 'EUR_USD', price: 1.08 },
      A,
    );
    // The abandoned V2 stream_id is not listened to any more.
    stream.answer(v2.streamId, 'NodePriceUpdateV1Notify', { currencyPair: 'EUR_USD', price: 9 }, A);
    stop.abort();
    await w.done;
    expect(w.starts).toEqual([['EUR_USD']]);
    expect(w.updates).toEqual([{ node: A, pair: 'EUR_USD', price: 1.08 }]);
  });

  test('a refusal instead of the watch reply ends the watch as rejected, saying why', async () => {
    const { session, stream } = await opened();
    const w = watching(session, ['bad pair']);
    stream.answer(stream.last().streamId, 'CliErrorV1Notify', {
      message: 'invalid pair "bad pair"',
      code: 3,
    });
    await expect(w.done).resolves.toMatchObject({
      ended: 'rejected',
      problem: 'the controller rejected the command: invalid pair "bad pair"',
    });
    expect(w.starts).toEqual([]);
  });

  test('the stream closing ends the watch as closed, with why', async () => {
    const { session, stream } = await opened();
    const w = watching(session, []);
    stream.answer(stream.last().streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: [] });
    stream.fails(grpc.status.UNAVAILABLE, 'controller went away');
    await expect(w.done).resolves.toMatchObject({
      ended: 'closed',
      problem: 'stream to the controller failed: controller went away',
    });
  });

  test('a watch has no timeout: it runs until stopped, however long', async () => {
    const { session, stream, scheduler } = await opened({ timeoutMs: 1000 });
    const stop = new AbortController();
    const w = watching(session, [], stop.signal);
    const { streamId } = stream.last();
    stream.answer(streamId, 'ControllerWatchPricesV1Reply', { currencyPairs: [] });
    scheduler.advance(3_600_000);
    stream.answer(streamId, 'NodePriceUpdateV1Notify', { currencyPair: 'BTC_USD', price: 5 }, A);
    stop.abort();
    await w.done;
    expect(w.updates).toEqual([{ node: A, pair: 'BTC_USD', price: 5 }]);
  });

  test('an already-stopped watch, or one on a closed stream, ends at once', async () => {
    const { session, stream } = await opened();
    const stopped = new AbortController();
    stopped.abort();
    await expect(watching(session, [], stopped.signal).done).resolves.toMatchObject({
      ended: 'interrupted',
    });
    stream.closes();
    await expect(watching(session, []).done).resolves.toMatchObject({
      ended: 'closed',
      problem: 'the controller closed the stream',
    });
  });
});
