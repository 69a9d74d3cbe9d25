/**
 * Stage 1 of the k8s tier, a chaos round for leader election: three controller programs
 * share one Lease on the tier's own kube-apiserver, three node programs are given every
 * controller's address, and each round kills the current leader (SIGKILL or SIGTERM, chosen
 * by a seeded random generator) and starts it again after a while. Invariants:
 *  - at no sampled instant are two controllers ready (leading);
 *  - after each round every pair has a price dated after the kill at the new leader, within
 *    a generous bound;
 *  - the prices the leader shows never step back in time (one pair watched across rounds).
 * The seed is printed; CHAOS_SEED=N replays a run.
 *
 * As in the chart, each standby follows the leader's prices through "the Service": here a
 * loopback TCP proxy that sends each new connection to the controller that is ready.
 */
import { existsSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { freePort } from '../support/ports';
import { type Program, killAll, programPath, runProgram, startProgram } from '../support/processes';
import { sleep, waitFor } from '../support/wait';
import { Cluster } from './cluster';

jest.setTimeout(600_000);

const NS = 'leader-chaos';
const LEASE = 'chaos';
const ROUNDS = 7;
/**
 * Kill -> every pair fresh at the new leader: generous bounds (each read is a CLI process),
 * the measured figures are printed. The issue's targets (p99 5 s / 1 s) are the benchmark's
 * (bench/figures/leader-failover.ts, BENCHMARKS.md): today the nodes' reconnect backoff
 * during the leaderless window takes a SIGKILL round to 4-9 s on a loaded machine.
 */
const BOUND_MS = { SIGKILL: 15_000, SIGTERM: 8_000 } as const;
const NODES = [
  { name: 'chaos-1', pairs: ['USD_HKD', 'EUR_USD'] },
  { name: 'chaos-2', pairs: ['EUR_USD', 'GBP_USD'] },
  { name: 'chaos-3', pairs: ['GBP_USD', 'USD_HKD', 'USD_JPY'] },
];
const PAIRS = [...new Set(NODES.flatMap((n) => n.pairs))].sort();
const WATCHED = 'USD_HKD';

let cluster: Cluster;

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ctl {
  id: string;
  grpc: number;
  http: number;
  program?: Program;
}

type Price = { currencyPair: string; price: number; priceUpdatedAt: string; nodeUuid: string };

function startCtl(c: Ctl, followPort: number): void {
  c.program = startProgram('controller', {
    CONTROLLER_FOLLOW_ADDR: `127.0.0.1:${followPort}`,
    CONTROLLER_LISTEN_ADDR: `127.0.0.1:${c.grpc}`,
    METRICS_ADDR: `127.0.0.1:${c.http}`,
    CONTROLLER_LEADER_ELECTION: 'kubernetes',
    CONTROLLER_LEADER_IDENTITY: c.id,
    CONTROLLER_LEASE_NAMESPACE: NS,
    CONTROLLER_LEASE_NAME: LEASE,
    KUBECONFIG: cluster.kubeconfig,
    LOG_LEVEL: 'warn',
  });
}

async function ready(c: Ctl): Promise<boolean> {
  if (!c.program) return false;
  try {
    const r = await fetch(`http://127.0.0.1:${c.http}/readyz`, {
      signal: AbortSignal.timeout(1000),
    });
    return r.status === 200;
  } catch {
    return false;
  }
}

async function readyOnes(group: Ctl[]): Promise<Ctl[]> {
  const r = await Promise.all(group.map(ready));
  return group.filter((_, i) => r[i]);
}

/** The controller Service: each new connection goes to the controller ready right now. */
async function serviceProxy(group: Ctl[]): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    void readyOnes(group).then((l) => {
      if (l.length !== 1) return client.destroy();
      const upstream = connect(l[0]!.grpc, '127.0.0.1');
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function prices(c: Ctl): Promise<Price[] | undefined> {
  const r = await runProgram('cli', [
    '--controller',
    `127.0.0.1:${c.grpc}`,
    '--json',
    'controller',
    'prices',
  ]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Price[]) : undefined;
}

beforeAll(() => {
  if (!existsSync(programPath('controller')))
    throw new Error('dist/ not built: run `npm run build` first');
  cluster = Cluster.shared(1);
  cluster.kubectlOk(['create', 'namespace', NS]);
});

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  cluster?.removeNamespaces([NS]);
});

test(`stage 1: chaos, ${ROUNDS} rounds of killing the leader (SIGKILL or SIGTERM by a seed) while three nodes stream: never two ready, every pair fresh at the new leader in time, no price steps back`, async () => {
  const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = rng(seed);
  console.log(`leader chaos: seed ${seed} (CHAOS_SEED=${seed} replays it)`);
  const group: Ctl[] = [];
  for (const id of ['ctl-a', 'ctl-b', 'ctl-c'])
    group.push({ id, grpc: await freePort(), http: await freePort() });
  const service = await serviceProxy(group);
  let sampling = true;
  let samples = 0;
  const figures: string[] = [];
  try {
    for (const c of group) startCtl(c, service.port);
    const nodePrograms: Program[] = [];
    for (const n of NODES) {
      nodePrograms.push(
        startProgram('node', {
          NODE_CONTROLLER_ADDR: group.map((c) => `127.0.0.1:${c.grpc}`).join(','),
          NODE_CURRENCY_PAIRS: n.pairs.join(','),
          NODE_NAME: n.name,
          METRICS_ADDR: '127.0.0.1:0',
          NODE_PRICE_INTERVAL_MS: '100',
          LOG_LEVEL: 'warn',
        }),
      );
    }

    // Readiness sampled every 50 ms for the whole run: two ready at once is a failure.
    const twoReady: string[] = [];
    const sampler = (async () => {
      for (let i = 0; i < 20_000 && sampling; i++) {
        const l = await readyOnes(group);
        samples++;
        if (l.length > 1)
          twoReady.push(`${new Date().toISOString()}: ${l.map((c) => c.id).join(', ')}`);
        await sleep(50);
      }
    })();

    // The watched pair's timestamp at the leader, over the whole run: it never goes back.
    let round = 0;
    let newestSeen = 0;
    const stepsBack: string[] = [];
    const observe = (c: Ctl, list: Price[]) => {
      const p = list.find((x) => x.currencyPair === WATCHED);
      if (!p) return;
      const t = Date.parse(p.priceUpdatedAt);
      const back = `round ${round}, ${c.id}: ${WATCHED} at ${p.priceUpdatedAt}, after ${new Date(newestSeen).toISOString()} was seen at the leader`;
      if (t < newestSeen && !stepsBack.includes(back)) stepsBack.push(back);
      newestSeen = Math.max(newestSeen, t);
    };
    const leader = (not?: Ctl) =>
      waitFor(
        `exactly one controller ready (leading)${not ? `, not ${not.id}` : ''}`,
        async () => {
          const l = await readyOnes(group);
          return l.length === 1 && l[0] !== not ? l[0]! : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
    /** Every pair with a price dated after `afterMs` at `c`; checks each read on the way. */
    const allFresh = async (c: Ctl, afterMs: number, timeoutMs: number) => {
      let last: Price[] | undefined;
      try {
        return await waitFor(
          `every pair (${PAIRS.join(', ')}) with a price dated after the kill at ${c.id}`,
          async () => {
            const list = await prices(c);
            if (!list) return false;
            last = list;
            observe(c, list);
            const fresh = list.filter(
              (p) => PAIRS.includes(p.currencyPair) && Date.parse(p.priceUpdatedAt) > afterMs,
            );
            return fresh.length === PAIRS.length ? Date.now() : false;
          },
          { timeoutMs, intervalMs: 50 },
        );
      } catch (err) {
        // What the leader held, and what the nodes said, to tell a node from a controller fault.
        const logs = nodePrograms.map((p) => p.stdout().slice(-1500) + p.stderr().slice(-500));
        throw new Error(
          `${String(err)}\nkilled at ${new Date(afterMs).toISOString()}; last prices at ${c.id}: ${JSON.stringify(last)}\nnodes:\n${logs.join('\n---\n')}`,
        );
      }
    };

    let current = await leader();
    await allFresh(current, 0, 30_000);
    for (round = 1; round <= ROUNDS; round++) {
      const sig = random() < 0.5 ? 'SIGKILL' : 'SIGTERM';
      const restartAfterMs = 500 + Math.floor(random() * 2500);
      const before = await prices(current);
      if (before) observe(current, before);
      const killed = current;
      const program = killed.program!;
      const killAt = Date.now();
      program.signal(sig);
      // Still sampled: a leader stopping gracefully must stop being ready before another is.
      const next = await leader(killed);
      const leadMs = Date.now() - killAt;
      expect(next).not.toBe(killed);
      const freshAt = await allFresh(next, killAt, BOUND_MS[sig] + 10_000);
      const freshMs = freshAt - killAt;
      figures.push(
        `round ${round}: ${sig} ${killed.id} -> ${next.id} ready after ${leadMs} ms, every pair fresh after ${freshMs} ms`,
      );
      expect({ round, sig, freshMs, within: freshMs <= BOUND_MS[sig] }).toEqual({
        round,
        sig,
        freshMs,
        within: true,
      });
      const code = await program.exited;
      if (sig === 'SIGTERM') expect({ round, code }).toEqual({ round, code: 0 });
      // Back after a while, as a restarted pod would be: a standby again.
      await sleep(restartAfterMs);
      startCtl(killed, service.port);
      await waitFor(
        `${killed.id} up again as a standby`,
        async () => {
          const m = await fetch(`http://127.0.0.1:${killed.http}/metrics`).then((r) => r.text());
          return /^currency_controller_leader 0$/m.test(m);
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      current = next;
    }
    sampling = false;
    await sampler;
    expect(samples).toBeGreaterThan(50);
    expect(twoReady).toEqual([]);
    expect(stepsBack).toEqual([]);
    expect(newestSeen).toBeGreaterThan(0);
  } finally {
    sampling = false;
    // The figures of the rounds run, also when one failed.
    console.log(
      [`leader chaos, seed ${seed}:`, ...figures, `${samples} readiness samples`].join('\n  '),
    );
    await service.close();
  }
});
