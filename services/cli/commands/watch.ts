import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import type { TimerHandle } from '../../shared/scheduler';
import type { Command } from '../command';
import { isoOrNull, jsonPrice, showPrice, showTime, shown } from '../format';
import { Handover } from '../handover';
import { nodeNames, withName } from '../nodes';

/** A node that joined after the start is named after at most one refresh this often. */
const NAME_REFRESH_MS = 10_000;
/** The first lookup may hold the subscription back this long at most. */
const FIRST_NAMES_MS = 1000;

/**
 * `watch [--pair PAIR ...]`: live price updates until interrupted (exit 0). A controller
 * handover (the leader stops, the connection is lost, the controller stops leading) is
 * followed: stderr says so, the watch reconnects and carries on (handover.ts); no leader
 * within --reconnect-timeout: exit 3. With --json, one JSON object per line (NDJSON), exactly
 * the controller's updates (join on nodeUuid with `controller nodes`); the human form
 * names the node (looked up first, for at most FIRST_NAMES_MS, then refreshed alongside).
 */
export const watch: Command<{ pairs: string[] }> = async (env, { pairs }) => {
  const { session, io, opts, scheduler } = env;
  let names = new Map<string, string>();
  let refreshedAt = 0;
  const refreshNames = () => {
    if (opts.json || scheduler.now() - refreshedAt < NAME_REFRESH_MS) return Promise.resolve();
    refreshedAt = scheduler.now();
    return nodeNames(session).then((n) => {
      if (n.size > 0) names = n;
    });
  };
  let capTimer: TimerHandle | undefined;
  await Promise.race([
    refreshNames(),
    new Promise<void>((resolve) => (capTimer = scheduler.setTimeout(resolve, FIRST_NAMES_MS))),
  ]);
  if (capTimer !== undefined) scheduler.clearTimeout(capTimer);
  const onUpdate = (nodeUuid: string, u: MessageOf<'NodePriceUpdateV1Notify'>) => {
    if (nodeUuid !== '' && !names.has(nodeUuid)) void refreshNames();
    io.out(
      opts.json
        ? JSON.stringify({
            currencyPair: u.currencyPair,
            price: jsonPrice(u.price),
            priceUpdatedAt: isoOrNull(u.priceUpdatedAt),
            nodeUuid,
          }) + '\n'
        : `${showTime(u.priceUpdatedAt)}  ${shown(u.currencyPair).padEnd(10)} ${showPrice(u.price).padStart(14)}  ${shown(withName(nodeUuid, names))}\n`,
    );
  };
  const handover = new Handover(env, 'watch');
  let worked = false;
  for (;;) {
    const r = await session.watch(
      pairs,
      io.signal,
      (watched) => {
        if (handover.active) handover.ok();
        else
          io.err(
            `watching ${watched.length > 0 ? shown(watched.join(', ')) : 'all pairs'} (Ctrl-C to stop)\n`,
          );
      },
      onUpdate,
    );
    if (r.ended === 'interrupted') return EXIT.OK;
    worked ||= r.started;
    const code = await handover.failed(r.problem ?? 'stream ended', worked);
    if (code !== undefined) return code;
  }
};
