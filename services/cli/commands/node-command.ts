import type { MessageName, MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import type { CommandEnv } from '../command';
import { safeToJson, shown } from '../format';
import { json } from '../io';
import { NodeResolver, eachNode, isFullUuid } from '../nodes';
import type { NodeReply, NodeResult } from '../session';

export interface NodeTargets {
  /** UUIDs, UUID prefixes or names; empty means every connected node (`--all`). */
  nodeUuids: string[];
}

/**
 * Full UUIDs go as they are (the controller reports unknown ones); names and prefixes are
 * looked up in `controller nodes`. Ambiguous: exit 2 listing the candidates.
 */
async function resolveTargets(
  { session, io }: CommandEnv,
  label: string,
  values: string[],
): Promise<{ uuids: string[]; unmatched: string[] } | number> {
  // Canonical (lower-case) on the wire: a controller compares them as strings.
  if (values.every(isFullUuid)) return { uuids: values.map((v) => v.toLowerCase()), unmatched: [] };
  // Page by page, keeping only the nodes a value matches; no pairs are asked for.
  const resolver = new NodeResolver(values);
  const list = await eachNode(
    session,
    (page) => {
      for (const n of page) resolver.add({ nodeUuid: n.nodeUuid, name: n.name });
    },
    { withoutPairs: true },
  );
  if (!list.ok) {
    io.err(`${label}: could not look up node names: ${shown(list.problem)}\n`);
    return EXIT.FAILED;
  }
  const r = resolver.result();
  for (const a of r.ambiguous)
    io.err(
      `${label}: "${shown(a.value)}" matches ${a.candidates.length} nodes: ` +
        a.candidates.map((c) => `${shown(c.nodeUuid)} (${shown(c.name)})`).join(', ') +
        '; give a longer UUID prefix or the full UUID\n',
    );
  if (r.ambiguous.length > 0) return EXIT.USAGE;
  return { uuids: r.uuids, unmatched: r.unmatched };
}

/**
 * Sends a command to nodes through the controller and waits for exactly the replies the
 * controller said to expect. Exit 0 when every expected node answered and no requested
 * UUID was unknown; otherwise 1, naming the silent, the failed and the unknown nodes.
 */
export async function runNodeCommand<N extends MessageName>(
  env: CommandEnv,
  label: string,
  name: N,
  message: MessageOf<N>,
  targets: NodeTargets,
  describe: (reply: NodeReply) => string,
): Promise<number> {
  const { session, io, opts } = env;
  const resolved = await resolveTargets(env, label, targets.nodeUuids);
  if (typeof resolved === 'number') return resolved;
  const { unmatched } = resolved;
  // Nothing left to send to: an empty list would mean every node.
  const r: NodeResult =
    resolved.uuids.length === 0 && targets.nodeUuids.length > 0
      ? { expected: [], unknown: [], replies: [], missing: [], failed: [] }
      : await session.nodeCommand(name, message, resolved.uuids);
  if (opts.json) {
    io.out(
      json({
        expectedNodeUuids: r.expected,
        replies: r.replies.map((x) => ({
          nodeUuid: x.nodeUuid,
          type: x.reply.name,
          reply: x.reply.name === 'undecodable' ? null : safeToJson(x.reply),
        })),
        failedNodes: r.failed,
        missingNodeUuids: r.missing,
        unknownNodeUuids: r.unknown,
        unmatchedNodes: unmatched,
        ...(r.problem ? { problem: r.problem } : {}),
      }),
    );
  } else {
    for (const x of r.replies) io.out(describe(x));
  }
  if (r.uncounted)
    io.err(
      `${label}: the controller sent no response count (it predates CliResponseCountV1Notify): waited for the nodes named, unknown ones show as not answering\n`,
    );
  for (const u of r.unknown) io.err(`${label}: unknown node ${shown(u)}: not connected\n`);
  for (const u of unmatched)
    io.err(
      `${label}: unknown node "${shown(u)}": no connected node has that name or UUID prefix\n`,
    );
  for (const f of r.failed)
    io.err(`${label}: node ${shown(f.nodeUuid)} failed: ${shown(f.message)}\n`);
  if (r.missing.length > 0) io.err(`${label}: no reply from ${r.missing.map(shown).join(', ')}\n`);
  if (r.problem) io.err(`${label}: ${shown(r.problem)}\n`);
  if (
    !opts.json &&
    r.expected.length === 0 &&
    r.unknown.length === 0 &&
    unmatched.length === 0 &&
    !r.problem
  )
    io.err(`${label}: no nodes connected\n`);
  return r.problem ||
    r.missing.length > 0 ||
    r.unknown.length > 0 ||
    r.failed.length > 0 ||
    unmatched.length > 0
    ? EXIT.FAILED
    : EXIT.OK;
}
