/**
 * Upstream node load (issue #20): one node program streams 500 pairs read from a real
 * upstream, and the controller (the built program) assigns it all of them, since it is the
 * only node. Measured over fixed windows after a warm-up: the node process's CPU (user +
 * system seconds per second, from /proc/<pid>/stat), its RSS (/proc/<pid>/status) and the
 * price updates it sent per second (its own counter, currency_node_price_updates_sent_total,
 * read from its /metrics at each window's edges).
 *
 * Two runs, each with its own controller and node:
 * - http: the market server (services/market) in the bench process, one GET per pair per
 *   NODE_PRICE_INTERVAL_MS (2000-10000, the default), NODE_UPSTREAM_MAX_RPS 1000;
 * - websocket: one connection, a ticker per pair every second. The market server takes at
 *   most 256 subscriptions per connection, so this run uses a feed with the same protocol
 *   and no such cap (bench/lib/ws-feed.ts).
 */
import { freePort } from '../../tests/support/ports';
import { startMarketServer } from '../../services/market/server';
import { sleep, waitUntil } from '../lib/clock';
import { gauges, metricSum, metricSumWhere, scrape } from '../lib/metrics';
import { type Program, startController, startProgram, waitReady } from '../lib/procs';
import { stopGracefully } from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult, Row } from '../lib/types';
import { startWsFeed } from '../lib/ws-feed';

export const name = 'upstream-node-load';
export const title =
  'One node streaming 500 pairs from an http / websocket upstream: CPU, RSS, rate';

const SENT = 'currency_node_price_updates_sent_total';
const REQUESTS = 'currency_node_upstream_requests_total';
const WITHDRAWALS = 'currency_node_upstream_withdrawals_total';
const DROPPED = 'currency_node_price_updates_dropped_total';
const STREAMING = 'currency_node_pairs_streaming';

type Kind = 'http' | 'websocket';

interface Sizes {
  pairs: number;
  intervalMs: string;
  tickMs: number;
  warmupMs: number;
  windowMs: number;
  windows: number;
}

interface Measured {
  cores: number[];
  rssMiB: number[];
  updatesPerSec: number[];
  requestsPerSec: number[];
  failedRequests: number;
  withdrawals: number;
  dropped: number;
  benchCores: number;
  controllerCores: number;
}

/** P000-style bases of three characters (the market splits an unknown symbol after three). */
export function loadPairs(n: number): string[] {
  const letters = 'ABCDEFGHIJ';
  return Array.from(
    { length: n },
    (_, i) =>
      `${letters[Math.floor(i / 100) % letters.length]}${String(i % 100).padStart(2, '0')}_USD`,
  );
}

function cpuSecondsOfBench(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function measure(ctx: BenchContext, kind: Kind, sz: Sizes): Promise<Measured> {
  const pairs = loadPairs(sz.pairs);
  const market = kind === 'http' ? await startMarketServer({ tickMs: sz.tickMs }) : undefined;
  const feed = kind === 'websocket' ? await startWsFeed({ tickMs: sz.tickMs }) : undefined;
  const ctl = startController(await freePort(), await freePort());
  let node: Program | undefined;
  try {
    await waitReady(ctl.metricsUrl, ctl.program);
    const metricsPort = await freePort();
    const upstream: Record<string, string> =
      kind === 'http'
        ? {
            NODE_UPSTREAM: 'http',
            NODE_UPSTREAM_URL: `${market!.url}/v1/quote/{symbol}?client=load`,
            NODE_UPSTREAM_PRICE_PATH: 'price',
            NODE_UPSTREAM_TIME_PATH: 'time',
            NODE_UPSTREAM_MAX_RPS: '1000',
          }
        : {
            NODE_UPSTREAM: 'websocket',
            NODE_UPSTREAM_URL: `${feed!.wsUrl}?client=load`,
            NODE_UPSTREAM_PRICE_PATH: 'price',
            NODE_UPSTREAM_TIME_PATH: 'time',
            NODE_UPSTREAM_SYMBOL_PATH: 'symbol',
            NODE_UPSTREAM_SUBSCRIBE: '{"op":"subscribe","symbol":"{symbol}"}',
            NODE_UPSTREAM_UNSUBSCRIBE: '{"op":"unsubscribe","symbol":"{symbol}"}',
            // Subscribe messages are spaced by it too: at the default 10/s, 500 subscriptions
            // take 50 s and the pairs still waiting after FAIL_AFTER_MS (10 s) are withdrawn.
            NODE_UPSTREAM_MAX_RPS: '1000',
          };
    const n = startProgram('node', {
      NODE_CONTROLLER_ADDR: ctl.grpcAddr,
      NODE_CURRENCY_PAIRS: pairs.join(','),
      NODE_NAME: `bench-load-${kind}`,
      NODE_PRICE_INTERVAL_MS: sz.intervalMs,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      ...upstream,
    });
    node = n;
    const nodeMetrics = `http://127.0.0.1:${metricsPort}`;
    await waitUntil(
      `the node streams all ${sz.pairs} pairs`,
      async () => {
        if (n.child.exitCode !== null) throw new Error(`node exited: ${n.output()}`);
        return (await gauges(nodeMetrics, [STREAMING]))[STREAMING] === sz.pairs;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    await sleep(sz.warmupMs);
    const m: Measured = {
      cores: [],
      rssMiB: [],
      updatesPerSec: [],
      requestsPerSec: [],
      failedRequests: 0,
      withdrawals: 0,
      dropped: 0,
      benchCores: 0,
      controllerCores: 0,
    };
    const first = await scrape(nodeMetrics);
    let text = first;
    let c0 = n.cpuSeconds();
    let t0 = performance.now();
    const start = { t: t0, bench: cpuSecondsOfBench(), ctl: ctl.program.cpuSeconds() };
    for (let w = 0; w < sz.windows; w++) {
      await sleep(sz.windowMs);
      const c1 = n.cpuSeconds();
      const t1 = performance.now();
      m.rssMiB.push(n.rssBytes() / 2 ** 20);
      const next = await scrape(nodeMetrics);
      const secs = (t1 - t0) / 1000;
      m.cores.push((c1 - c0) / secs);
      m.updatesPerSec.push((metricSum(next, SENT) - metricSum(text, SENT)) / secs);
      m.requestsPerSec.push(
        ((metricSum(next, REQUESTS) || 0) - (metricSum(text, REQUESTS) || 0)) / secs,
      );
      // The scrape falls into the next window (a few ms of the node's CPU).
      text = next;
      c0 = c1;
      t0 = t1;
    }
    const secs = (performance.now() - start.t) / 1000;
    m.benchCores = (cpuSecondsOfBench() - start.bench) / secs;
    m.controllerCores = (ctl.program.cpuSeconds() - start.ctl) / secs;
    const notOk = (l: string) => !l.includes('outcome="ok"');
    m.failedRequests =
      metricSumWhere(text, REQUESTS, notOk) - metricSumWhere(first, REQUESTS, notOk);
    m.withdrawals = (metricSum(text, WITHDRAWALS) || 0) - (metricSum(first, WITHDRAWALS) || 0);
    m.dropped = (metricSum(text, DROPPED) || 0) - (metricSum(first, DROPPED) || 0);
    const streamingAtEnd = metricSum(text, STREAMING);
    ctx.log(
      `${kind}: node cores ${m.cores.map((c) => c.toFixed(3)).join(' ')}; RSS MiB ${m.rssMiB.map((r) => r.toFixed(0)).join(' ')}; ` +
        `updates/s ${m.updatesPerSec.map((r) => r.toFixed(0)).join(' ')}; streaming at end ${streamingAtEnd}; ` +
        `failed reads ${m.failedRequests}, withdrawals ${m.withdrawals}, dropped ${m.dropped}; ` +
        `bench process ${m.benchCores.toFixed(2)} cores, controller ${m.controllerCores.toFixed(2)} cores`,
    );
    return m;
  } finally {
    node?.signal('SIGTERM');
    if (node) await Promise.race([node.exited, sleep(5000)]);
    await node?.kill();
    await stopGracefully(ctl, 5000);
    await market?.close();
    await feed?.close();
  }
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const full = !ctx.smoke;
  const rows: Row[] = [];
  const notes: string[] = [];
  const data: Record<string, unknown> = {};
  for (const kind of ['http', 'websocket'] as const) {
    const sz: Sizes = {
      pairs: full ? 500 : 20,
      intervalMs: full ? '2000-10000' : kind === 'http' ? '300-600' : '2000-10000',
      tickMs: full ? 1000 : 250,
      warmupMs: full ? 12_000 : 700,
      windowMs: full ? 10_000 : 1000,
      windows: full ? 6 : 2,
    };
    const m = await measure(ctx, kind, sz);
    const how =
      kind === 'http'
        ? `${sz.pairs} pairs over http, a read per pair every ${sz.intervalMs} ms`
        : `${sz.pairs} pairs over websocket, a ticker per pair every ${sz.tickMs} ms`;
    rows.push(
      {
        metric: `node CPU (user+sys), ${how}`,
        unit: 'cores',
        summary: summarize(m.cores),
      },
      { metric: `node RSS (${kind})`, unit: 'MiB', summary: summarize(m.rssMiB) },
      {
        metric: `price updates sent by the node per second (${kind})`,
        unit: 'updates/s',
        summary: summarize(m.updatesPerSec),
      },
    );
    if (kind === 'http')
      rows.push({
        metric: 'upstream reads per second (http)',
        unit: 'reads/s',
        summary: summarize(m.requestsPerSec),
      });
    notes.push(
      `${kind}: ${m.cores.length} windows of ${sz.windowMs / 1000} s after ${sz.warmupMs / 1000} s of warm-up; ` +
        `during them ${m.failedRequests} failed upstream reads/messages, ${m.withdrawals} withdrawals, ${m.dropped} dropped updates; ` +
        `the bench process (${kind === 'http' ? 'market server' : 'feed'}) used ${m.benchCores.toFixed(2)} cores and the controller ${m.controllerCores.toFixed(2)} on the same machine.`,
    );
    data[kind] = { sizes: sz, ...m };
  }
  return { name, title, rows, notes, data };
}
