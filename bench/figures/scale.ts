/**
 * Scale: N simulated nodes connect to one controller (each its own TCP connection, with
 * the real keepalive); measured: time for all to register, the controller's RSS, its CPU
 * while idle at that size (keepalive pings), and how long `controller nodes` takes to
 * answer - over the protocol, and as the real CLI program (process start included).
 * The controller keeps its reply until the fleet changes, so `controller nodes` is also
 * timed right after a kick (the node leaves, its pairs move, it comes back): the reply is
 * rebuilt then, as it is on a fleet that churns.
 */
import { freePort } from '../../tests/support/ports';
import { BenchCli } from '../lib/cli';
import { metricSum, scrape } from '../lib/metrics';
import { sleep } from '../lib/clock';
import { startController, startProgram, waitReady } from '../lib/procs';
import {
  addSpread,
  fleetSpecs,
  newSims,
  profileArgs,
  stopGracefully,
  waitFleet,
} from '../lib/sims';
import { summarize } from '../lib/stats';
import type { BenchContext, FigureResult } from '../lib/types';

export const name = 'scale';
export const title = '10,000 connected nodes: RSS and `controller nodes` latency';

export async function run(ctx: BenchContext): Promise<FigureResult> {
  const n = ctx.smoke ? 50 : 10_000;
  const procs = ctx.smoke ? 1 : 4;
  const pool = ctx.smoke ? 20 : 1000;
  // The simulated nodes send one price per pair and then only when asked: without a long
  // stale limit the controller would (rightly) move their quiet pairs during the figure.
  const ctl = startController(
    await freePort(),
    await freePort(),
    { CONTROLLER_STALE_STREAM_MS: '3600000' },
    profileArgs(name),
  );
  await waitReady(ctl.metricsUrl, ctl.program);
  const rssIdleMiB = ctl.program.rssBytes() / 2 ** 20;
  const sims = newSims(procs, ctl);
  const t0 = Date.now();
  await addSpread(sims, fleetSpecs(0, n, pool, 3, 'scale'), ctx.smoke ? undefined : 1000 / procs);
  const doneAt = await waitFleet(ctl, n, undefined, 300_000, 1000);
  const registerSecs = (doneAt - t0) / 1000;
  ctx.log(`${n} nodes registered in ${registerSecs.toFixed(1)} s`);
  await sleep(ctx.smoke ? 200 : 3000);
  const rss: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < (ctx.smoke ? 2 : 5); i++) {
    const c0 = ctl.program.cpuSeconds();
    await sleep(ctx.smoke ? 200 : 1000);
    cpu.push((ctl.program.cpuSeconds() - c0) / (ctx.smoke ? 0.2 : 1));
    rss.push(ctl.program.rssBytes() / 2 ** 20);
  }
  const cli = new BenchCli(ctl.grpcAddr);
  const rpcMs: number[] = [];
  const afterKickMs: number[] = [];
  const programMs: number[] = [];
  let listed = 0;
  let uuids: string[] = [];
  try {
    await cli.open();
    for (let i = 0; i < (ctx.smoke ? 3 : 20); i++) {
      const t = performance.now();
      const r = await cli.request('ControllerListNodesV1Req', {}, 30_000);
      rpcMs.push(performance.now() - t);
      if (r.name === 'ControllerListNodesV1Reply') {
        listed = r.message.nodes.length;
        uuids = r.message.nodeUuids;
      }
    }
    for (let i = 0; i < (ctx.smoke ? 2 : 20) && uuids.length > 0; i++) {
      const victim = uuids[Math.floor(Math.random() * uuids.length)]!;
      await cli.request('ControllerKickNodesV1Req', { nodeUuids: [victim] }, 30_000);
      const t = performance.now();
      await cli.request('ControllerListNodesV1Req', {}, 30_000);
      afterKickMs.push(performance.now() - t);
      await sleep(ctx.smoke ? 50 : 500); // the kicked node comes back (a change as well)
    }
    for (let i = 0; i < (ctx.smoke ? 1 : 5); i++) {
      const t = performance.now();
      const p = startProgram('cli', { CLI_CONTROLLER_ADDR: ctl.grpcAddr }, [
        '--json',
        '--timeout',
        '30',
        'controller',
        'nodes',
      ]);
      const code = await p.exited;
      if (code !== 0)
        throw new Error(`currency-cli controller nodes exited ${code}: ${p.output()}`);
      programMs.push(performance.now() - t);
    }
  } finally {
    cli.close();
  }
  const staleMoves = metricSum(
    await scrape(ctl.metricsUrl),
    'currency_controller_stale_streams_total',
  );
  ctx.log(`stale-stream moves during the figure: ${staleMoves}`);
  const simRss = (await Promise.all(sims.map((s) => s.status()))).map((s) =>
    Math.round(s.rssBytes / 2 ** 20),
  );
  await stopGracefully(ctl);
  return {
    name,
    title,
    rows: [
      {
        metric: `controller RSS with ${n} nodes`,
        unit: 'MiB',
        target: '<= 1024 MiB',
        summary: summarize(rss),
      },
      {
        metric: `\`controller nodes\` over the protocol (${listed} nodes listed)`,
        unit: 'ms',
        target: '<= 200 ms',
        summary: summarize(rpcMs),
      },
      {
        metric: '`controller nodes` right after a kick (reply rebuilt)',
        unit: 'ms',
        target: '<= 200 ms',
        summary: summarize(afterKickMs),
      },
      {
        metric: '`currency-cli --json controller nodes` (whole program)',
        unit: 'ms',
        summary: summarize(programMs),
      },
      {
        metric: `controller CPU, idle with ${n} nodes (keepalive)`,
        unit: 'cores',
        summary: summarize(cpu),
      },
      {
        metric: 'stale-stream moves during the figure',
        unit: 'moves',
        summary: summarize([staleMoves || 0]),
      },
      {
        metric: `all ${n} nodes registered, from the first connect`,
        unit: 's',
        summary: summarize([registerSecs]),
      },
    ],
    notes: [
      `${n} simulated nodes in ${procs} load-generator process(es) (RSS ${simRss.join(', ')} MiB), ramped at up to ` +
        `1,000 connects/s, 3 pairs each from a pool of ${pool}; controller RSS before any node: ${rssIdleMiB.toFixed(0)} MiB.`,
    ],
    data: {
      rssMiB: rss,
      listNodesMs: rpcMs,
      listNodesAfterKickMs: afterKickMs,
      cliProgramMs: programMs,
      registerSecs,
    },
  };
}
