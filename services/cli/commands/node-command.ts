import type { MessageName, MessageOf } from '../../shared/any';
import { toJson } from '../../shared/any';
import { EXIT } from '../../shared/program';
import type { CommandEnv } from '../command';
import { json } from '../io';
import type { NodeReply, NodeResult } from '../session';

export interface NodeTargets {
  /** Empty means every connected node (`--all`). */
  nodeUuids: string[];
}

/**
 * Sends a command to nodes through the controller and waits for exactly the replies the
 * controller said to expect. Exit 0 when every expected node answered and no requested
 * UUID was unknown; otherwise 1, naming the silent and the unknown nodes.
 */
export async function runNodeCommand<N extends MessageName>(
  { session, io, opts }: CommandEnv,
  label: string,
  name: N,
  message: MessageOf<N>,
  targets: NodeTargets,
  describe: (reply: NodeReply) => string,
): Promise<number> {
  const r: NodeResult = await session.nodeCommand(name, message, targets.nodeUuids);
  if (opts.json) {
    io.out(
      json({
        expectedNodeUuids: r.expected,
        replies: r.replies.map((x) => ({
          nodeUuid: x.nodeUuid,
          type: x.reply.name,
          reply: x.reply.name === 'undecodable' ? null : toJson(x.reply),
        })),
        missingNodeUuids: r.missing,
        unknownNodeUuids: r.unknown,
        ...(r.problem ? { problem: r.problem } : {}),
      }),
    );
  } else {
    for (const x of r.replies) io.out(describe(x));
  }
  for (const u of r.unknown) io.err(`${label}: unknown node ${u}: not connected\n`);
  if (r.missing.length > 0) io.err(`${label}: no reply from ${r.missing.join(', ')}\n`);
  if (r.problem) io.err(`${label}: ${r.problem}\n`);
  if (!opts.json && r.expected.length === 0 && r.unknown.length === 0 && !r.problem)
    io.err(`${label}: no nodes connected\n`);
  return r.problem || r.missing.length > 0 || r.unknown.length > 0 ? EXIT.FAILED : EXIT.OK;
}
