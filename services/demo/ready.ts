/**
 * When the demo's system is up, so that what it shows next is the whole system: every node
 * it started connected (by name), and every pair streamed by exactly one node. Pairs alone
 * are not enough: three of the four nodes already cover every pair, and the listing would
 * then show three nodes.
 */
export interface DemoNode {
  name: string;
}

export interface DemoStream {
  currencyPair: string;
  nodeUuids: string[];
}

/** What is still missing (a sentence), or undefined when everything is up. */
export function missing(
  want: { names: readonly string[]; pairs: readonly string[] },
  nodes: readonly DemoNode[],
  streams: readonly DemoStream[],
): string | undefined {
  const connected = new Set(nodes.map((n) => n.name));
  const absent = want.names.filter((n) => !connected.has(n));
  if (absent.length > 0) return `node(s) not connected yet: ${absent.join(', ')}`;
  const unstreamed = want.pairs.filter(
    (p) => streams.find((s) => s.currencyPair === p)?.nodeUuids.length !== 1,
  );
  if (unstreamed.length > 0) return `pair(s) not streamed yet: ${unstreamed.join(', ')}`;
  return undefined;
}
