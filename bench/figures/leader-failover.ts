/**
 * Leader failover: two controller programs share a Lease (CONTROLLER_LEADER_ELECTION=
 * kubernetes) on a real kube-apiserver, the k8s tier's stage 1 (scripts/k8s/cluster.sh up
 * --stage 1: etcd + kube-apiserver on loopback); four node programs are given both
 * addresses. The leader is killed (SIGKILL, or SIGTERM: a graceful stop that releases the
 * Lease); measured from the signal to the moment every pair has a price at the new leader
 * dated after the signal, seen by a watch subscription at that controller. The killed
 * controller is started again as the standby before the next run.
 *
 * Opt-in (`npm run bench -- --only leader-failover`): it starts an API server, which needs
 * the binaries of scripts/setup/k8s.sh (cached under ~/.cache/currency-nodes/k8s/bin, or
 * K8S_BIN_DIR) and Debian's etcd.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../tests/support/ports';
import { BenchCli } from '../lib/cli';
import { nowMs, sleep, waitUntil } from '../lib/clock';
import { failoverSvg } from '../lib/plot';
import { type Program, ROOT, startProgram } from '../lib/procs';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'leader-failover';
export const title = 'Leader controller killed -> every pair streaming from the new leader';
export const optIn = true;

const BIN =
  process.env.K8S_BIN_DIR ??
  join(
    process.env.CURRENCY_NODES_CACHE ?? join(homedir(), '.cache', 'currency-nodes'),
    'k8s',
    'bin',
  );
const NODES = [
  ['EUR_USD', 'USD_JPY', 'GBP_USD'],
  ['USD_HKD', 'USD_SGD', 'USD_JPY'],
  ['EUR_USD', 'USD_HKD', 'AUD_USD'],
  ['GBP_USD', 'USD_SGD', 'AUD_USD'],
];
const PAIRS = [...new Set(NODES.flat())].sort();

/** The tier's stage-1 API server in a fresh state directory; `down` removes it all. */
function apiServer(): { kubeconfig: string; down(): void } {
  for (const bin of ['kube-apiserver', 'kubectl']) {
    if (!existsSync(join(BIN, bin)))
      throw new Error(
        `${join(BIN, bin)} is missing: build the k8s binaries with scripts/setup/k8s.sh 1 (or set K8S_BIN_DIR)`,
      );
  }
  const parent = mkdtempSync(join(tmpdir(), 'cn-bench-k8s-'));
  const state = join(parent, 'state');
  const script = (args: string[]) => {
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'k8s', 'cluster.sh'), ...args], {
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, K8S_STATE_DIR: state, K8S_BIN_DIR: BIN },
    });
    if (r.status !== 0)
      throw new Error(`cluster.sh ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  };
  script(['up', '--stage', '1']);
  return {
    kubeconfig: join(state, 'kubeconfig'),
    down: () => {
      script(['down']);
      rmSync(parent, { recursive: true, force: true });
    },
  };
}

/**
 * Histograms of both signals, beside the runner's plots (bench/results, or results/smoke):
 * the failover histogram, retitled; PNG with rsvg-convert when it is installed.
 */
function plot(smoke: boolean, sigkill: number[], sigterm: number[]): void {
  const dir = join(ROOT, 'bench', 'results', smoke ? 'smoke' : '');
  mkdirSync(dir, { recursive: true });
  for (const [sig, samples, target] of [
    ['SIGKILL', sigkill, 5000],
    ['SIGTERM', sigterm, 1000],
  ] as const) {
    if (samples.length === 0) continue;
    const svg = failoverSvg(
      samples,
      'every pair priced at the new leader; watch there',
      target,
    ).replace(
      /Failover latency: SIGKILL -&gt; first price from replacement/,
      `Leader ${sig} -&gt; every pair priced at the new leader`,
    );
    const file = join(dir, `leader-failover-${sig.toLowerCase()}.svg`);
    writeFileSync(file, svg);
    spawnSync('rsvg-convert', ['-o', file.replace(/\.svg$/, '.png'), file], { stdio: 'ignore' });
  }
}

interface Ctl {
  id: string;
  grpc: number;
  http: number;
  program: Program;
  cli?: BenchCli;
  /** Per pair: the first price dated after the signal, received after the old leader stopped. */
  firstFresh: Map<string, number>;
  freshAfter: number;
}

async function isReady(c: Ctl): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${c.http}/readyz`, {
    signal: AbortSignal.timeout(1000),
  }).catch(() => undefined);
  await r?.arrayBuffer();
  return r?.status === 200;
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const runs = ctx.smoke ? 2 : 20;
  const api = apiServer();
  const ctls: Ctl[] = [];
  const start = (c: Ctl) => {
    c.program = startProgram('controller', {
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${c.grpc}`,
      METRICS_ADDR: `127.0.0.1:${c.http}`,
      // Each follows the other's prices while it stands by (warm standby).
      CONTROLLER_FOLLOW_ADDR: `127.0.0.1:${ctls.find((o) => o !== c)!.grpc}`,
      CONTROLLER_LEADER_ELECTION: 'kubernetes',
      CONTROLLER_LEADER_IDENTITY: c.id,
      CONTROLLER_LEASE_NAMESPACE: 'default',
      CONTROLLER_LEASE_NAME: 'bench-leader-failover',
      KUBECONFIG: api.kubeconfig,
    });
  };
  /** A watch at `c`, re-opened after a restart; records each pair's first fresh price. */
  const watch = async (c: Ctl) => {
    c.cli?.close();
    c.cli = new BenchCli(`127.0.0.1:${c.grpc}`);
    await c.cli.open();
    await c.cli.watch([], (p) => {
      if (p.sentAtMs > c.freshAfter && p.receivedAtMs > c.freshAfter && !c.firstFresh.has(p.pair))
        c.firstFresh.set(p.pair, p.receivedAtMs);
    });
  };
  const leader = () =>
    waitUntil(
      'exactly one controller ready',
      async () => {
        const r = await Promise.all(ctls.map(isReady));
        return r.filter(Boolean).length === 1 ? ctls[r.indexOf(true)]! : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 5 },
    );
  const nodes: Program[] = [];
  const samples: Record<'SIGKILL' | 'SIGTERM', { fresh: number[]; ready: number[] }> = {
    SIGKILL: { fresh: [], ready: [] },
    SIGTERM: { fresh: [], ready: [] },
  };
  try {
    for (const id of ['ctl-a', 'ctl-b']) {
      ctls.push({
        id,
        grpc: await freePort(),
        http: await freePort(),
        program: undefined as unknown as Program,
        firstFresh: new Map(),
        freshAfter: Infinity,
      });
    }
    for (const c of ctls) start(c);
    for (const [i, pairs] of NODES.entries()) {
      nodes.push(
        startProgram('node', {
          NODE_CONTROLLER_ADDR: ctls.map((c) => `127.0.0.1:${c.grpc}`).join(','),
          NODE_CURRENCY_PAIRS: pairs.join(','),
          NODE_NAME: `bench-${i}`,
          METRICS_ADDR: '127.0.0.1:0',
          NODE_PRICE_INTERVAL_MS: '200',
        }),
      );
    }
    await waitUntil(
      'both controllers up',
      async () => {
        for (const c of ctls) {
          const code = await Promise.race([c.program.exited, sleep(0).then(() => undefined)]);
          if (code !== undefined)
            throw new Error(`${c.id} exited (${code}): ${c.program.output()}`);
          await watch(c);
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
      for (let i = 0; i < runs; i++) {
        const old = await leader();
        const next = ctls.find((c) => c !== old)!;
        // Every pair streaming at the leader before the kill (a fresh price for each).
        old.firstFresh.clear();
        old.freshAfter = nowMs();
        await waitUntil(
          'every pair streaming at the leader',
          () => (old.firstFresh.size === PAIRS.length ? true : undefined),
          { timeoutMs: 30_000 },
        );
        // Kill at a random phase of the 500 ms renew period.
        await sleep(Math.random() * 500);
        next.firstFresh.clear();
        const t0 = nowMs();
        next.freshAfter = t0;
        old.program.signal(sig);
        // A price the old leader took after the signal and forwarded to the standby's store
        // is not "from the new leader": only prices received once the old one stopped count.
        if (sig === 'SIGTERM') {
          const stoppedAt = await waitUntil(
            'the old leader not ready',
            async () => ((await isReady(old)) ? undefined : nowMs()),
            { timeoutMs: 10_000, intervalMs: 2 },
          );
          next.freshAfter = Math.max(t0, stoppedAt);
          for (const [pair, at] of [...next.firstFresh])
            if (at <= next.freshAfter) next.firstFresh.delete(pair);
        }
        const readyAt = await waitUntil(
          'the standby ready',
          async () => ((await isReady(next)) ? nowMs() : undefined),
          { timeoutMs: 30_000, intervalMs: 5 },
        );
        await waitUntil(
          'every pair fresh at the new leader',
          () => (next.firstFresh.size === PAIRS.length ? true : undefined),
          { timeoutMs: 30_000, intervalMs: 5 },
        );
        const fresh = Math.max(...next.firstFresh.values()) - t0;
        samples[sig].fresh.push(fresh);
        samples[sig].ready.push(readyAt - t0);
        ctx.log(
          `${sig} run ${i + 1}: ${next.id} ready after ${(readyAt - t0).toFixed(0)} ms, every pair fresh after ${fresh.toFixed(0)} ms`,
        );
        await old.program.exited;
        start(old);
        await waitUntil(
          'the killed controller back as a standby',
          async () => {
            await watch(old);
            return true;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
      }
    }
  } finally {
    for (const c of ctls) c.cli?.close();
    await Promise.all(
      [...nodes, ...ctls.map((c) => c.program)].filter(Boolean).map((p) => p.kill()),
    );
    api.down();
  }
  plot(ctx.smoke, samples.SIGKILL.fresh, samples.SIGTERM.fresh);
  const row = (sig: 'SIGKILL' | 'SIGTERM', target: string) => [
    {
      metric: `leader ${sig} -> every pair (${PAIRS.length}) priced at the new leader`,
      unit: 'ms',
      target,
      summary: summarize(samples[sig].fresh),
    },
    {
      metric: `leader ${sig} -> standby ready (leading)`,
      unit: 'ms',
      summary: summarize(samples[sig].ready),
    },
    {
      // The nodes' part: reconnecting to the new leader, registering, streaming again.
      metric: `leader ${sig}: standby ready -> every pair priced there`,
      unit: 'ms',
      summary: summarize(samples[sig].fresh.map((f, i) => f - samples[sig].ready[i]!)),
    },
  ];
  return {
    name,
    title,
    rows: [...row('SIGKILL', 'p99 <= 5000 ms'), ...row('SIGTERM', 'p99 <= 1000 ms')],
    notes: [
      `2 controllers on one Lease (duration 3 s, renew deadline 2 s, retry 0.5 s: the defaults) on the k8s tier's stage-1 kube-apiserver; ` +
        `${NODES.length} node programs (price every 200 ms) given both addresses, ${PAIRS.length} pairs; ` +
        `the kill at a random phase of the renew period; "priced" = a price dated after the signal, received by a watch at the new leader after the old one stopped; ` +
        `the killed controller restarts as the standby before the next run.`,
    ],
    data: {
      sigkillFreshMs: samples.SIGKILL.fresh,
      sigkillReadyMs: samples.SIGKILL.ready,
      sigtermFreshMs: samples.SIGTERM.fresh,
      sigtermReadyMs: samples.SIGTERM.ready,
    },
  };
}
