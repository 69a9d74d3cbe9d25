import { EXIT } from '../../shared/program';
import { isoFromTimestamp } from '../../shared/time';
import type { Command } from '../command';

/**
 * `watch [--pair PAIR ...]`: live price updates until interrupted (exit 0), or until the
 * controller goes away (exit 1). With --json, one JSON object per line (NDJSON).
 */
export const watch: Command<{ pairs: string[] }> = async ({ session, io, opts }, { pairs }) => {
  const r = await session.watch(
    pairs,
    io.signal,
    (watched) =>
      io.err(
        `watching ${watched.length > 0 ? watched.join(', ') : 'all pairs'} (Ctrl-C to stop)\n`,
      ),
    (nodeUuid, u) => {
      const at = isoFromTimestamp(u.priceUpdatedAt);
      io.out(
        opts.json
          ? JSON.stringify({
              currencyPair: u.currencyPair,
              price: u.price,
              priceUpdatedAt: at,
              nodeUuid,
            }) + '\n'
          : `${at}  ${u.currencyPair.padEnd(10)} ${String(u.price).padStart(14)}  ${nodeUuid}\n`,
      );
    },
  );
  if (r.ended === 'interrupted') return EXIT.OK;
  io.err(`watch: ${r.problem ?? 'stream ended'}\n`);
  return EXIT.FAILED;
};
