/**
 * System scenarios written once against SystemHarness and run on every tier that
 * implements it. Each returns the figures it measured, for the test to print.
 */
import { type NodeHandle, type StreamView, type SystemHarness, nodes, streams } from './harness';
import { waitFor } from './wait';

/** Waits until every pair in `pairs` has exactly `n` streamers, each one a capable node. */
export async function waitAllStreamed(
  h: SystemHarness,
  pairs: string[],
  n = 1,
  timeoutMs = 15_000,
): Promise<StreamView[]> {
  return waitFor(
    `every pair in ${pairs.join(',')} streamed by ${n} node(s)`,
    async () => {
      const s = await streams(h);
      const ok = pairs.every((p) => s.find((x) => x.currencyPair === p)?.nodeUuids.length === n);
      return ok ? s : undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

export function streamerOf(s: StreamView[], pair: string): string {
  const v = s.find((x) => x.currencyPair === pair);
  if (!v || v.nodeUuids.length === 0) throw new Error(`${pair} has no streamer`);
  return v.nodeUuids[0]!;
}

/** Three nodes with overlapping pairs: each pair has at least two capable nodes. */
export async function startOverlappingNodes(
  h: SystemHarness,
): Promise<{ handles: NodeHandle[]; pairs: string[] }> {
  const handles = [
    await h.startNode(['USD_HKD', 'BTC_USD', 'EUR_USD'], { name: 'alpha' }),
    await h.startNode(['USD_HKD', 'BTC_USD', 'GBP_USD'], { name: 'beta' }),
    await h.startNode(['EUR_USD', 'GBP_USD', 'USD_HKD'], { name: 'gamma' }),
  ];
  return { handles, pairs: ['BTC_USD', 'EUR_USD', 'GBP_USD', 'USD_HKD'] };
}

/** Takes the node streaming `pair` away with `how`, and measures until another node streams it. */
export async function failoverScenario(
  h: SystemHarness,
  how: 'kill' | 'stop' | 'freeze',
  pair = 'USD_HKD',
): Promise<{ victim: string; successor: string; ms: number }> {
  const { handles, pairs } = await startOverlappingNodes(h);
  const before = await waitAllStreamed(h, pairs);
  const victim = streamerOf(before, pair);
  const handle = handles.find((x) => x.uuid === victim)!;
  const t0 = Date.now();
  if (how === 'kill') await handle.kill();
  else if (how === 'stop') await handle.stop();
  else await handle.freeze();
  const after = await waitFor(
    `${pair} to move away from ${victim}`,
    async () => {
      const s = await streams(h);
      const now = s.find((x) => x.currencyPair === pair)?.nodeUuids ?? [];
      return now.length === 1 && now[0] !== victim ? s : undefined;
    },
    { timeoutMs: how === 'freeze' ? h.silentPeerBoundMs + 4000 : 10_000, intervalMs: 50 },
  );
  const ms = Date.now() - t0;
  // Every pair (not just the one watched) ends up with one streamer among the nodes left.
  const remaining = new Set(handles.filter((x) => x.uuid !== victim).map((x) => x.uuid));
  await waitFor('every pair streamed by a remaining node', async () => {
    const s = await streams(h);
    return pairs.every((p) => {
      const u = s.find((x) => x.currencyPair === p)?.nodeUuids ?? [];
      return u.length === 1 && remaining.has(u[0]!);
    });
  });
  if (how === 'freeze') await handle.unfreeze();
  return { victim, successor: streamerOf(after, pair), ms };
}

/** Restarts the controller; every node comes back by itself and every pair is streamed. */
export async function controllerRestartScenario(
  h: SystemHarness,
): Promise<{ ms: number; nodes: number }> {
  const { handles, pairs } = await startOverlappingNodes(h);
  await waitAllStreamed(h, pairs);
  const t0 = Date.now();
  await h.restartController();
  await waitFor(
    'every node to re-register',
    async () => {
      const list = await nodes(h);
      return handles.every((x) => list.some((n) => n.nodeUuid === x.uuid));
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  await waitAllStreamed(h, pairs);
  return { ms: Date.now() - t0, nodes: handles.length };
}
