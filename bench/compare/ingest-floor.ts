/**
 * Per-update cost against the stack's floor (issue #22): the built controller
 * (dist/services/controller/main.js) and the floor server (floor-server.ts: the same
 * grpc-js service definition and options, which only starts every pair and counts the
 * updates it decodes) take the same load from the same load generator
 * (bench/load/sim-nodes), one after the other, alternated within each round:
 *
 *   single-paced  200 nodes x 1 pair, one update per frame, 20,000 updates/s in all
 *   single-full   the same, every stream written whenever it drains
 *   batch-paced   200 nodes x 10 pairs, one NodePriceUpdatesV1Notify of 10 per frame, 20,000/s
 *   batch-full    the same, every stream written whenever it drains
 *   batch-idle    (only when named in --only) 200 x 10 pairs streaming, no price sent: the
 *                 server's background CPU per second (timers, pings, sweeps)
 *
 * Figure: updates taken per CPU-second of the server process (utime + stime from
 * /proc/<pid>/stat) over a window of steady load. Updates taken: the controller's
 * currency_controller_price_updates_total + currency_controller_prices_superseded_total
 * from /metrics, the floor's own counter (GET /count). Each count is read just before the
 * window's first CPU reading and just after its last, so that the CPU of the reads (a
 * /metrics scrape with thousands of series) is not in the figure.
 *
 *   npm run build && npm run bench:build
 *   npx node dist/bench/bench/compare/ingest-floor.js [--rounds 4] [--gens 4] [--paced-gens 1]
 *        [--window-ms 6000] [--warmup-ms 2500] [--only single-full,batch-full] [--json FILE]
 *        [--cpu-prof DIR] [--baseline-main OTHER/dist/services/controller/main.js] [--pin] [--smoke]
 *
 * `--gens K`: load-generator processes for the full-rate scenarios (nodes split evenly),
 * so that the server under test, not one generator's core, is what limits the rate. Each
 * run prints what each generator wrote per second, how much more than the server took
 * (frames waiting in HTTP/2 flow-control windows: the server is saturated), the write
 * attempts skipped because a stream was not draining, and the nodes that reconnected.
 * `--cpu-prof DIR`: both servers run with --cpu-prof (a profile per run,
 * `<server>-<scenario>-r<round>.cpuprofile`, written when the server stops).
 * `--pin`: CPU affinity (taskset): the server alone on the last CPU, the generators and this
 * runner on the rest. Without it all share every CPU, and on a small machine a saturated
 * server gets a scheduler's share against the generators (0.3-0.4 of a core on 2), which is
 * what "full rate" means there; pinned, the generators of one core may not saturate it.
 * `--baseline-main`: another build's controller, alternated as a third server. Run it with
 * the project's Node (`npx node`). Loopback only; every wait is bounded in count and time,
 * the whole run in time (`--max-minutes`); every child is killed at the end, on error and
 * on Ctrl-C.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../tests/support/ports';
import { sleep, waitUntil } from '../lib/clock';
import { metricSum, scrape } from '../lib/metrics';
import { G, stopGracefully } from '../lib/sims';
import { Program, ROOT, Sim, killAll, killChild, waitReady } from '../lib/procs';

const SUPERSEDED = 'currency_controller_prices_superseded_total';

export interface Scenario {
  name: string;
  nodes: number;
  pairsPerNode: number;
  batch: boolean;
  /** Paced total rate (updates/s); undefined: full rate. */
  perSec?: number;
  /** Every pair streaming and no price sent: the server's background CPU (cores), not a rate. */
  idle?: boolean;
}

export interface Options {
  rounds: number;
  gens: number;
  pacedGens: number;
  windowMs: number;
  warmupMs: number;
  smoke: boolean;
  only?: Set<string>;
  json?: string;
  cpuProf?: string;
  /** Another build's controller main.js, alternated as a third server ('baseline'). */
  baselineMain?: string;
  /** The whole run gives up after this long. */
  maxMinutes: number;
  /**
   * CPU affinity (taskset): the server under test alone on the last CPU, the generators and
   * this runner on the others, so that no generator preempts the server.
   */
  pin: boolean;
}

type ServerKind = 'controller' | 'floor' | 'baseline';

export interface RunResult {
  round: number;
  scenario: string;
  server: ServerKind;
  /** Updates taken per second of the window. */
  rate: number;
  /** Server CPU (cores) over the window. */
  cores: number;
  perCpuSecond: number;
  /** Each generator's updates written per second over the window. */
  genRates: number[];
  /**
   * Updates the generators wrote per second over the window, less the server's rate: above
   * 0, frames pile up in HTTP/2 flow-control windows (the server limits the rate: saturated).
   */
  backlogPerSec: number;
  /** Write attempts skipped because a stream was not draining, per update written (all gens). */
  skippedShare: number;
  /** Simulated nodes that lost their stream and connected again during the window. */
  reconnects: number;
  /** 1-minute load average at the start and end of the run. */
  load: [number, number];
  /**
   * The window on the monotonic clock (microseconds, as in a --cpu-prof profile's
   * timestamps), so that a profile can be cut to it.
   */
  windowUs: [number, number];
}

/** Run only when named in --only: the four figures do not need it. */
export const IDLE_SCENARIO = 'batch-idle';

export function scenarios(smoke: boolean, withIdle = false): Scenario[] {
  const nodes = smoke ? 4 : 200;
  const perSec = smoke ? 1000 : 20_000;
  return [
    { name: 'single-paced', nodes, pairsPerNode: 1, batch: false, perSec },
    { name: 'single-full', nodes, pairsPerNode: 1, batch: false },
    { name: 'batch-paced', nodes, pairsPerNode: 10, batch: true, perSec },
    { name: 'batch-full', nodes, pairsPerNode: 10, batch: true },
    ...(withIdle
      ? [{ name: IDLE_SCENARIO, nodes, pairsPerNode: 10, batch: true, idle: true }]
      : []),
  ];
}

export function parseArgs(argv: string[]): Options {
  const smoke = argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
  const o: Options = {
    rounds: smoke ? 1 : 4,
    gens: smoke ? 2 : 4,
    pacedGens: 1,
    // /proc counts CPU in 10 ms ticks: even at smoke size the window holds several.
    windowMs: smoke ? 1000 : 6000,
    warmupMs: smoke ? 300 : 2500,
    smoke,
    maxMinutes: smoke ? 3 : 40,
    pin: false,
  };
  const num = (i: number, what: string): number => {
    const v = Number(argv[i]);
    if (!Number.isFinite(v) || v <= 0) {
      console.error(`${what} needs a positive number`);
      process.exit(2);
    }
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--smoke') continue;
    else if (a === '--rounds') o.rounds = Math.floor(num(++i, a));
    else if (a === '--gens') o.gens = Math.floor(num(++i, a));
    else if (a === '--paced-gens') o.pacedGens = Math.floor(num(++i, a));
    else if (a === '--window-ms') o.windowMs = num(++i, a);
    else if (a === '--warmup-ms') o.warmupMs = num(++i, a);
    else if (a === '--max-minutes') o.maxMinutes = num(++i, a);
    else if (a === '--only') o.only = new Set(argv[++i]!.split(','));
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--cpu-prof') o.cpuProf = argv[++i];
    else if (a === '--baseline-main') o.baselineMain = argv[++i];
    else if (a === '--pin') o.pin = true;
    else {
      console.error(
        `unknown argument ${a}; use --smoke, --rounds N, --gens K, --paced-gens K, --window-ms MS, ` +
          '--warmup-ms MS, --max-minutes M, --only NAME[,NAME], --json FILE, --cpu-prof DIR, ' +
          '--baseline-main FILE, --pin',
      );
      process.exit(2);
    }
  }
  return o;
}

/** A server under test: its process, where nodes connect, and how many updates it took. */
interface Server {
  program: Program;
  grpcAddr: string;
  taken(): Promise<number>;
  stop(): Promise<void>;
}

/** The servers this runner spawned itself: killed when it exits, whatever the cause. */
const servers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of servers) c.kill('SIGKILL');
});

function spawnServer(script: string, nodeArgs: string[], env: Record<string, string>): Program {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  return new Program(child);
}

async function startFloor(nodeArgs: string[]): Promise<Server> {
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const httpUrl = `http://127.0.0.1:${await freePort()}`;
  const program = spawnServer(join(__dirname, 'floor-server.js'), nodeArgs, {
    FLOOR_GRPC_ADDR: grpcAddr,
    FLOOR_HTTP_ADDR: httpUrl.slice('http://'.length),
  });
  await waitReady(httpUrl, program);
  return {
    program,
    grpcAddr,
    taken: async () => {
      const res = await fetch(`${httpUrl}/count`);
      return ((await res.json()) as { updates: number }).updates;
    },
    stop: () => killChild(program.child, 'SIGTERM'),
  };
}

/** The built controller program, as bench/lib/procs starts it (`main`: another build's). */
async function startCtl(nodeArgs: string[], main: string): Promise<Server> {
  const grpcAddr = `127.0.0.1:${await freePort()}`;
  const metricsUrl = `http://127.0.0.1:${await freePort()}`;
  const program = spawnServer(main, nodeArgs, {
    LOG_LEVEL: 'warn',
    CONTROLLER_LISTEN_ADDR: grpcAddr,
    METRICS_ADDR: metricsUrl.slice('http://'.length),
    CONTROLLER_SHUTDOWN_GRACE_MS: '1000',
  });
  const ctl = { program, grpcAddr, metricsUrl };
  await waitReady(ctl.metricsUrl, ctl.program);
  return {
    program: ctl.program,
    grpcAddr: ctl.grpcAddr,
    taken: async () => {
      const text = await scrape(ctl.metricsUrl);
      return metricSum(text, G.updates) + (metricSum(text, SUPERSEDED) || 0);
    },
    stop: () => stopGracefully(ctl),
  };
}

const load1 = () => loadavg()[0]!;

/**
 * `--pin`: the CPU the server has to itself, and the others (generators, this runner).
 * Read once, before this runner is pinned (which narrows what it may run on).
 */
let pinned: { server: string; rest: string } | undefined;
function cpuSets(): { server: string; rest: string } {
  if (pinned) return pinned;
  const n = availableParallelism();
  if (n < 2) throw new Error(`--pin needs 2 or more CPUs; this machine offers ${n}`);
  return (pinned = { server: String(n - 1), rest: n === 2 ? '0' : `0-${n - 2}` });
}

/** Sets a process's CPU affinity with taskset (util-linux); fails loudly without it. */
function pinTo(pid: number, cpus: string): void {
  try {
    execFileSync('taskset', ['-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`--pin: taskset -p -c ${cpus} ${pid} failed (is util-linux installed?)`, {
      cause: err,
    });
  }
}

async function measure(
  o: Options,
  sc: Scenario,
  kind: ServerKind,
  round: number,
  log: (m: string) => void,
): Promise<RunResult> {
  const loadStart = load1();
  const prof = o.cpuProf
    ? [
        '--cpu-prof',
        '--cpu-prof-dir',
        o.cpuProf,
        '--cpu-prof-name',
        `${kind}-${sc.name}-r${round}.cpuprofile`,
      ]
    : [];
  const server =
    kind === 'floor'
      ? await startFloor(prof)
      : await startCtl(
          prof,
          kind === 'baseline'
            ? o.baselineMain!
            : join(ROOT, 'dist', 'services', 'controller', 'main.js'),
        );
  const k = sc.perSec ? o.pacedGens : o.gens;
  const sims = Array.from({ length: k }, () => new Sim(server.grpcAddr));
  if (o.pin) {
    const cpus = cpuSets();
    pinTo(server.program.pid, cpus.server);
    for (const sim of sims) pinTo(sim.pid, cpus.rest);
  }
  try {
    await Promise.all(
      sims.map((sim, s) =>
        sim.request({
          type: 'add',
          nodes: Array.from({ length: Math.ceil(sc.nodes / k) }, (_, i) => i * k + s)
            .filter((n) => n < sc.nodes)
            .map((n) => ({
              uuid: crypto.randomUUID(),
              name: `floor-${n}`,
              pairs: Array.from({ length: sc.pairsPerNode }, (_, p) => `F${n}K${p}_USD`),
            })),
        }),
      ),
    );
    const streams = sc.nodes * sc.pairsPerNode;
    await waitUntil(
      'every pair streaming',
      async () =>
        (await Promise.all(sims.map((s) => s.status()))).reduce(
          (a, s) => a + s.streamingPairs,
          0,
        ) === streams,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await Promise.all(
      (sc.idle ? [] : sims).map((s) =>
        s.request({
          type: 'prices',
          mode: sc.perSec ? 'paced' : 'max',
          perSec: sc.perSec ? sc.perSec / k : undefined,
          batch: sc.batch,
        }),
      ),
    );
    await sleep(o.warmupMs);
    const g0 = await Promise.all(sims.map((s) => s.status()));
    const tg0 = performance.now();
    const n0 = await server.taken();
    const c0 = server.program.cpuSeconds();
    const w0 = process.hrtime.bigint();
    const t0 = performance.now();
    await sleep(o.windowMs);
    const c1 = server.program.cpuSeconds();
    const w1 = process.hrtime.bigint();
    const t1 = performance.now();
    const n1 = await server.taken();
    const g1 = await Promise.all(sims.map((s) => s.status()));
    const tg1 = performance.now();
    await Promise.all(sims.map((s) => s.request({ type: 'prices', mode: 'off' })));
    const secs = (t1 - t0) / 1000;
    const gsecs = (tg1 - tg0) / 1000;
    const sent = g1.reduce((a, g, i) => a + g.sent - g0[i]!.sent, 0);
    const skipped = g1.reduce((a, g, i) => a + g.skipped - g0[i]!.skipped, 0);
    const r: RunResult = {
      round,
      scenario: sc.name,
      server: kind,
      rate: (n1 - n0) / secs,
      cores: (c1 - c0) / secs,
      perCpuSecond: c1 > c0 ? (n1 - n0) / (c1 - c0) : NaN,
      genRates: g1.map((g, i) => (g.sent - g0[i]!.sent) / gsecs),
      backlogPerSec: sent / gsecs - (n1 - n0) / secs,
      skippedShare: sent > 0 ? skipped / sent : 0,
      reconnects: g1.reduce((a, g, i) => a + g.reconnects - g0[i]!.reconnects, 0),
      load: [loadStart, load1()],
      windowUs: [Number(w0 / 1000n), Number(w1 / 1000n)],
    };
    log(
      `round ${round} ${sc.name} ${kind}: ${sc.idle ? `${(r.cores * 1000).toFixed(1)} ms of CPU per s idle, ` : ''}${fmt(r.perCpuSecond)} updates/cpu-s, ${fmt(r.rate)} updates/s, ` +
        `${r.cores.toFixed(2)} cores; generators wrote ${r.genRates.map(fmt).join(' + ')} /s ` +
        `(${r.backlogPerSec > 0.02 * r.rate ? `${fmt(r.backlogPerSec)}/s more than taken: saturated` : 'all taken'}; ` +
        `skipped ${(r.skippedShare * 100).toFixed(0)} % of write attempts); ${r.reconnects} reconnects; ` +
        `load ${r.load.map((x) => x.toFixed(1)).join(' -> ')}`,
    );
    return r;
  } finally {
    await Promise.all(sims.map((s) => s.kill()));
    await server.stop();
  }
}

function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

export function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Side {
  perCpuSecond: number;
  rate: number;
  cores: number;
  runs: number;
  /** Median per-CPU-second figure over the floor's median. */
  ratio: number;
  /** The median of each round's figure / the floor's in that round. */
  ratioOfRounds: number;
}

export interface Summary {
  scenario: string;
  floor: Side;
  controller: Side;
  /** With --baseline-main: the other build's controller. */
  baseline?: Side;
  load: [number, number];
}

export function summarize(results: RunResult[], names: string[]): Summary[] {
  return names.map((scenario) => {
    const mine = results.filter((r) => r.scenario === scenario);
    const rounds = [...new Set(mine.map((r) => r.round))];
    const floorIn = (round: number) =>
      mine.find((r) => r.round === round && r.server === 'floor')?.perCpuSecond ?? NaN;
    const floorMedian = median(mine.filter((r) => r.server === 'floor').map((r) => r.perCpuSecond));
    const of = (kind: ServerKind): Side | undefined => {
      const rs = mine.filter((r) => r.server === kind);
      if (rs.length === 0) return undefined;
      const perCpuSecond = median(rs.map((r) => r.perCpuSecond));
      return {
        perCpuSecond,
        rate: median(rs.map((r) => r.rate)),
        cores: median(rs.map((r) => r.cores)),
        runs: rs.length,
        ratio: perCpuSecond / floorMedian,
        ratioOfRounds: median(
          rounds.map(
            (round) => (rs.find((r) => r.round === round)?.perCpuSecond ?? NaN) / floorIn(round),
          ),
        ),
      };
    };
    const loads = mine.flatMap((r) => r.load);
    return {
      scenario,
      floor: of('floor')!,
      controller: of('controller')!,
      baseline: of('baseline'),
      load: [Math.min(...loads), Math.max(...loads)],
    };
  });
}

function table(sums: Summary[]): string {
  const withBaseline = sums.some((s) => s.baseline);
  const lines = [
    '| scenario | floor updates/cpu-s | controller updates/cpu-s | ratio (of medians) | median of round ratios |' +
      (withBaseline
        ? ' baseline updates/cpu-s | baseline ratio | baseline median of round ratios |'
        : '') +
      ' floor / controller updates/s (cores) | load avg |',
    '| --- | ---: | ---: | ---: | ---: |' +
      (withBaseline ? ' ---: | ---: | ---: |' : '') +
      ' --- | --- |',
  ];
  const side = (x: Side) =>
    `${fmt(x.perCpuSecond)} | ${x.ratio.toFixed(2)} | ${x.ratioOfRounds.toFixed(2)} |`;
  for (const s of sums)
    lines.push(
      `| ${s.scenario} | ${fmt(s.floor.perCpuSecond)} | ${side(s.controller)}` +
        (withBaseline ? ` ${s.baseline ? side(s.baseline) : '| | |'}` : '') +
        ` ${fmt(s.floor.rate)} (${s.floor.cores.toFixed(2)}) / ${fmt(s.controller.rate)} (${s.controller.cores.toFixed(2)}) |` +
        ` ${s.load.map((x) => x.toFixed(1)).join('-')} |`,
    );
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<Summary[]> {
  const o = parseArgs(argv);
  const log = (m: string) => console.error(`[ingest-floor] ${m}`);
  const all = scenarios(o.smoke, o.only?.has(IDLE_SCENARIO)).filter(
    (s) => !o.only || o.only.has(s.name),
  );
  if (all.length === 0) throw new Error('no scenario selected');
  if (o.pin) pinTo(process.pid, cpuSets().rest);
  const deadline = Date.now() + o.maxMinutes * 60_000;
  if (!process.version.startsWith('v24.'))
    log(
      `warning: Node ${process.version}, not the project's Node 24 (run it as \`npx node ...\`); ` +
        'before 24, AsyncLocalStorage (the trace context of the controller) costs per async resource',
    );
  log(
    `Node ${process.version}; ${o.rounds} round(s), ${all.map((s) => s.name).join(', ')}; generators: ${o.gens} at full rate, ` +
      `${o.pacedGens} paced; window ${o.windowMs} ms; load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  const results: RunResult[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const [i, sc] of all.entries()) {
      // Rotate which server goes first, by round and by scenario.
      const kinds: ServerKind[] = o.baselineMain
        ? ['floor', 'controller', 'baseline']
        : ['floor', 'controller'];
      const first = (round + i) % kinds.length;
      const order = [...kinds.slice(first), ...kinds.slice(0, first)];
      for (const kind of order) {
        if (Date.now() > deadline) throw new Error(`gave up after ${o.maxMinutes} min`);
        results.push(await measure(o, sc, kind, round, log));
      }
    }
  }
  const sums = summarize(
    results,
    all.map((s) => s.name),
  );
  console.log(table(sums));
  if (o.json)
    writeFileSync(
      o.json,
      JSON.stringify({ options: { ...o, only: o.only && [...o.only] }, results, sums }, null, 2) +
        '\n',
    );
  return sums;
}

if (require.main === module) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      void killAll().finally(() => process.exit(130));
    });
  main(process.argv.slice(2))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(() => void killAll());
}
