import { EXIT } from '../../shared/program';
import type { Command } from '../command';
import { json, table } from '../io';

/** `controller streams`: every known pair and the node(s) streaming it; unstreamed pairs shown too. */
export const controllerStreams: Command<void> = async ({ session, io, opts }) => {
  const r = await session.controllerCommand(
    'ControllerStreamsV1Req',
    {},
    'ControllerStreamsV1Reply',
  );
  if (!r.ok) {
    io.err(`controller streams: ${r.problem}\n`);
    return EXIT.FAILED;
  }
  const pairs = r.reply.pairs.map((p) => ({
    currencyPair: p.currencyPair,
    nodeUuids: p.nodeUuids,
    capableNodes: p.capableNodes,
    desiredStreams: p.desiredStreams,
  }));
  if (opts.json) {
    io.out(json(pairs));
  } else {
    io.out(
      table(
        ['PAIR', 'STREAMS', 'CAPABLE', 'NODES'],
        pairs.map((p) => [
          p.currencyPair,
          `${p.nodeUuids.length}/${p.desiredStreams}`,
          String(p.capableNodes),
          p.nodeUuids.join(',') || '(none)',
        ]),
      ),
    );
    const unstreamed = pairs.filter((p) => p.nodeUuids.length === 0).length;
    if (unstreamed > 0) io.err(`${unstreamed} known pair(s) have no streaming node\n`);
  }
  return EXIT.OK;
};
