import { EXIT } from '../../shared/program';
import type { Command } from '../command';
import { shown } from '../format';
import { json } from '../io';

/** `controller kick UUID...`: disconnects nodes; they reconnect by themselves. */
export const controllerKick: Command<{ nodeUuids: string[] }> = async (
  { session, io, opts },
  { nodeUuids },
) => {
  const r = await session.controllerCommand(
    'ControllerKickNodesV1Req',
    { nodeUuids },
    'ControllerKickNodesV1Reply',
  );
  if (!r.ok) {
    io.err(`controller kick: ${shown(r.problem)}\n`);
    return EXIT.FAILED;
  }
  const { kickedNodeUuids: kicked, unknownNodeUuids: unknown } = r.reply;
  if (opts.json) io.out(json({ kickedNodeUuids: kicked, unknownNodeUuids: unknown }));
  else for (const u of kicked) io.out(`kicked ${shown(u)}\n`);
  for (const u of unknown) io.err(`unknown node ${shown(u)}: not connected\n`);
  return unknown.length > 0 ? EXIT.FAILED : EXIT.OK;
};
