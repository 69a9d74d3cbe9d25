/**
 * `controller prices` (controller-prices.ts): the latest price per pair, when, and from
 * which node (named when the node list can be had). Whatever the wire carries (a NaN
 * price, a timestamp out of range) is shown, never thrown on. The session is a fake.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import { timestampFromMs } from '../../shared/time';
import type { ControllerResult } from '../session';
import { controllerPrices } from './controller-prices';
import {
  fakeCliSession,
  namedNodes,
  noPagedNodeList,
} from '../../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const AT = Date.UTC(2026, 0, 2, 3, 4, 5);

type Price = MessageOf<'ControllerPricesV1Reply'>['prices'][number];

async function run(
  prices: ControllerResult<'ControllerPricesV1Reply'>,
  json = false,
  namesAvailable = true,
) {
  const t = fakeCliSession(
    {
      controllerFrames: noPagedNodeList,
      controllerCommand: (name: string) =>
        Promise.resolve(
          name === 'ControllerListNodesV1Req'
            ? namesAvailable
              ? namedNodes([A, 'alpha'])
              : { ok: false, problem: 'no list' }
            : prices,
        ),
    },
    { opts: { json } },
  );
  const code = await controllerPrices(t.env, undefined);
  return { code, out: t.out(), err: t.err() };
}

const price = (
  currencyPair: string,
  p: number,
  nodeUuid: string,
  at = timestampFromMs(AT),
): Price => ({
  currencyPair,
  price: p,
  priceUpdatedAt: at,
  nodeUuid,
});

describe('controller prices', () => {
  test('a table of pair, price, time, node and its name (empty when not known)', async () => {
    const r = await run({
      ok: true,
      reply: { prices: [price('BTC_USD', 65000.5, A), price('EUR_USD', 1.08, B)] },
    });
    expect(r.code).toBe(EXIT.OK);
    expect(r.out.split('\n')).toEqual([
      'PAIR     PRICE    UPDATED AT                NODE                                  NAME',
      `BTC_USD  65000.5  2026-01-02T03:04:05.000Z  ${A}  alpha`,
      `EUR_USD  1.08     2026-01-02T03:04:05.000Z  ${B}`,
      '',
    ]);
  });

  test('a node list that cannot be had only costs the names', async () => {
    const r = await run({ ok: true, reply: { prices: [price('BTC_USD', 1, A)] } }, false, false);
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toContain(`BTC_USD  1      2026-01-02T03:04:05.000Z  ${A}\n`);
  });

  test('an invalid price or time from the wire is shown as invalid in the table, null in --json', async () => {
    const bad = { prices: [price('BTC_USD', NaN, A, { seconds: 1e15, nanos: 0 })] };
    const table = await run({ ok: true, reply: bad });
    expect(table.out).toContain('invalid (NaN)');
    expect(table.out).toContain('invalid (seconds=1000000000000000, nanos=0)');
    const json = await run({ ok: true, reply: bad }, true);
    expect(JSON.parse(json.out)).toEqual([
      {
        currencyPair: 'BTC_USD',
        price: null,
        priceUpdatedAt: null,
        nodeUuid: A,
        nodeName: 'alpha',
      },
    ]);
  });

  test('--json: one array, ISO times, node names', async () => {
    const r = await run({ ok: true, reply: { prices: [price('EUR_USD', 1.08, B)] } }, true);
    expect(JSON.parse(r.out)).toEqual([
      {
        currencyPair: 'EUR_USD',
        price: 1.08,
        priceUpdatedAt: '2026-01-02T03:04:05.000Z',
        nodeUuid: B,
        nodeName: '',
      },
    ]);
  });

  test('a failed request is exit 1 with the problem', async () => {
    const r = await run({ ok: false, problem: 'timed out after 1 s' });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe('controller prices: timed out after 1 s\n');
    expect(r.out).toBe('');
  });
});
