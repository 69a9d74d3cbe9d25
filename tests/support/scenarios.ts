/**
 * System scenarios written once against SystemHarness and run on every tier that
 * implements it. Each returns the figures it measured, for the test to print.
 */
import {
  type NodeHandle,
  type PriceView,
  type StreamView,
  type SystemHarness,
  nodes,
  priceMs,
  prices,
  streams,
  waitPriceFrom,
} from './harness';
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

/**
 * Takes the node streaming `pair` away with `how`, and measures until another node streams
 * it (`ms`) and until a price it sent after the fault reached the controller (`priceMs`).
 */
export async function failoverScenario(
  h: SystemHarness,
  how: 'kill' | 'stop' | 'freeze',
  pair = 'USD_HKD',
): Promise<{ victim: string; successor: string; ms: number; priceMs: number }> {
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
  const successor = streamerOf(after, pair);
  // The victim is gone for the rest of the scenario, so the successor keeps the pair.
  await waitPriceFrom(h, pair, t0, (u) => u === successor);
  const pricedMs = Date.now() - t0;
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
  return { victim, successor, ms, priceMs: pricedMs };
}

/**
 * Kicks the node streaming `pair` and measures until a price for it dated after the kick
 * arrives from another node. Watched live: the kicked node reconnects within moments and
 * may win the pair back by rebalancing, so a poll of `controller prices` could miss the
 * successor's turn. Then the kicked node is back and every pair streamed again.
 */
export async function kickScenario(
  h: SystemHarness,
  pair = 'USD_HKD',
): Promise<{
  victim: string;
  successor: string;
  priceMs: number;
  backMs: number;
  pairs: string[];
}> {
  const { handles, pairs } = await startOverlappingNodes(h);
  const victim = streamerOf(await waitAllStreamed(h, pairs), pair);
  const watch = await h.watchPrices([pair]);
  try {
    const t0 = Date.now();
    const kick = await h.cli(['controller', 'kick', victim]);
    if (kick.code !== 0 || !kick.stdout.includes(`kicked ${victim}`))
      throw new Error(`kick ${victim} exited ${kick.code}: ${kick.stdout} ${kick.stderr}`);
    // One streamer per pair: before the kick only the victim sent prices for `pair`.
    const first: PriceView = await waitFor(
      `a price for ${pair} dated after the kick from a node other than ${victim}`,
      () =>
        watch
          .updates()
          .find((u) => u.currencyPair === pair && u.nodeUuid !== victim && priceMs(u) > t0),
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const pricedMs = Date.now() - t0;
    if (!handles.some((x) => x.uuid === first.nodeUuid && x.pairs.includes(pair)))
      throw new Error(`${pair} priced by ${first.nodeUuid}, not a capable node of this scenario`);
    await waitFor(
      'the kicked node back',
      async () => (await nodes(h)).some((n) => n.nodeUuid === victim),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    const backMs = Date.now() - t0;
    await waitAllStreamed(h, pairs);
    return { victim, successor: first.nodeUuid, priceMs: pricedMs, backMs, pairs };
  } finally {
    await watch.stop();
  }
}

/**
 * Restarts the controller; every node comes back by itself, every pair is streamed, and
 * each pair's price on the new controller came from its current streamer after the restart.
 */
export async function controllerRestartScenario(
  h: SystemHarness,
): Promise<{ ms: number; nodes: number; priceMs: number }> {
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
  const ms = Date.now() - t0;
  let lastSeen = '';
  await waitFor(
    'a price for every pair from its streamer, dated after the restart',
    async () => {
      const [s, p] = await Promise.all([streams(h), prices(h)]);
      lastSeen = JSON.stringify(p);
      return pairs.every((pair) => {
        const latest = p.find((x) => x.currencyPair === pair);
        const by = s.find((x) => x.currencyPair === pair)?.nodeUuids ?? [];
        return latest !== undefined && priceMs(latest) > t0 && by.includes(latest.nodeUuid);
      });
    },
    { timeoutMs: 15_000, intervalMs: 100 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last seen: ${lastSeen}`);
  });
  return { ms, nodes: handles.length, priceMs: Date.now() - t0 };
}
