import { EXIT } from '../../shared/program';
import type { Command } from '../command';
import { shown } from '../format';
import { nodeNames, withName } from '../nodes';
import { type ViewResult, pollView, printView } from '../view';

export interface StreamsArgs {
  /** Exit 1 when a known pair has fewer streamers than desired. */
  check?: boolean;
  watch?: boolean;
  intervalMs: number;
}

/** `controller streams`: every known pair and the node(s) streaming it; unstreamed pairs shown too. */
export const controllerStreams: Command<StreamsArgs> = async (env, args) => {
  const fetch = async (): Promise<ViewResult> => {
    const [r, names] = await Promise.all([
      env.session.controllerCommand('ControllerStreamsV1Req', {}, 'ControllerStreamsV1Reply'),
      nodeNames(env.session),
    ]);
    if (!r.ok) return r;
    const pairs = r.reply.pairs;
    const short = pairs.filter((p) => p.nodeUuids.length < p.desiredStreams);
    const unstreamed = pairs.filter((p) => p.nodeUuids.length === 0).length;
    const notes = [
      unstreamed > 0 ? `${unstreamed} known pair(s) have no streaming node\n` : '',
      args.check && short.length > 0
        ? `check failed: ${short.length} pair(s) have fewer streamers than desired: ` +
          short
            .map(
              (p) =>
                `${shown(p.currencyPair)} ${p.nodeUuids.length}/${p.desiredStreams} (${p.capableNodes} capable)`,
            )
            .join(', ') +
          '\n'
        : '',
    ];
    return {
      ok: true,
      view: {
        json: pairs.map((p) => ({
          currencyPair: p.currencyPair,
          nodeUuids: p.nodeUuids,
          nodes: p.nodeUuids.map((u) => ({ nodeUuid: u, name: names.get(u) ?? '' })),
          capableNodes: p.capableNodes,
          desiredStreams: p.desiredStreams,
        })),
        headers: ['PAIR', 'STREAMS', 'CAPABLE', 'NODES'],
        rows: pairs.map((p) => {
          const cells = [
            p.currencyPair,
            `${p.nodeUuids.length}/${p.desiredStreams}`,
            String(p.capableNodes),
            p.nodeUuids.map((u) => withName(u, names)).join(', ') || '(none)',
          ];
          return {
            key: p.currencyPair,
            cells,
            stable: cells.join('\t'),
            tone:
              p.nodeUuids.length === 0
                ? 'bad'
                : p.nodeUuids.length < p.desiredStreams
                  ? 'warn'
                  : undefined,
          };
        }),
        note: notes.join(''),
        exit: args.check && short.length > 0 ? EXIT.FAILED : EXIT.OK,
      },
    };
  };
  if (args.watch) return pollView(env, 'controller streams', args.intervalMs, fetch);
  const r = await fetch();
  const code = printView(env, 'controller streams', r);
  // --check speaks on stderr even with --json: scripts read the exit code, people the reason.
  if (r.ok && env.opts.json && args.check && r.view.exit === EXIT.FAILED && r.view.note)
    env.io.err(r.view.note);
  return code;
};
