import { EXIT } from '../../shared/program';
import { isoFromTimestamp } from '../../shared/time';
import type { Command } from '../command';
import { json, table } from '../io';

/** `controller nodes`: connected nodes with their known and streaming pairs. */
export const controllerNodes: Command<void> = async ({ session, io, opts }) => {
  const r = await session.controllerCommand(
    'ControllerListNodesV1Req',
    {},
    'ControllerListNodesV1Reply',
  );
  if (!r.ok) {
    io.err(`controller nodes: ${r.problem}\n`);
    return EXIT.FAILED;
  }
  // Peers of the original design send only node_uuids; show those with empty details.
  const details = new Map(r.reply.nodes.map((n) => [n.nodeUuid, n]));
  const nodes = r.reply.nodeUuids.map((uuid) => {
    const n = details.get(uuid);
    return {
      nodeUuid: uuid,
      name: n?.name ?? '',
      knownCurrencyPairs: n?.knownCurrencyPairs ?? [],
      streamingCurrencyPairs: n?.streamingCurrencyPairs ?? [],
      connectedAt: isoFromTimestamp(n?.connectedAt),
      peer: n?.peer ?? '',
    };
  });
  if (opts.json) {
    io.out(json(nodes));
  } else {
    io.out(
      table(
        ['UUID', 'NAME', 'KNOWN PAIRS', 'STREAMING', 'CONNECTED AT'],
        nodes.map((n) => [
          n.nodeUuid,
          n.name,
          n.knownCurrencyPairs.join(',') || '-',
          n.streamingCurrencyPairs.join(',') || '-',
          n.connectedAt,
        ]),
      ),
    );
    io.err(`${nodes.length} node(s) connected\n`);
  }
  return EXIT.OK;
};
