import type { Command } from '../command';
import { showTime, shown } from '../format';
import { type NodeTargets, runNodeCommand } from './node-command';

/** `node shutdown (--node-uuid UUID... | --all)`: nodes answer, close their stream and exit. */
export const nodeShutdown: Command<NodeTargets> = (env, targets) =>
  runNodeCommand(env, 'node shutdown', 'NodeShutdownV1Req', {}, targets, ({ nodeUuid, reply }) =>
    reply.name === 'NodeShutdownV1Reply'
      ? `${shown(nodeUuid)}: shutting down (at ${showTime(reply.message.shutdownAt)})\n`
      : `${shown(nodeUuid)}: ${reply.name}\n`,
  );
