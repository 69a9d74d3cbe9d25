/**
 * Chaos under load, for a bounded time: many nodes with overlapping pairs, and a seeded
 * schedule of faults - SIGKILL, SIGSTOP, kick, a connection cut without closing, controller
 * restarts, a second node program started with an existing node's NODE_UUID, and a quiet
 * streamer (registers, never sends a price). After each fault, every known pair must again
 * have its configured number of streamers within the detection bound, and prices dated
 * after the fault must reach a live `watch` from a node other than the failed one (with two
 * streamers per pair watchers see one market, the primary's: a lost primary's standby is
 * promoted at once, and the new streamer is a hot standby until it is needed); no pair may
 * ever show more than
 * configured; no CLI command may hang past its timeout; controller memory stays bounded.
 * Figures are printed; CHAOS_SEED=<n> replays a schedule, CHAOS_ROUNDS sets its length.
 */
import { randomUUID } from 'node:crypto';
import { seededRandom } from '../../services/shared/scheduler';
import { BlackholeProxy } from '../support/blackhole-proxy';
import { type NodeView, type PriceWatch, type StreamView, priceMs } from '../support/harness';
import { freePort } from '../support/ports';
import { metricValue, startWatch, waitUntilReady } from '../support/process-harness';
import { type Program, killAll, runProgram, startProgram } from '../support/processes';
import { RawNode } from '../support/raw-peers';
import { waitFor } from '../support/wait';

const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 10);
const STREAMS_PER_PAIR = 2;
const RECOVERY_BOUND_MS = 8000; // keepalive detection (~2 s) plus reconnect backoff, generously
const PRICE_BOUND_MS = 8000; // the new streamer sends a first price at once; generous
/** Small, so a quiet streamer loses its pairs within a round; every real node sends far more often. */
const STALE_STREAM_MS = 3000;
const CLI_TIMEOUT_S = 3;
const PAIRS = ['USD_HKD', 'EUR_USD', 'GBP_USD', 'USD_JPY', 'BTC_USD', 'ETH_USD'];
const FAULTS = ['kill', 'freeze', 'kick', 'cut', 'restart', 'duplicate', 'quiet'] as const;
type Fault = (typeof FAULTS)[number];

jest.setTimeout(60_000 + ROUNDS * 20_000);

interface ChaosNode {
  uuid: string;
  pairs: string[];
  proc: Program;
  proxy: BlackholeProxy;
}

/** Every proxy made, closed at the end even when a round failed. */
const proxies: BlackholeProxy[] = [];
afterAll(async () => {
  await killAll();
  for (const p of proxies) await p.close();
});

/** Every fault once (as far as ROUNDS allows), the rest picked at random; shuffled by the seed. */
function schedule(rnd: () => number): Fault[] {
  const extra = ['kill', 'freeze', 'cut', 'kick', 'duplicate', 'quiet'] as const;
  const all: Fault[] = [...FAULTS];
  while (all.length < ROUNDS) all.push(extra[Math.floor(rnd() * extra.length)]!);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, ROUNDS);
}

test(`every pair keeps ${STREAMS_PER_PAIR} streamers, and prices from new streamers arrive, through ${ROUNDS} seeded faults`, async () => {
  const rnd = seededRandom(SEED);
  const plan = schedule(rnd);
  console.log(
    `chaos seed ${SEED} (replay with CHAOS_SEED=${SEED}), ${ROUNDS} rounds: ${plan.join(' ')}`,
  );
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const address = `127.0.0.1:${grpcPort}`;
  let controller!: Program;
  let watch!: PriceWatch;
  const startController = async () => {
    controller = startProgram('controller', {
      CONTROLLER_LISTEN_ADDR: address,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
      CONTROLLER_STREAMS_PER_PAIR: String(STREAMS_PER_PAIR),
      CONTROLLER_STALE_STREAM_MS: String(STALE_STREAM_MS),
      LOG_LEVEL: 'warn',
    });
    await waitUntilReady(controller, metricsPort);
    // A live watch of every pair: it sees a new streamer's prices even if the pair moves on.
    watch = await startWatch(address, []);
  };
  await startController();
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const disconnects = (text: string, reasons: string[]) =>
    reasons.reduce(
      (sum, reason) =>
        sum +
        (metricValue(text, 'currency_controller_node_disconnects_total', `{reason="${reason}"}`) ??
          0),
      0,
    );
  const staleMoves = (text: string) =>
    PAIRS.reduce(
      (sum, p) =>
        sum + (metricValue(text, 'currency_controller_stale_streams_total', `{pair="${p}"}`) ?? 0),
      0,
    );

  const nodes: ChaosNode[] = [];
  let spawned = 0;
  const startNode = async (uuid: string, pairs: string[], name: string) => {
    const proxy = await BlackholeProxy.start(grpcPort);
    proxies.push(proxy);
    const proc = startProgram('node', {
      NODE_CONTROLLER_ADDR: `127.0.0.1:${proxy.port}`,
      NODE_CURRENCY_PAIRS: pairs.join(','),
      NODE_UUID: uuid,
      NODE_NAME: name,
      NODE_PRICE_INTERVAL_MS: '50-150', // load: ~10 updates/s per streamed pair
      METRICS_ADDR: '127.0.0.1:0',
      LOG_LEVEL: 'warn',
    });
    return { uuid, pairs, proc, proxy };
  };
  const spawnNode = async (): Promise<ChaosNode> => {
    // Four of the six pairs, so each pair has several capable nodes.
    const pairs = [...PAIRS].sort(() => rnd() - 0.5).slice(0, 4);
    const n = await startNode(randomUUID(), pairs, `n${++spawned}`);
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
  const streams = async (): Promise<StreamView[] | undefined> => {
    const r = await cli(['--json', 'controller', 'streams']);
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout) as StreamView[];
    // Never more streamers than configured, at any moment.
    for (const p of s) if (p.nodeUuids.length > STREAMS_PER_PAIR) overMax++;
    return s;
  };
  const listNodes = async (): Promise<NodeView[] | undefined> => {
    const r = await cli(['--json', 'controller', 'nodes']);
    return r.code === 0 ? (JSON.parse(r.stdout) as NodeView[]) : undefined;
  };
  const healthy = (s: StreamView[]) =>
    PAIRS.every((p) => {
      const v = s.find((x) => x.currencyPair === p);
      return (
        v !== undefined &&
        v.nodeUuids.length === Math.min(STREAMS_PER_PAIR, v.capableNodes) &&
        v.nodeUuids.length > 0
      );
    });
  const waitHealthy = (what: string) =>
    waitFor(
      what,
      async () => {
        const s = await streams();
        return s !== undefined && healthy(s) ? s : undefined;
      },
      { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100 },
    );

  /**
   * Waits until the watch shows, for each pair in `pairs`, a price dated after `t0` from a
   * node `from` accepts; records how long after the fault (`faultAt`) that was.
   */
  const priceDelays: { fault: Fault; ms: number }[] = [];
  let faultAt = 0;
  const waitPricesFrom = async (
    fault: Fault,
    t0: number,
    pairs: string[],
    from: (pair: string, nodeUuid: string) => boolean,
  ) => {
    if (pairs.length === 0) return;
    await waitFor(
      `prices from the new streamer of ${pairs.join(',')} after ${fault} (seed ${SEED})`,
      () =>
        pairs.every((pair) =>
          watch
            .updates()
            .some((u) => u.currencyPair === pair && priceMs(u) > t0 && from(pair, u.nodeUuid)),
        ),
      { timeoutMs: PRICE_BOUND_MS, intervalMs: 50 },
    ).catch(async (err: unknown) => {
      // What was seen, for the next person to read this failure.
      const seen = pairs.map((pair) => ({
        pair,
        since: watch
          .updates()
          .filter((u) => u.currencyPair === pair && priceMs(u) > t0)
          .map((u) => u.nodeUuid.slice(0, 8))
          .slice(-10),
      }));
      throw new Error(
        `${String(err)}\nprices since the fault (last 10 senders): ${JSON.stringify(seen)}\nstreams now: ${JSON.stringify(await streams())}`,
      );
    });
    priceDelays.push({ fault, ms: Date.now() - faultAt });
  };
  /** Pairs `uuid` streams in `s` that some capable node not streaming them could take over. */
  const movablePairsOf = (s: StreamView[], uuid: string) =>
    s
      .filter((x) => x.nodeUuids.includes(uuid) && x.capableNodes > x.nodeUuids.length)
      .map((x) => x.currencyPair);
  const notAmong = (s: StreamView[]) => (pair: string, uuid: string) =>
    !(s.find((x) => x.currencyPair === pair)?.nodeUuids ?? []).includes(uuid);

  await waitFor(
    'initial steady state',
    async () => {
      const s = await streams();
      return s !== undefined && healthy(s);
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );

  const recoveries: { fault: Fault; ms: number }[] = [];
  const figures = { replacedInDuplicateRounds: [] as number[], quietPairsMoved: 0 };
  let restarts = 0;
  for (let round = 0; round < plan.length; round++) {
    let fault = plan[round]!;
    if (fault === 'restart' && restarts >= 2) fault = 'kill';
    const s = (await streams()) ?? [];
    // Aim at a node that is streaming something, so every fault forces a move.
    const streaming = new Set(s.flatMap((x) => x.nodeUuids));
    const candidates = nodes.filter((n) => streaming.has(n.uuid));
    const victim = candidates[Math.floor(rnd() * candidates.length)] ?? nodes[0]!;
    const textBefore = await metrics();
    const lostBefore = disconnects(textBefore, ['lost', 'closed', 'replaced']);
    let lastSeen = '';
    const t0 = Date.now();
    faultAt = t0;
    let after: (() => Promise<void>) | undefined;
    if (fault === 'duplicate') {
      // As a Helm value copied to a group with several replicas: same UUID, same pairs.
      const name = `dup-r${round}`;
      const dup = await startNode(victim.uuid, victim.pairs, name);
      const took = await waitFor(
        `the duplicate of ${victim.uuid} takes over (round ${round}, seed ${SEED})`,
        async () => {
          const list = await listNodes();
          return list?.some((n) => n.nodeUuid === victim.uuid && n.name === name)
            ? Date.now()
            : undefined;
        },
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100 },
      );
      await waitFor('the displaced node to log the conflict', () =>
        victim.proc.logLines().some((l) => l.level === 'error' && /NODE_UUID/.test(String(l.msg))),
      );
      const settled = await waitHealthy(`recovery from duplicate (round ${round}, seed ${SEED})`);
      recoveries.push({ fault, ms: Date.now() - t0 });
      // Prices under that UUID after the takeover can only come from the duplicate; watchers
      // see them for the pairs it is the primary streamer of (one market per pair).
      const ownPairs = settled
        .filter((x) => x.nodeUuids[0] === victim.uuid)
        .map((x) => x.currencyPair);
      await waitPricesFrom(fault, took, ownPairs, (_pair, u) => u === victim.uuid);
      // Settled, not flapping: one replacement (two if a reconnect raced it), and one of
      // the two is connected - the newer one.
      const replaced =
        disconnects(await metrics(), ['replaced']) - disconnects(textBefore, ['replaced']);
      figures.replacedInDuplicateRounds.push(replaced);
      expect(replaced).toBeGreaterThanOrEqual(1);
      expect(replaced).toBeLessThanOrEqual(2);
      const list = (await listNodes()) ?? [];
      expect(list.filter((n) => n.nodeUuid === victim.uuid).map((n) => n.name)).toEqual([name]);
      // The displaced one waits >= 30 s before trying again; it leaves, the duplicate stays.
      victim.proc.signal('SIGKILL');
      await victim.proc.exited;
      await victim.proxy.close();
      nodes.splice(nodes.indexOf(victim), 1, dup);
    } else if (fault === 'quiet') {
      // Registers, is handed pairs (it carries the fewest streams), never sends a price.
      const quiet = new RawNode(address, randomUUID());
      try {
        quiet.announce(PAIRS);
        await quiet.next('the quiet streamer handed a pair', () => {
          const started = (quiet.latestDesiredState()?.streamStates ?? []).filter(
            (x) => x.streamState === 1,
          );
          return started.length > 0 ? started.map((x) => x.currencyPair) : undefined;
        });
        // Prices dated after this are not the donor's: it stopped before handing the pair over.
        const handed = Date.now();
        const withQuiet = await waitFor(
          'the quiet streamer listed as a streamer',
          async () => {
            const now = await streams();
            return now?.some((x) => x.nodeUuids.includes(quiet.uuid)) ? now : undefined;
          },
          { timeoutMs: STALE_STREAM_MS, intervalMs: 50 },
        );
        // A pair the quiet node alone can stream stays with it (nobody else may recover it).
        const movable = movablePairsOf(withQuiet, quiet.uuid);
        const stillHeld = () =>
          (quiet.latestDesiredState()?.streamStates ?? []).filter(
            (x) => x.streamState === 1 && movable.includes(x.currencyPair),
          );
        await waitFor(
          `the quiet streamer's pairs ${movable.join(',')} taken away (round ${round}, seed ${SEED})`,
          () => stillHeld().length === 0,
          { timeoutMs: STALE_STREAM_MS + RECOVERY_BOUND_MS, intervalMs: 50 },
        );
        await waitHealthy(`recovery from quiet (round ${round}, seed ${SEED})`);
        recoveries.push({ fault, ms: Date.now() - t0 });
        expect(staleMoves(await metrics()) - staleMoves(textBefore)).toBeGreaterThanOrEqual(
          movable.length,
        );
        figures.quietPairsMoved += movable.length;
        // Each pair went to a node that was not streaming it, and watchers get prices from
        // the pair's primary now (the new streamer, or the standby promoted over it).
        await waitPricesFrom(fault, handed, movable, (_pair, u) => u !== quiet.uuid);
      } finally {
        quiet.close();
      }
    } else {
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
        await watch.stop();
        controller.signal('SIGTERM');
        await controller.exited;
        await startController();
      }
      // Recovered when every pair again has its configured streamers and the controller has
      // noticed the fault: a killed or frozen node streams nothing; a cut connection was
      // detected as lost (the node itself reconnects on a new connection meanwhile).
      const gone = fault === 'kill' || fault === 'freeze' ? victim.uuid : undefined;
      const settled = await waitFor(
        `recovery from ${fault} of ${victim.uuid} (round ${round}, seed ${SEED})`,
        async () => {
          const now = await streams();
          const lost = disconnects(await metrics(), ['lost', 'closed', 'replaced']);
          lastSeen = JSON.stringify({ lost, lostBefore, streams: now });
          if (now === undefined || !healthy(now)) return undefined;
          if (gone !== undefined && now.some((x) => x.nodeUuids.includes(gone))) return undefined;
          return fault !== 'cut' || lost > lostBefore ? now : undefined;
        },
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 100 },
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; last seen: ${lastSeen}`);
      });
      recoveries.push({ fault, ms: Date.now() - t0 });
      if (fault === 'restart') {
        // A new controller: every pair priced by one of its streamers since the restart.
        await waitPricesFrom(fault, t0, PAIRS, (pair, u) => !notAmong(settled)(pair, u));
      } else if (fault === 'cut') {
        // The node may be back on a new connection (replacing its dead one) before the
        // controller noticed, and keep its pairs: its prices dated after the cut came over
        // that new connection (the cut one carries nothing), so they count as well.
        await waitPricesFrom(
          fault,
          t0,
          movablePairsOf(s, victim.uuid),
          // Watchers get only a current primary's prices: any after the fault will do.
          () => true,
        );
      } else if (fault === 'kick') {
        // A kicked node reconnects within moments and may take one of its pairs back (the
        // rebalance toward a node with no load) before the replacement's first price is
        // in: a price from the victim's new stream counts too, as does one from the pair's
        // primary now (watchers see only the primary's prices: one market per pair).
        await waitPricesFrom(
          fault,
          t0,
          movablePairsOf(s, victim.uuid),
          // Watchers get only a current primary's prices: any after the fault will do.
          () => true,
        );
      } else {
        // Each pair the victim streamed went to a node that was not streaming it before, and
        // watchers get prices from the pair's primary now (the new streamer, or the standby
        // promoted when the victim was the primary).
        await waitPricesFrom(
          fault,
          t0,
          movablePairsOf(s, victim.uuid),
          (_pair, u) => u !== victim.uuid,
        );
      }
    }
    await after?.();
    // The next fault starts from a whole group: every node connected, every pair streamed.
    await waitFor(
      `every node connected again after ${fault} (round ${round}, seed ${SEED})`,
      async () => {
        const list = await listNodes();
        return list !== undefined && nodes.every((n) => list.some((x) => x.nodeUuid === n.uuid));
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    await waitHealthy(`steady state after round ${round} (seed ${SEED})`);
  }

  await watch.stop();
  const text = await metrics();
  const rssMb = (metricValue(text, 'process_resident_memory_bytes') ?? 0) / 1024 / 1024;
  const byFault = new Map<string, number[]>();
  for (const r of recoveries) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r.ms]);
  const pricedBy = new Map<string, number[]>();
  for (const r of priceDelays) pricedBy.set(r.fault, [...(pricedBy.get(r.fault) ?? []), r.ms]);
  console.log(
    [
      `chaos figures (seed ${SEED}): ${recoveries.length} faults, ${nodes.length} nodes at the end`,
      ...[...byFault].map(
        ([f, ms]) =>
          `  ${f}: recovered in ${ms.join(', ')} ms; new streamers' prices seen after ${(pricedBy.get(f) ?? []).join(', ')} ms`,
      ),
      `  duplicate UUID: replacements per round ${figures.replacedInDuplicateRounds.join(', ') || '-'}`,
      `  quiet streamers: ${figures.quietPairsMoved} pair(s) moved as stale`,
      `  CLI calls: ${cliDurations.length}, slowest ${Math.max(...cliDurations)} ms (timeout ${CLI_TIMEOUT_S} s)`,
      `  moments with more streamers than configured: ${overMax}`,
      `  controller RSS at the end: ${rssMb.toFixed(1)} MiB`,
    ].join('\n'),
  );
  expect(recoveries).toHaveLength(ROUNDS);
  expect(overMax).toBe(0);
  expect(rssMb).toBeGreaterThan(0);
  expect(rssMb).toBeLessThan(400);
});
