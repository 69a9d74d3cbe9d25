import { EXIT } from '../../shared/program';
import { isoFromTimestamp } from '../../shared/time';
import type { Command } from '../command';
import { json, table } from '../io';

/** `controller prices`: the latest price per pair, when it was set, and which node sent it. */
export const controllerPrices: Command<void> = async ({ session, io, opts }) => {
  const r = await session.controllerCommand('ControllerPricesV1Req', {}, 'ControllerPricesV1Reply');
  if (!r.ok) {
    io.err(`controller prices: ${r.problem}\n`);
    return EXIT.FAILED;
  }
  const prices = r.reply.prices.map((p) => ({
    currencyPair: p.currencyPair,
    price: p.price,
    priceUpdatedAt: isoFromTimestamp(p.priceUpdatedAt),
    nodeUuid: p.nodeUuid,
  }));
  if (opts.json) io.out(json(prices));
  else
    io.out(
      table(
        ['PAIR', 'PRICE', 'UPDATED AT', 'NODE'],
        prices.map((p) => [p.currencyPair, String(p.price), p.priceUpdatedAt, p.nodeUuid]),
      ),
    );
  return EXIT.OK;
};
