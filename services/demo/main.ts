#!/usr/bin/env node
/**
 * `npm run demo`: the whole system on this machine, no Docker. Starts a controller and four
 * nodes with different (overlapping) pair sets, shows the CLI working, kills the node
 * streaming USD_HKD and shows the pair moving to another node, then keeps running until
 * Ctrl-C (or exits at once with --once). Program logs go to files in a temp folder.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ONCE = process.argv.includes('--once');
const GRPC_PORT = Number(process.env.DEMO_GRPC_PORT ?? 5160);
const METRICS_PORT = Number(process.env.DEMO_METRICS_PORT ?? 9464);
const CONTROLLER = `127.0.0.1:${GRPC_PORT}`;
const DIST = join(__dirname, '..');
const logDir = mkdtempSync(join(tmpdir(), 'currency-nodes-demo-'));
const children: { name: string; child: ChildProcess }[] = [];

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

type Streams = { currencyPair: string; nodeUuids: string[] }[];
const streams = (): Streams => {
  const r = cli(['--json', 'controller', 'streams'], false);
  return r.code === 0 ? (JSON.parse(r.stdout) as Streams) : [];
};

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 400 && Date.now() < deadline; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`demo: timed out waiting for ${what}; logs are in ${logDir}`);
}

function stopAll(): void {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGTERM');
}

async function main(): Promise<void> {
  say(`starting a controller on ${CONTROLLER} (metrics on :${METRICS_PORT}); logs in ${logDir}`);
  start('controller', 'controller', {
    CONTROLLER_LISTEN_ADDR: CONTROLLER,
    METRICS_ADDR: `127.0.0.1:${METRICS_PORT}`,
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
        NODE_PRICE_INTERVAL_MS: '500-1500',
        METRICS_ADDR: '127.0.0.1:0', // any free port: fixed ones may be taken
      }),
    );
  });
  const allPairs = [...new Set(NODES.flatMap((n) => n.pairs.split(',')))];
  await until('every pair streamed', () => {
    const s = streams();
    return allPairs.every((p) => s.find((x) => x.currencyPair === p)?.nodeUuids.length === 1)
      ? s
      : undefined;
  });

  say('the nodes, as the controller sees them');
  cli(['controller', 'nodes']);
  say('every pair and the node streaming it');
  cli(['controller', 'streams']);
  await new Promise((r) => setTimeout(r, 1500));
  say('latest prices');
  cli(['controller', 'prices']);

  const nodes = JSON.parse(cli(['--json', 'controller', 'nodes'], false).stdout) as {
    nodeUuid: string;
    name: string;
  }[];
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
      `  npm run cli -- --controller ${CONTROLLER} controller nodes`,
      `  npm run cli -- --controller ${CONTROLLER} node status --all`,
      `  npm run cli -- --controller ${CONTROLLER} watch --pair USD_HKD`,
      `  curl -s 127.0.0.1:${METRICS_PORT}/metrics | grep currency_controller`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  stopAll();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  stopAll();
  process.exitCode = 1;
});
