/**
 * `watch` (watch.ts) on the fake scheduler, its session a fake: the first name lookup holds
 * the subscription back for at most 1 s, and a node that joined later is named after at
 * most one lookup per 10 s.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { fakeScheduler } from '../../../tests/support/fake-scheduler';
import { fakeCliSession } from '../../../tests/support/fake-cli-session';
import type { FramesResult, WatchEnd } from '../session';
import { watch } from './watch';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

type Page = MessageOf<'ControllerListNodesPageV1'>;
type OnUpdate = (nodeUuid: string, u: MessageOf<'NodePriceUpdateV1Notify'>) => void;

function setup() {
  /** The nodes the controller lists now; undefined: the lookup gets no answer. */
  let listed: { nodeUuid: string; name: string }[] | undefined = [];
  let lookups = 0;
  let subscribed: OnUpdate | undefined;
  const t = fakeCliSession(
    {
      address: 'c:1',
      controllerFrames: (
        _n: string,
        _m: unknown,
        _e: string,
        onReply: (p: Page) => boolean,
      ): Promise<FramesResult> => {
        lookups++;
        if (!listed) return new Promise(() => undefined);
        onReply({
          page: 0,
          last: true,
          totalNodes: listed.length,
          nodes: listed.map((n) => ({
            ...n,
            knownCurrencyPairs: [],
            streamingCurrencyPairs: [],
            peer: '',
          })),
        } as Page);
        return Promise.resolve({ ok: true });
      },
      watch: (
        _pairs: string[],
        signal: AbortSignal,
        onStart: (p: string[]) => void,
        onUpdate: OnUpdate,
      ): Promise<WatchEnd> => {
        subscribed = onUpdate;
        onStart([]);
        return new Promise((r) =>
          signal.addEventListener('abort', () => r({ ended: 'interrupted', started: true })),
        );
      },
    },
    { scheduler: fakeScheduler() },
  );
  const settle = () => new Promise((r) => setImmediate(r));
  const price = (nodeUuid: string) =>
    subscribed!(nodeUuid, { currencyPair: 'USD_HKD', price: 7.8, priceUpdatedAt: undefined });
  return {
    scheduler: t.scheduler,
    env: t.env,
    abort: t.abort,
    settle,
    price,
    out: t.out,
    lookups: () => lookups,
    subscribed: () => subscribed !== undefined,
    list: (l: typeof listed) => (listed = l),
  };
}

test('a first name lookup that gets no answer holds the subscription back for 1 s at most', async () => {
  const t = setup();
  t.list(undefined);
  const code = watch(t.env, { pairs: [] });
  await t.settle();
  t.scheduler.advance(999);
  await t.settle();
  expect(t.subscribed()).toBe(false);
  t.scheduler.advance(1);
  await t.settle();
  expect(t.subscribed()).toBe(true);
  t.abort();
  expect(await code).toBe(EXIT.OK);
});

test('a node that joined later is named after at most one lookup per 10 s', async () => {
  const t = setup();
  t.list([{ nodeUuid: A, name: 'edge-1' }]);
  const code = watch(t.env, { pairs: [] });
  await t.settle();
  expect(t.subscribed()).toBe(true);
  expect(t.lookups()).toBe(1);
  t.price(A);
  expect(t.out()).toContain(`${A} (edge-1)`);
  // B joins: not named yet, and not looked up again within 10 s of the last lookup.
  t.list([
    { nodeUuid: A, name: 'edge-1' },
    { nodeUuid: B, name: 'edge-2' },
  ]);
  t.scheduler.advance(9_999);
  t.price(B);
  t.price(B);
  await t.settle();
  expect(t.lookups()).toBe(1);
  expect(t.out()).not.toContain('edge-2');
  t.scheduler.advance(1);
  t.price(B);
  await t.settle();
  expect(t.lookups()).toBe(2);
  t.price(B);
  expect(t.out()).toContain(`${B} (edge-2)`);
  t.abort();
  expect(await code).toBe(EXIT.OK);
});
