/**
 * Chaos under load, for a bounded time: many nodes with overlapping pairs, and a seeded
 * schedule of faults - SIGKILL, SIGSTOP, kick, a connection cut without closing, and
 * controller restarts. After each fault, every known pair must again have its configured
 * number of streamers within the detection bound; no pair may ever show more than
 * configured; no CLI command may hang past its timeout; controller memory stays bounded.
 * Figures are printed; CHAOS_SEED=<n> replays a schedule, CHAOS_ROUNDS sets its length.
 */
import { randomUUID } from 'node:crypto';
import { seededRandom } from '../../services/shared/scheduler';
import { BlackholeProxy } from '../support/blackhole-proxy';
import { freePort } from '../support/ports';
import { httpStatus, metricValue } from '../support/process-harness';
import { type Program, killAll, runProgram, startProgram } from '../support/processes';
import { sleep, waitFor } from '../support/wait';

const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 10);
const STREAMS_PER_PAIR = 2;
const RECOVERY_BOUND_MS = 8000; // keepalive detection (~2 s) plus reconnect backoff, generously
const CLI_TIMEOUT_S = 3;
const PAIRS = ['USD_HKD', 'EUR_USD', 'GBP_USD', 'USD_JPY', 'BTC_USD', 'ETH_USD'];

jest.setTimeout(60_000 + ROUNDS * 15_000);

interface ChaosNode {
  uuid: string;
  pairs: string[];
  proc: Program;
  proxy: BlackholeProxy;
}

type Stream = {
  currencyPair: string;
  nodeUuids: string[];
  capableNodes: number;
  desiredStreams: number;
};

afterAll(async () => {
  await killAll();
});

test(`every pair keeps ${STREAMS_PER_PAIR} streamers through ${ROUNDS} seeded faults`, async () => {
  console.log(`chaos seed ${SEED} (replay with CHAOS_SEED=${SEED}), ${ROUNDS} rounds`);
  const rnd = seededRandom(SEED);
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const address = `127.0.0.1:${grpcPort}`;
  let controller!: Program;
  const startController = async () => {
    controller = startProgram('controller', {
      CONTROLLER_LISTEN_ADDR: address,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      CONTROLLER_STREAMS_PER_PAIR: String(STREAMS_PER_PAIR),
      LOG_LEVEL: 'warn',
    });
    await waitFor(
      'controller ready',
      async () => (await httpStatus(`http://127.0.0.1:${metricsPort}/readyz`)) === 200,
    );
  };
  await startController();

  const nodes: ChaosNode[] = [];
  const spawnNode = async (): Promise<ChaosNode> => {
    // Four of the six pairs, so each pair has several capable nodes.
    const pairs = [...PAIRS].sort(() => rnd() - 0.5).slice(0, 4);
    const proxy = await BlackholeProxy.start(grpcPort);
    const uuid = randomUUID();
    const proc = startProgram('node', {
      NODE_CONTROLLER_ADDR: `127.0.0.1:${proxy.port}`,
      NODE_CURRENCY_PAIRS: pairs.join(','),
      NODE_UUID: uuid,
      NODE_PRICE_INTERVAL_MS: '50-150', // load: ~10 updates/s per streamed pair
      METRICS_ADDR: '127.0.0.1:0',
      LOG_LEVEL: 'warn',
    });
    const n = { uuid, pairs, proc, proxy };
    nodes.push(n);
    return n;
  };
  for (let i = 0; i < 8; i++) await spawnNode();

  const cliDurations: number[] = [];
  const cli = async (args: string[]) => {
    const t0 = Date.now();
    const r = await runProgram(
      'cli',
      ['--controller', address, '--timeout', String(CLI_TIMEOUT_S), ...args],
      {},
      20_000,
    );
    const ms = Date.now() - t0;
    cliDurations.push(ms);
    // No command may hang past its timeout (plus process start-up).
    expect(ms).toBeLessThan(CLI_TIMEOUT_S * 1000 + 3000);
    return r;
  };
  let overMax = 0;
  const streams = async (): Promise<Stream[] | undefined> => {
    const r = await cli(['--json', 'controller', 'streams']);
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout) as Stream[];
    // Never more streamers than configured, at any moment.
    for (const p of s) if (p.nodeUuids.length > STREAMS_PER_PAIR) overMax++;
    return s;
  };
  const healthy = (s: Stream[]) =>
    PAIRS.every((p) => {
      const v = s.find((x) => x.currencyPair === p);
      return (
        v !== undefined &&
        v.nodeUuids.length === Math.min(STREAMS_PER_PAIR, v.capableNodes) &&
        v.nodeUuids.length > 0
      );
    });

  await waitFor(
    'initial steady state',
    async () => {
      const s = await streams();
      return s !== undefined && healthy(s);
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );

  // Node streams the controller has seen end, for any reason: a cut shows as 'lost', as
  // 'closed' when the node's own keepalive fired first and its socket closed, or as
  // 'replaced' when the node was back on a new connection before the old one timed out.
  const lostCount = async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return ['lost', 'closed', 'replaced'].reduce(
      (sum, reason) =>
        sum +
        (metricValue(text, 'currency_controller_node_disconnects_total', `{reason="${reason}"}`) ??
          0),
      0,
    );
  };
  const recoveries: { fault: string; ms: number }[] = [];
  const faults = ['kill', 'freeze', 'kick', 'cut', 'kill', 'freeze', 'cut', 'restart'] as const;
  let restarts = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let fault: (typeof faults)[number] = faults[Math.floor(rnd() * faults.length)]!;
    if (fault === 'restart' && restarts >= 2) fault = 'kill';
    const s = (await streams()) ?? [];
    // Aim at a node that is streaming something, so every fault forces a move.
    const streaming = new Set(s.flatMap((x) => x.nodeUuids));
    const candidates = nodes.filter((n) => streaming.has(n.uuid));
    const victim = candidates[Math.floor(rnd() * candidates.length)] ?? nodes[0]!;
    const lostBefore = await lostCount();
    let lastSeen = '';
    const t0 = Date.now();
    let after: (() => Promise<void>) | undefined;
    if (fault === 'kill') {
      victim.proc.signal('SIGKILL');
      await victim.proc.exited;
      nodes.splice(nodes.indexOf(victim), 1);
      await victim.proxy.close();
      after = async () => void (await spawnNode());
    } else if (fault === 'freeze') {
      victim.proc.signal('SIGSTOP');
      after = async () => victim.proc.signal('SIGCONT');
    } else if (fault === 'kick') {
      expect((await cli(['controller', 'kick', victim.uuid])).code).toBe(0);
    } else if (fault === 'cut') {
      const release = victim.proxy.cut();
      after = async () => release();
    } else {
      restarts++;
      controller.signal('SIGTERM');
      await controller.exited;
      await startController();
    }
    // Recovered when every pair again has its configured streamers and the controller has
    // noticed the fault: a killed or frozen node streams nothing; a cut connection was
    // detected as lost (the node itself reconnects on a new connection meanwhile).
    const gone = fault === 'kill' || fault === 'freeze' ? victim.uuid : undefined;
    await waitFor(
      `recovery from ${fault} of ${victim.uuid} (round ${round}, seed ${SEED})`,
      async () => {
        const now = await streams();
        lastSeen = JSON.stringify({ lost: await lostCount(), lostBefore, streams: now });
        if (now === undefined || !healthy(now)) return false;
        if (gone !== undefined && now.some((x) => x.nodeUuids.includes(gone))) return false;
        return fault !== 'cut' || (await lostCount()) > lostBefore;
      },
      { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; last seen: ${lastSeen}`);
    });
    recoveries.push({ fault, ms: Date.now() - t0 });
    await after?.();
    await sleep(300);
  }

  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const rssMb = (metricValue(text, 'process_resident_memory_bytes') ?? 0) / 1024 / 1024;
  const byFault = new Map<string, number[]>();
  for (const r of recoveries) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r.ms]);
  console.log(
    [
      `chaos figures (seed ${SEED}): ${recoveries.length} faults, ${nodes.length} nodes at the end`,
      ...[...byFault].map(([f, ms]) => `  ${f}: recovered in ${ms.join(', ')} ms`),
      `  CLI calls: ${cliDurations.length}, slowest ${Math.max(...cliDurations)} ms (timeout ${CLI_TIMEOUT_S} s)`,
      `  moments with more streamers than configured: ${overMax}`,
      `  controller RSS at the end: ${rssMb.toFixed(1)} MiB`,
    ].join('\n'),
  );
  expect(recoveries).toHaveLength(ROUNDS);
  expect(overMax).toBe(0);
  expect(rssMb).toBeGreaterThan(0);
  expect(rssMb).toBeLessThan(400);
  for (const n of nodes) await n.proxy.close();
});
