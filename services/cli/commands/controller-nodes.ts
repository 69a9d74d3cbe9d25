import type { Command } from '../command';
import { age, isoOrNull } from '../format';
import { listNodes } from '../nodes';
import { type ViewResult, pollView, printView } from '../view';

export interface NodesArgs {
  /** Poll every `intervalMs` until interrupted. */
  watch?: boolean;
  intervalMs: number;
}

/** `controller nodes`: connected nodes with their known and streaming pairs, and their AGE. */
export const controllerNodes: Command<NodesArgs> = async (env, args) => {
  const fetch = async (): Promise<ViewResult> => {
    const r = await listNodes(env.session);
    if (!r.ok) return r;
    const now = Date.now();
    return {
      ok: true,
      view: {
        json: r.nodes.map((n) => ({ ...n, connectedAt: isoOrNull(n.connectedAt) })),
        headers: ['UUID', 'NAME', 'KNOWN PAIRS', 'STREAMING', 'AGE'],
        rows: r.nodes.map((n) => {
          const cells = [
            n.nodeUuid,
            n.name,
            n.knownCurrencyPairs.join(',') || '-',
            n.streamingCurrencyPairs.join(',') || '-',
          ];
          return {
            key: n.nodeUuid,
            cells: [...cells, age(n.connectedAt, now)],
            stable: JSON.stringify([...cells, n.connectedAt]),
          };
        }),
        note: `${r.nodes.length} node(s) connected\n`,
      },
    };
  };
  if (args.watch) return pollView(env, 'controller nodes', args.intervalMs, fetch);
  return printView(env, 'controller nodes', await fetch());
};
