/**
 * Reassignment work when one node of N leaves, for several N: at each fleet size a
 * victim node (its own process) streams a pair that two standby nodes can also stream;
 * it is SIGKILLed, and we measure the time to the first price from a standby at a watch
 * subscription, and how many nodes the controller sent a new desired state to. The
 * claim to check: both stay flat as N grows.
 */
import { randomUUID } from 'node:crypto';
import { freePort } from '../../tests/support/ports';
import { BenchCli } from '../lib/cli';
import { nowMs, sleep, waitUntil } from '../lib/clock';
import { Sim, startController, waitReady } from '../lib/procs';
import {
  addSpread,
  fleetSpecs,
  newSims,
  profileArgs,
  stopGracefully,
  waitFleet,
} from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult, Row } from '../lib/types';

export const name = 'reassign-curve';
export const title = 'Reassignment when one node of N leaves (curve over N)';

/** One departure: returns the kill -> replacement-price time and how many nodes were told. */
async function oneRun(
  ctx: BenchContext,
  controllerAddr: string,
  all: Sim[],
  standby: Sim,
  pair: string,
  standbyCount: () => number,
  addStandbys: (n: number) => void,
): Promise<{ ms: number; told: number }> {
  const victimUuid = randomUUID();
  const victim = new Sim(controllerAddr);
  // A fresh watch per run, for this pair only: a long-lived stream could be cut by a
  // keepalive timeout on a starved machine and silently lose every later run.
  const cli = new BenchCli(controllerAddr);
  try {
    const started = new Promise<void>((resolve) =>
      victim.on((m) => m.type === 'started' && resolve()),
    );
    await victim.request({
      type: 'add',
      nodes: [{ uuid: victimUuid, name: 'victim', pairs: [pair], report: true }],
    });
    await Promise.race([
      started,
      sleep(10_000).then(() => Promise.reject(new Error('victim never streamed'))),
    ]);
    await standby.request({
      type: 'add',
      nodes: [0, 1].map((k) => ({
        uuid: randomUUID(),
        name: `standby-${pair}-${k}`,
        pairs: [pair],
      })),
    });
    addStandbys(2);
    await waitUntil(
      'standbys registered',
      async () => (await standby.status()).registered === standbyCount(),
      { timeoutMs: 20_000 },
    );
    let resolveSeen: (at: number) => void = () => {};
    const seen = new Promise<number>((r) => (resolveSeen = r));
    await cli.open();
    await cli.watch([pair], (p) => {
      if (p.pair === pair && p.nodeUuid !== victimUuid) resolveSeen(p.receivedAtMs);
    });
    const before = (await Promise.all(all.map((s) => s.status()))).reduce(
      (a, s) => a + s.modifyStates,
      0,
    );
    const t0 = nowMs();
    victim.child.kill('SIGKILL');
    const at = await Promise.race([
      seen,
      sleep(10_000).then(() => Promise.reject(new Error('no replacement price in 10 s'))),
    ]);
    await sleep(ctx.smoke ? 100 : 300);
    const after = (await Promise.all(all.map((s) => s.status()))).reduce(
      (a, s) => a + s.modifyStates,
      0,
    );
    return { ms: at - t0, told: after - before };
  } finally {
    cli.close();
    await victim.kill();
  }
}

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const levels = ctx.smoke ? [10, 30] : [100, 1000, 3000, 10_000];
  const runsPerLevel = ctx.smoke ? 2 : 10;
  const pool = ctx.smoke ? 10 : 1000;
  const procs = ctx.smoke ? 1 : 4;
  // The simulated nodes send one price per pair and then only when asked: without a long
  // stale limit the controller would (rightly) move their quiet pairs during the figure.
  const ctl = startController(
    await freePort(),
    await freePort(),
    { CONTROLLER_STALE_STREAM_MS: '3600000' },
    profileArgs(name),
  );
  await waitReady(ctl.metricsUrl, ctl.program);
  const sims = newSims(procs, ctl);
  const standby = new Sim(ctl.grpcAddr);
  const rows: Row[] = [];
  const curve: { n: number; medianMs: number; p99Ms: number; nodesToldMedian: number }[] = [];
  const failed: string[] = [];
  let background = 0;
  let standbys = 0;
  try {
    for (const level of levels) {
      await addSpread(
        sims,
        fleetSpecs(background, level - background, pool, 3, 'bg'),
        ctx.smoke ? undefined : 1000 / procs,
      );
      background = level;
      await waitFleet(ctl, background + standbys, undefined, 300_000, 1000);
      await sleep(ctx.smoke ? 100 : 2000);
      const latencies: number[] = [];
      const told: number[] = [];
      for (let r = 0; r < runsPerLevel; r++) {
        try {
          const one = await oneRun(
            ctx,
            ctl.grpcAddr,
            [...sims, standby],
            standby,
            `V${level}R${r}_USD`,
            () => standbys,
            (n) => (standbys += n),
          );
          latencies.push(one.ms);
          told.push(one.told);
        } catch (err) {
          // One lost run (a starved machine) should not lose the curve; it is reported.
          failed.push(
            `N=${level} run ${r + 1}: ${err instanceof Error ? err.message : String(err)}`,
          );
          ctx.log(failed[failed.length - 1]!);
        }
      }
      if (latencies.length === 0)
        throw new Error(`no run succeeded at N=${level}: ${failed.join('; ')}`);
      const s = summarize(latencies);
      const t = summarize(told);
      ctx.log(
        `N=${level}: median ${s.median.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, nodes told ${t.median}`,
      );
      curve.push({ n: level, medianMs: s.median, p99Ms: s.p99, nodesToldMedian: t.median });
      rows.push({
        metric: `one of ${level.toLocaleString('en-US')} nodes SIGKILLed -> replacement's first price`,
        unit: 'ms',
        target: level === levels[levels.length - 1] ? 'flat in N' : undefined,
        summary: s,
      });
      rows.push({
        metric: `nodes sent a new desired state (N=${level.toLocaleString('en-US')})`,
        unit: 'nodes',
        summary: t,
      });
    }
  } finally {
    await stopGracefully(ctl);
  }
  return {
    name,
    title,
    rows,
    notes: [
      `Background nodes announce 3 pairs each from a pool of ${pool} (${procs} load-generator process(es)); ` +
        `each run's victim is a one-node process killed with SIGKILL; ${runsPerLevel} runs per N` +
        (failed.length ? `; runs lost: ${failed.join('; ')}.` : '; no run lost.'),
    ],
    data: { curve, failedRuns: failed },
  };
}
