/** Helpers for fleets of simulated nodes spread over load-generator processes. */
import { randomUUID } from 'node:crypto';
import type { SimNodeSpec } from '../load/protocol';
import { waitUntil } from './clock';
import { gauges } from './metrics';
import { type ControllerHandle, Sim } from './procs';

export function poolPair(i: number): string {
  return `P${i}_USD`;
}

/** Node i of a fleet announces `perNode` pairs from a pool of `pool` pairs (spread evenly). */
export function fleetSpecs(
  from: number,
  count: number,
  pool: number,
  perNode: number,
  tag: string,
): SimNodeSpec[] {
  const specs: SimNodeSpec[] = [];
  for (let i = from; i < from + count; i++) {
    const pairs = new Set<string>();
    for (let k = 0; k < perNode; k++) pairs.add(poolPair((i * perNode + k * 7) % pool));
    specs.push({ uuid: randomUUID(), name: `${tag}-${i}`, pairs: [...pairs] });
  }
  return specs;
}

/** Adds `specs` round-robin over `sims`, each process ramping at `perSecEach`. */
export async function addSpread(
  sims: Sim[],
  specs: SimNodeSpec[],
  perSecEach?: number,
): Promise<void> {
  const shares: SimNodeSpec[][] = sims.map(() => []);
  specs.forEach((s, i) => shares[i % sims.length]!.push(s));
  await Promise.all(
    sims.map((sim, i) =>
      sim.request({ type: 'add', nodes: shares[i]!, perSec: perSecEach }, 600_000),
    ),
  );
}

export const G = {
  nodes: 'currency_controller_connected_nodes',
  known: 'currency_controller_pairs_known',
  unstreamed: 'currency_controller_pairs_unstreamed',
  updates: 'currency_controller_price_updates_total',
} as const;

/** Waits until the controller holds `nodes` nodes and (when given) streams all `pairs` pairs. */
export async function waitFleet(
  ctl: ControllerHandle,
  nodes: number,
  pairs: number | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<number> {
  return waitUntil(
    `${nodes} nodes${pairs ? ` and ${pairs} pairs streamed` : ''}`,
    async () => {
      const g = await gauges(ctl.metricsUrl, [G.nodes, G.known, G.unstreamed]);
      const ok =
        g[G.nodes] === nodes &&
        (pairs === undefined || (g[G.known] === pairs && g[G.unstreamed] === 0));
      return ok ? Date.now() : undefined;
    },
    { timeoutMs, intervalMs },
  );
}

export function newSims(n: number, ctl: ControllerHandle): Sim[] {
  return Array.from({ length: n }, () => new Sim(ctl.grpcAddr));
}

/** SIGTERM (so a --cpu-prof profile is written), then SIGKILL if it lingers. */
export async function stopGracefully(ctl: ControllerHandle, waitMs = 20_000): Promise<void> {
  ctl.program.signal('SIGTERM');
  await Promise.race([ctl.program.exited, new Promise((r) => setTimeout(r, waitMs))]);
  await ctl.program.kill();
}

/** Extra node flags for the controller: BENCH_CPU_PROF=DIR profiles it (written on SIGTERM). */
export function profileArgs(figure: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir
    ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${figure}-${Date.now()}.cpuprofile`]
    : [];
}
