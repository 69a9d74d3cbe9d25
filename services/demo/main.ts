#!/usr/bin/env node
/**
 * `npm run demo`: the whole system on this machine, no Docker. Starts a controller and four
 * nodes with different (overlapping) pair sets, shows the CLI working, kills the node
 * streaming USD_HKD and shows the pair moving to another node, then keeps running until
 * Ctrl-C (or exits at once with --once). Program logs go to files in a temp folder.
 *
 * `npm run demo -- --upstream`: the nodes read their prices over HTTP from a market started
 * in this process (services/market, the simulated market behind a vendor-like API). Instead
 * of a kill, the market fails (HTTP 500) for the node streaming USD_HKD only: that node
 * stays connected, withdraws its pairs after NODE_UPSTREAM_FAIL_AFTER_MS, and USD_HKD moves
 * to another node, whose prices then arrive. Exits 0 when that has been shown.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MarketServer, startMarketServer } from '../market/server';
import { missing } from './ready';

const UPSTREAM = process.argv.includes('--upstream');
const ONCE = process.argv.includes('--once') || UPSTREAM;
/** --upstream: a pair whose quotes fail this long is withdrawn by its node. */
const UPSTREAM_FAIL_AFTER_MS = 3000;
const GRPC_PORT = portOf('DEMO_GRPC_PORT', 5160);
const METRICS_PORT = portOf('DEMO_METRICS_PORT', 9464);
const CONTROLLER = `127.0.0.1:${GRPC_PORT}`;
const DIST = join(__dirname, '..');
const logDir = mkdtempSync(join(tmpdir(), 'currency-nodes-demo-'));
const children: { name: string; child: ChildProcess }[] = [];
let market: MarketServer | undefined;

const NODES: { name: string; pairs: string }[] = [
  { name: 'asia-1', pairs: 'USD_HKD,USD_JPY,BTC_USD' },
  { name: 'asia-2', pairs: 'USD_HKD,USD_JPY,USD_SGD' },
  { name: 'europe-1', pairs: 'EUR_USD,GBP_USD,BTC_USD' },
  { name: 'europe-2', pairs: 'EUR_USD,GBP_USD,USD_HKD' },
];

function say(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function start(name: string, role: string, env: Record<string, string>): ChildProcess {
  const log = createWriteStream(join(logDir, `${name}.log`));
  const child = spawn(process.execPath, [join(DIST, role, 'main.js')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Both streams feed one file: neither may end it for the other.
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  child.once('close', () => log.end());
  children.push({ name, child });
  return child;
}

function cli(args: string[], show = true): { code: number; stdout: string } {
  const r = spawnSync(
    process.execPath,
    [join(DIST, 'cli', 'main.js'), '--controller', CONTROLLER, ...args],
    {
      encoding: 'utf8',
      timeout: 15_000,
    },
  );
  if (show) {
    process.stdout.write(`$ currency-cli ${args.join(' ')}\n`);
    process.stdout.write(r.stdout);
    process.stdout.write(r.stderr);
  }
  return { code: r.status ?? 1, stdout: r.stdout };
}

/** A port from `variable`, else `fallback`; anything but 1..65535 exits 2 naming it. */
function portOf(variable: string, fallback: number): number {
  const raw = process.env[variable]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const port = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (port >= 1 && port <= 65535) return port;
  process.stderr.write(`demo: ${variable}: invalid value "${raw}": must be a port, 1 to 65535\n`);
  process.exit(2);
}

/** Why `port` cannot be listened on at 127.0.0.1 (e.g. EADDRINUSE), or undefined if it can. */
function portProblem(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(undefined)));
  });
}

/** Set when the controller exits: every wait then fails at once, saying so. */
let controllerGone: string | undefined;

type Streams = { currencyPair: string; nodeUuids: string[] }[];
const streams = (): Streams => {
  const r = cli(['--json', 'controller', 'streams'], false);
  return r.code === 0 ? (JSON.parse(r.stdout) as Streams) : [];
};

async function until<T>(
  what: string | (() => string),
  probe: () => T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 400 && Date.now() < deadline; i++) {
    if (controllerGone) throw new Error(controllerGone);
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  const waited = typeof what === 'string' ? what : what();
  throw new Error(`demo: timed out waiting for ${waited}; logs are in ${logDir}`);
}

function stopAll(): void {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
  void market?.close();
}

interface NodeRow {
  nodeUuid: string;
  name: string;
  connectedAt: string | null;
}
const listNodes = (): NodeRow[] => {
  const r = cli(['--json', 'controller', 'nodes'], false);
  return r.code === 0 ? (JSON.parse(r.stdout) as NodeRow[]) : [];
};

interface PriceRow {
  currencyPair: string;
  price: number | null;
  priceUpdatedAt: string | null;
  nodeUuid: string;
  nodeName: string;
}
const listPrices = (): PriceRow[] => {
  const r = cli(['--json', 'controller', 'prices'], false);
  return r.code === 0 ? (JSON.parse(r.stdout) as PriceRow[]) : [];
};

/** Where the demo's nodes read their prices: the in-process market, or simulated. */
function upstreamEnv(name: string): Record<string, string> {
  if (!market) return {};
  return {
    NODE_UPSTREAM: 'http',
    // client= names the node to the market, so that a fault can target it alone.
    NODE_UPSTREAM_URL: `${market.url}/v1/quote/{symbol}?client=${encodeURIComponent(name)}`,
    NODE_UPSTREAM_PRICE_PATH: 'price',
    NODE_UPSTREAM_TIME_PATH: 'time',
    NODE_UPSTREAM_FAIL_AFTER_MS: String(UPSTREAM_FAIL_AFTER_MS),
  };
}

/**
 * --upstream: the market answers HTTP 500 to the USD_HKD streamer only; it stays connected
 * while USD_HKD moves to another node, and the prices come from the new streamer.
 */
async function upstreamFailover(nodes: NodeRow[]): Promise<void> {
  const victimUuid = streams().find((x) => x.currencyPair === 'USD_HKD')!.nodeUuids[0]!;
  const victim = nodes.find((n) => n.nodeUuid === victimUuid);
  const victimName = victim?.name ?? victimUuid;
  say(
    `upstream failure: the market answers HTTP 500 to ${victimName} (the node streaming USD_HKD) only`,
  );
  process.stdout.write(
    `fault: {"client":"${victimName}","mode":"http_500"} (the same as POST ${market!.url}/control/faults)\n`,
  );
  const t0 = Date.now();
  market!.setFault({ client: victimName, mode: 'http_500' });
  const successor = await until(
    'USD_HKD to move',
    () => {
      const u = streams().find((x) => x.currencyPair === 'USD_HKD')?.nodeUuids ?? [];
      return u.length === 1 && u[0] !== victimUuid ? u[0] : undefined;
    },
    UPSTREAM_FAIL_AFTER_MS + 20_000,
  );
  const movedAt = Date.now();
  const successorName = nodes.find((n) => n.nodeUuid === successor)?.name ?? successor;
  process.stdout.write(
    `USD_HKD moved from ${victimName} to ${successorName}; seen by the CLI ${movedAt - t0} ms ` +
      `after the market failed for ${victimName} (NODE_UPSTREAM_FAIL_AFTER_MS=${UPSTREAM_FAIL_AFTER_MS})\n`,
  );
  cli(['controller', 'streams']);

  say(`${victimName} is still connected (its upstream failed, not the node)`);
  const now = listNodes().find((n) => n.nodeUuid === victimUuid);
  if (!now || now.connectedAt !== victim?.connectedAt)
    throw new Error(
      `demo: ${victimName} ${now ? 'reconnected' : 'is no longer connected'}; logs are in ${logDir}`,
    );
  cli(['controller', 'nodes']);
  process.stdout.write(`${victimName} still connected, connected since ${now.connectedAt}\n`);

  say(`USD_HKD prices now come from ${successorName}`);
  const price = await until('a USD_HKD price from the new streamer', () =>
    listPrices().find(
      (p) =>
        p.currencyPair === 'USD_HKD' &&
        p.nodeUuid === successor &&
        p.priceUpdatedAt !== null &&
        Date.parse(p.priceUpdatedAt) >= movedAt - 1000,
    ),
  );
  cli(['controller', 'prices']);
  process.stdout.write(
    `USD_HKD price ${price.price} at ${price.priceUpdatedAt} from ${successorName}\n`,
  );
}

async function main(): Promise<void> {
  // A port held by another program (an earlier demo's controller, say) would take the
  // demo's nodes while its own controller died unseen: refuse to start instead.
  const ports = [
    { variable: 'DEMO_GRPC_PORT', port: GRPC_PORT, what: 'gRPC' },
    { variable: 'DEMO_METRICS_PORT', port: METRICS_PORT, what: 'metrics' },
  ];
  for (const p of ports) {
    const problem = await portProblem(p.port);
    if (problem)
      throw new Error(
        `demo: the ${p.what} port 127.0.0.1:${p.port} is not free (${problem}): another ` +
          `program holds it; stop that program, or move the demo with ${p.variable}=<port>`,
      );
  }
  if (UPSTREAM) {
    market = await startMarketServer({ host: '127.0.0.1', port: 0 });
    say(
      `starting a market on ${market.url} (quotes: GET /v1/quote/{symbol}); the nodes read it over HTTP`,
    );
  }
  say(`starting a controller on ${CONTROLLER} (metrics on :${METRICS_PORT}); logs in ${logDir}`);
  const controller = start('controller', 'controller', {
    CONTROLLER_LISTEN_ADDR: CONTROLLER,
    METRICS_ADDR: `127.0.0.1:${METRICS_PORT}`,
  });
  controller.once('exit', (code, signal) => {
    controllerGone =
      `demo: the controller exited (${code ?? signal}); its log: ${join(logDir, 'controller.log')}` +
      `; if a port was taken, move it with ${ports.map((p) => `${p.variable}=<port>`).join(' or ')}`;
  });
  const uuidByName = new Map<string, ChildProcess>();
  NODES.forEach((n) => {
    say(`starting node ${n.name} with pairs ${n.pairs}`);
    uuidByName.set(
      n.name,
      start(n.name, 'node', {
        NODE_NAME: n.name,
        NODE_CONTROLLER_ADDR: CONTROLLER,
        NODE_CURRENCY_PAIRS: n.pairs,
        // --upstream: a read per interval, so a short one finds a failing market soon.
        NODE_PRICE_INTERVAL_MS: UPSTREAM ? '300-700' : '500-1500',
        METRICS_ADDR: '127.0.0.1:0', // any free port: fixed ones may be taken
        ...upstreamEnv(n.name),
      }),
    );
  });
  const want = {
    names: NODES.map((n) => n.name),
    pairs: [...new Set(NODES.flatMap((n) => n.pairs.split(',')))],
  };
  let waitingFor: string | undefined;
  await until(
    () => `every node connected and every pair streamed (${waitingFor})`,
    () => ((waitingFor = missing(want, listNodes(), streams())) === undefined ? true : undefined),
  );

  say('the nodes, as the controller sees them');
  cli(['controller', 'nodes']);
  say('every pair and the node streaming it');
  cli(['controller', 'streams']);
  await new Promise((r) => setTimeout(r, 1500));
  say('latest prices');
  cli(['controller', 'prices']);

  const nodes = JSON.parse(cli(['--json', 'controller', 'nodes'], false).stdout) as NodeRow[];
  if (UPSTREAM) {
    await upstreamFailover(nodes);
    say('demo done');
    stopAll();
    return;
  }
  const victimUuid = streams().find((x) => x.currencyPair === 'USD_HKD')!.nodeUuids[0]!;
  const victimName = nodes.find((n) => n.nodeUuid === victimUuid)?.name ?? victimUuid;
  say(`failover: killing ${victimName} (SIGKILL), the node streaming USD_HKD`);
  const t0 = Date.now();
  uuidByName.get(victimName)?.kill('SIGKILL');
  const successor = await until('USD_HKD to move', () => {
    const u = streams().find((x) => x.currencyPair === 'USD_HKD')?.nodeUuids ?? [];
    return u.length === 1 && u[0] !== victimUuid ? u[0] : undefined;
  });
  const successorName = nodes.find((n) => n.nodeUuid === successor)?.name ?? successor;
  process.stdout.write(
    `USD_HKD moved from ${victimName} to ${successorName}; seen by the CLI ${Date.now() - t0} ms after the kill\n`,
  );
  cli(['controller', 'streams']);

  if (ONCE) {
    say('demo done');
    stopAll();
    return;
  }
  say('running; try in another terminal:');
  process.stdout.write(
    [
      `  npm run -s cli -- --controller ${CONTROLLER} controller nodes`,
      `  npm run -s cli -- --controller ${CONTROLLER} node status --all`,
      `  npm run -s cli -- --controller ${CONTROLLER} watch --pair USD_HKD`,
      `  curl -s 127.0.0.1:${METRICS_PORT}/metrics | grep currency_controller`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  // Until Ctrl-C, or until the controller dies (then exit 1, saying so).
  let onGone = () => {};
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    onGone = () => {
      process.stderr.write(`${controllerGone}\n`);
      process.exitCode = 1;
      resolve();
    };
    if (controllerGone) onGone();
    else controller.once('exit', onGone);
  });
  controller.off('exit', onGone);
  stopAll();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  stopAll();
  process.exitCode = 1;
});
