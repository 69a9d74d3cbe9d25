/**
 * Upstream failover (issue #20): the streaming node's upstream starts failing (the market
 * server answers its HTTP reads with 500, by client); measured from switching the fault on
 * to the first price for the pair from another node, at a watch subscription at the
 * controller. The node stays up and connected: it withdraws the pair after
 * NODE_UPSTREAM_FAIL_AFTER_MS without a valid price, and the controller moves it.
 *
 * Real controller and node programs (3 nodes, one pair, NODE_UPSTREAM=http against the
 * market server in this process). After each round the fault is cleared and the round
 * waits until the withdrawn node offers the pair again (measured too). A node's hold-down
 * doubles with each withdrawal within 30 min, so a node is used for at most two
 * withdrawals and then replaced by a fresh node program (its history starts empty).
 */
import { type MarketServer, startMarketServer } from '../../services/market/server';
import { nowMs, sleep, waitUntil } from '../lib/clock';
import { type RealNode, RealNodeSetup } from '../lib/real-nodes';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'upstream-failover';
export const title = 'Upstream failover: streamer upstream fails -> first price from another node';

const PAIR = 'USD_HKD';
const FAIL_AFTER_MS = 1000;
const INTERVAL_MS = 200;
/** Withdrawals a node takes before it is replaced (hold-downs: 1 x, then 2 x FAIL_AFTER_MS). */
const WITHDRAWALS_PER_NODE = 2;
const NODES = 3;

function upstreamEnv(market: MarketServer, nodeName: string): Record<string, string> {
  return {
    NODE_UPSTREAM: 'http',
    NODE_UPSTREAM_URL: `${market.url}/v1/quote/{symbol}?client=${nodeName}`,
    NODE_UPSTREAM_PRICE_PATH: 'price',
    NODE_UPSTREAM_TIME_PATH: 'time',
    NODE_UPSTREAM_TIMEOUT_MS: '500',
    NODE_UPSTREAM_MAX_RPS: '50',
    NODE_UPSTREAM_FAIL_AFTER_MS: String(FAIL_AFTER_MS),
    // A read every 200 ms: well inside FAIL_AFTER_MS, so a healthy pair is never withdrawn.
    NODE_PRICE_INTERVAL_MS: String(INTERVAL_MS),
  };
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const rounds = ctx.smoke ? 2 : 20;
  const market = await startMarketServer({ tickMs: 1000 });
  const failoverMs: number[] = [];
  /** From the victim's last good price + FAIL_AFTER_MS (its withdrawal) to the new price. */
  const moveMs: number[] = [];
  const returnMs: { first: number[]; second: number[] } = { first: [], second: [] };
  const withdrawals = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  let replaced = 0;
  let setup: RealNodeSetup | undefined;
  try {
    setup = await RealNodeSetup.start(NODES, {
      pair: PAIR,
      nodeEnv: ({ name: n }) => upstreamEnv(market, n),
    });
    const s = setup;
    // The last price each node's stream brought to the watcher.
    s.onPrice((p) => lastSeen.set(p.nodeUuid, p.receivedAtMs));
    const allOffer = () =>
      waitUntil('every node offers the pair', async () => (await s.capableNodes()) === NODES, {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
    await allOffer();
    for (let i = 0; i < rounds; i++) {
      const roundAt = nowMs();
      const victim: RealNode = await s.streamer();
      // The victim's prices reach the watcher; the fault starts at a random point of its
      // read cycle.
      await waitUntil(
        "a price from the round's streamer",
        () => (lastSeen.get(victim.uuid) ?? 0) > roundAt,
        { timeoutMs: 10_000, intervalMs: 10 },
      );
      await sleep(Math.floor(Math.random() * INTERVAL_MS));
      const next = s.nextPriceNotFrom(victim.uuid, FAIL_AFTER_MS + 15_000);
      const t0 = nowMs();
      market.setFault({ client: victim.name, mode: 'http_500' });
      const seen = await next;
      failoverMs.push(seen.receivedAtMs - t0);
      moveMs.push(seen.receivedAtMs - (lastSeen.get(victim.uuid) ?? NaN) - FAIL_AFTER_MS);
      const count = (withdrawals.get(victim.uuid) ?? 0) + 1;
      withdrawals.set(victim.uuid, count);
      const healedAt = nowMs();
      market.clearFaults();
      await allOffer();
      (count === 1 ? returnMs.first : returnMs.second).push(nowMs() - healedAt);
      if (count >= WITHDRAWALS_PER_NODE) {
        await victim.program.kill();
        s.forget(victim);
        await s.addNode();
        replaced++;
        await allOffer();
      }
    }
  } finally {
    setup?.close();
    await market.close();
  }
  ctx.log(`upstream failover samples (ms): ${failoverMs.map((x) => x.toFixed(0)).join(' ')}`);
  ctx.log(`of which the move (ms): ${moveMs.map((x) => x.toFixed(0)).join(' ')}`);
  ctx.log(
    `offered again after heal (ms): 1st ${returnMs.first.map((x) => x.toFixed(0)).join(' ')}; 2nd ${returnMs.second.map((x) => x.toFixed(0)).join(' ')}`,
  );
  const rows = [
    {
      metric: `upstream fails (HTTP 500) -> first price from another node (watch at controller), FAIL_AFTER_MS ${FAIL_AFTER_MS}`,
      unit: 'ms',
      target: `p99 <= ${FAIL_AFTER_MS + 200} ms (FAIL_AFTER_MS + 200 ms)`,
      summary: summarize(failoverMs),
    },
    {
      metric:
        "of which the move: victim's last price at the watcher + FAIL_AFTER_MS -> first price from another node",
      unit: 'ms',
      summary: summarize(moveMs),
    },
    {
      metric: 'upstream healed -> withdrawn node offers the pair again (1st withdrawal)',
      unit: 'ms',
      summary: summarize(returnMs.first),
    },
  ];
  if (returnMs.second.length > 0)
    rows.push({
      metric: 'upstream healed -> withdrawn node offers the pair again (2nd withdrawal)',
      unit: 'ms',
      summary: summarize(returnMs.second),
    });
  return {
    name,
    title,
    rows,
    notes: [
      `${NODES} real node programs, one pair, NODE_UPSTREAM=http against the market server in the bench process; ` +
        `reads every ${INTERVAL_MS} ms, NODE_UPSTREAM_FAIL_AFTER_MS=${FAIL_AFTER_MS}. The victim is the controller's ` +
        `streamer of the round; a node is replaced by a fresh one after ${WITHDRAWALS_PER_NODE} withdrawals ` +
        `(${replaced} replaced), so hold-downs stay at 1-2 x FAIL_AFTER_MS. ` +
        'A pair is withdrawn FAIL_AFTER_MS after its last valid price, not after the fault, so the ' +
        'figure is FAIL_AFTER_MS less the time since that price (< one read interval) plus the move; ' +
        "the move row takes the victim's last price at the watcher as the start of the quiet time.",
    ],
    data: {
      samplesMs: failoverMs,
      moveMs,
      returnMs,
      failAfterMs: FAIL_AFTER_MS,
      intervalMs: INTERVAL_MS,
    },
  };
}
