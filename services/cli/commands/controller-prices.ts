import { EXIT } from '../../shared/program';
import type { Command } from '../command';
import { isoOrNull, jsonPrice, showPrice, showTime, shown } from '../format';
import { json, table } from '../io';
import { nodeNames } from '../nodes';

/** `controller prices`: the latest price per pair, when it was set, and which node sent it. */
export const controllerPrices: Command<void> = async ({ session, io, opts }) => {
  const [r, names] = await Promise.all([
    session.controllerCommand('ControllerPricesV1Req', {}, 'ControllerPricesV1Reply'),
    nodeNames(session),
  ]);
  if (!r.ok) {
    io.err(`controller prices: ${shown(r.problem)}\n`);
    return EXIT.FAILED;
  }
  const prices = r.reply.prices;
  if (opts.json)
    io.out(
      json(
        prices.map((p) => ({
          currencyPair: p.currencyPair,
          price: jsonPrice(p.price),
          priceUpdatedAt: isoOrNull(p.priceUpdatedAt),
          nodeUuid: p.nodeUuid,
          nodeName: names.get(p.nodeUuid) ?? '',
        })),
      ),
    );
  else
    io.out(
      table(
        ['PAIR', 'PRICE', 'UPDATED AT', 'NODE', 'NAME'],
        prices.map((p) => [
          p.currencyPair,
          showPrice(p.price),
          showTime(p.priceUpdatedAt),
          p.nodeUuid,
          names.get(p.nodeUuid) ?? '',
        ]),
      ),
    );
  return EXIT.OK;
};
