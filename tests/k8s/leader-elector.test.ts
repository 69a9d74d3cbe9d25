/**
 * Stage 1 of the k8s tier, leader election alone: two or three processes of the elector
 * runnable (dist/services/controller/leader/elect-main.js: the elector the controller uses,
 * without the controller around it) share one coordination.k8s.io/v1 Lease on the tier's
 * own kube-apiserver. Each prints a JSON line per change with the wall-clock time it took
 * effect, so the tests check both what is sampled while they run and, afterwards, that no
 * two leading intervals overlapped.
 *
 * Timing: the defaults (lease 3000 ms, renew deadline 2000 ms, retry 500 ms).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait';
import { CHART, Cluster, ROOT, parseManifests } from './cluster';

jest.setTimeout(300_000);

const PROGRAM = join(ROOT, 'dist', 'services', 'controller', 'leader', 'elect-main.js');
const TIMING = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const NS = 'leader-test';
const DRY_RUN_NS = 'leader-dry-run';

interface Line {
  event: 'started' | 'change' | 'stopped';
  identity: string;
  leading?: boolean;
  leader?: string;
  at: number;
}

/** One elector process. */
class Elector {
  private out = '';
  private err = '';
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  /** Set by the test the instant before it SIGKILLs the process: its leadership ends there. */
  killedAt?: number;

  constructor(
    readonly id: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [PROGRAM], {
      env: {
        PATH: process.env.PATH ?? '',
        CONTROLLER_LEADER_ELECTION: 'kubernetes',
        CONTROLLER_LEADER_IDENTITY: id,
        CONTROLLER_LEASE_NAMESPACE: NS,
        LOG_LEVEL: 'debug',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
    );
    all.add(this);
  }

  lines(): Line[] {
    return this.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  }

  changes(): Line[] {
    return this.lines().filter((l) => l.event === 'change');
  }

  /** What it last reported (a killed process leads no more). */
  leading(): boolean {
    return this.killedAt === undefined && this.changes().at(-1)?.leading === true;
  }

  leader(): string | undefined {
    return this.changes().at(-1)?.leader;
  }

  kill(): number {
    this.killedAt = Date.now();
    this.child.kill('SIGKILL');
    return this.killedAt;
  }

  /** Leading intervals [from, to) in wall-clock ms; an open one ends at `now`. */
  intervals(now: number): [number, number][] {
    const out: [number, number][] = [];
    let from: number | undefined;
    for (const c of this.changes()) {
      if (c.leading && from === undefined) from = c.at;
      if (!c.leading && from !== undefined) {
        out.push([from, c.at]);
        from = undefined;
      }
    }
    if (from !== undefined) out.push([from, this.killedAt ?? now]);
    return out;
  }

  describe(): string {
    return `${this.id}:\n${this.out}\n${this.err.split('\n').slice(-30).join('\n')}`;
  }
}

const all = new Set<Elector>();

/** Samples every 25 ms how many of `group` report leading; stops with the tally. */
function sampler(group: Elector[]) {
  const bad: string[] = [];
  let samples = 0;
  const timer: NodeJS.Timeout = setInterval(() => {
    samples++;
    const leaders = group.filter((e) => e.leading()).map((e) => e.id);
    if (leaders.length > 1) bad.push(`${new Date().toISOString()}: ${leaders.join(', ')}`);
  }, 25);
  samplers.add(timer);
  return () => {
    clearInterval(timer);
    return { samples, bad };
  };
}
const samplers = new Set<NodeJS.Timeout>();

/** No two processes' leading intervals overlap, by the times they printed. */
function expectNoOverlap(group: Elector[]): void {
  const now = Date.now();
  const spans = group.flatMap((e) => e.intervals(now).map(([a, b]) => ({ id: e.id, a, b })));
  spans.sort((x, y) => x.a - y.a);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.a < prev.b) {
      throw new Error(
        `${prev.id} led [${prev.a}, ${prev.b}) and ${cur.id} led from ${cur.a}\n` +
          group.map((e) => e.describe()).join('\n'),
      );
    }
  }
}

async function oneLeader(group: Elector[], timeoutMs = 20_000): Promise<Elector> {
  return waitFor(
    'exactly one elector to lead and the others to name it',
    () => {
      const leaders = group.filter((e) => e.leading());
      if (leaders.length !== 1) return false;
      const l = leaders[0]!;
      return group.every((e) => e.leader() === l.id) && l;
    },
    { timeoutMs, intervalMs: 25 },
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${group.map((e) => e.describe()).join('\n')}`);
  });
}

function lease(name: string) {
  return cluster.json(['get', 'lease', name, '-n', NS]);
}

/**
 * A TCP proxy on loopback that, once cut, passes nothing: open connections go silent in both
 * directions (no FIN, no RST) and new ones are accepted but never answered, as when a node
 * loses its network. (tests/support/blackhole-proxy.ts cuts open connections only; a client
 * that reconnects would get through.)
 */
class CutProxy {
  private cut = false;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(targetPort: number) {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client)).on('error', () => client.destroy());
      if (this.cut) return client.pause();
      const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      }),
    );
  }

  blackhole(): void {
    this.cut = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let cluster: Cluster;
let scratch: string;

beforeAll(() => {
  if (!existsSync(PROGRAM)) throw new Error(`${PROGRAM} not found: run \`npm run build\` first`);
  scratch = mkdtempSync(join(tmpdir(), 'cn-leader-'));
  cluster = Cluster.shared(1);
  cluster.kubectlOk(['create', 'namespace', NS]);
});

afterEach(async () => {
  for (const t of samplers) clearInterval(t);
  samplers.clear();
  const left = [...all];
  all.clear();
  for (const e of left) e.child.kill('SIGKILL');
  await Promise.all(left.map((e) => e.exited));
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  cluster?.removeNamespaces([NS, DRY_RUN_NS]);
});

describe('stage 1 (API server): the leader elector runnable (elect-main) on a real Lease', () => {
  test('of three, exactly one leads, the others name it, and the Lease says so', async () => {
    const env = { KUBECONFIG: cluster.kubeconfig, CONTROLLER_LEASE_NAME: 'three' };
    const group = ['a', 'b', 'c'].map((id) => new Elector(id, env));
    const stop = sampler(group);
    const leader = await oneLeader(group);
    // Steady: a few lease durations later, still the same one, with no change anywhere.
    const before = group.map((e) => e.changes().length);
    await waitFor(
      'some renewals',
      () => {
        const l = lease('three');
        return Date.now() - new Date(l.spec.acquireTime as string).getTime() > 3 * 3000 && l;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(group.map((e) => e.changes().length)).toEqual(before);
    const l = lease('three');
    expect(l.spec.holderIdentity).toBe(leader.id);
    expect(l.spec.leaseDurationSeconds).toBe(TIMING.leaseDurationMs / 1000);
    // Renewed within the last few retry periods (the API server's clock is ours).
    expect(Date.now() - new Date(l.spec.renewTime as string).getTime()).toBeLessThan(2000);
    const { samples, bad } = stop();
    expect(bad).toEqual([]);
    expect(samples).toBeGreaterThan(100);
    expectNoOverlap(group);
  });

  test('SIGKILL the leader: another leads once the lease has expired, within the bound', async () => {
    const env = { KUBECONFIG: cluster.kubeconfig, CONTROLLER_LEASE_NAME: 'killed' };
    const group = ['a', 'b', 'c'].map((id) => new Elector(id, env));
    const stop = sampler(group);
    const old = await oneLeader(group);
    const killedAt = old.kill();
    const rest = group.filter((e) => e !== old);
    const next = await oneLeader(rest, 15_000);
    const took = next.changes().find((c) => c.leading)!.at - killedAt;
    // Not before the lease could have expired (last renewal <= kill time), and within
    // lease duration + retry period, with slack for a loaded machine.
    expect(took).toBeGreaterThanOrEqual(TIMING.leaseDurationMs - TIMING.retryPeriodMs - 500);
    expect(took).toBeLessThanOrEqual(TIMING.leaseDurationMs + TIMING.retryPeriodMs + 2500);
    expect(lease('killed').spec.leaseTransitions).toBe(1);
    const { bad } = stop();
    expect(bad).toEqual([]);
    expectNoOverlap(group);
  });

  test('SIGTERM the leader: it steps down, releases the Lease, exits 0, and a standby leads within a second', async () => {
    const env = { KUBECONFIG: cluster.kubeconfig, CONTROLLER_LEASE_NAME: 'released' };
    const group = ['a', 'b'].map((id) => new Elector(id, env));
    const stop = sampler(group);
    const old = await oneLeader(group);
    const other = group.find((e) => e !== old)!;
    const termAt = Date.now();
    old.child.kill('SIGTERM');
    expect(await old.exited).toBe(0);
    const exitedAt = Date.now();
    const lines = old.lines();
    expect(lines.at(-1)).toMatchObject({ event: 'stopped', identity: old.id });
    expect(lines.at(-2)).toMatchObject({ event: 'change', leading: false });
    // The release is written before the process exits: well under a second.
    expect(exitedAt - termAt).toBeLessThan(1000);
    await oneLeader([other], 5000);
    const took = other.changes().find((c) => c.leading)!.at - termAt;
    expect(took).toBeLessThan(1000);
    const { bad } = stop();
    expect(bad).toEqual([]);
    expectNoOverlap(group);
  });

  test('a leader cut off from the API server steps down before its lease could be taken', async () => {
    const port = Number(
      /https:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(cluster.kubeconfig, 'utf8'))![1],
    );
    const proxy = new CutProxy(port);
    try {
      const proxied = join(scratch, 'kubeconfig-proxied');
      writeFileSync(
        proxied,
        readFileSync(cluster.kubeconfig, 'utf8').replace(
          `https://127.0.0.1:${port}`,
          `https://127.0.0.1:${await proxy.listen()}`,
        ),
        { mode: 0o600 },
      );
      const name = { CONTROLLER_LEASE_NAME: 'cut' };
      // The one behind the proxy starts first, so it is the one that leads.
      const cut = new Elector('cut', { KUBECONFIG: proxied, ...name });
      await oneLeader([cut]);
      const other = new Elector('direct', { KUBECONFIG: cluster.kubeconfig, ...name });
      const group = [cut, other];
      const stop = sampler(group);
      await oneLeader(group);
      const cutAt = Date.now();
      proxy.blackhole();
      await waitFor('the cut-off leader to step down', () => !cut.leading(), {
        timeoutMs: 10_000,
        intervalMs: 25,
      });
      const down = cut.changes().at(-1)!;
      // Fenced by its own renew deadline (counted from its last renewal, before the cut).
      expect(down.at - cutAt).toBeLessThanOrEqual(TIMING.renewDeadlineMs + 500);
      expect(cut.child.exitCode).toBeNull();
      const next = await oneLeader([other], 15_000);
      const up = next.changes().find((c) => c.leading)!;
      expect(up.at).toBeGreaterThan(down.at);
      expect(lease('cut').spec.holderIdentity).toBe('direct');
      // Still cut off, it does not lead again.
      await waitFor('a few more renewals by the new leader', () => Date.now() - up.at > 3000, {
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      expect(cut.leading()).toBe(false);
      const { bad } = stop();
      expect(bad).toEqual([]);
      expectNoOverlap(group);
    } finally {
      await proxy.close();
    }
  });
  test("with the chart's Role alone (a service account token): the electors work, and nothing more is allowed", async () => {
    const sa = 'cn-currency-nodes';
    const leaseName = 'cn-currency-nodes-controller';
    const manifests = cluster.helmOk([
      'template',
      'cn',
      CHART,
      '--namespace',
      NS,
      '--set',
      'controller.replicas=2',
      '--show-only',
      'templates/serviceaccount.yaml',
      '--show-only',
      'templates/controller-leader-election.yaml',
    ]);
    expect(
      parseManifests(manifests)
        .map((o) => o.kind as string)
        .sort(),
    ).toEqual(['PodDisruptionBudget', 'Role', 'RoleBinding', 'ServiceAccount']);
    cluster.kubectlOk(['apply', '-n', NS, '-f', '-'], manifests);
    const canI = (verb: string, what: string) =>
      cluster
        .kubectl(['auth', 'can-i', verb, what, '-n', NS, `--as=system:serviceaccount:${NS}:${sa}`])
        .stdout.trim();
    expect(canI('get', `lease/${leaseName}`)).toBe('yes');
    expect(canI('update', `lease/${leaseName}`)).toBe('yes');
    expect(canI('create', 'leases')).toBe('yes');
    expect(canI('delete', `lease/${leaseName}`)).toBe('no');
    expect(canI('update', 'lease/some-other-lease')).toBe('no');
    expect(canI('list', 'leases')).toBe('no');
    expect(canI('get', 'secrets')).toBe('no');

    // A kubeconfig with the account's token instead of the admin certificate.
    const admin = readFileSync(cluster.kubeconfig, 'utf8');
    const server = /server: (\S+)/.exec(admin)![1]!;
    const ca = /certificate-authority: (\S+)/.exec(admin)![1]!;
    const token = cluster.kubectlOk(['create', 'token', sa, '-n', NS, '--duration=1h']).trim();
    const kubeconfig = join(scratch, 'kubeconfig-sa');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `  - name: c\n    cluster: { server: "${server}", certificate-authority: "${ca}" }`,
        'users:',
        `  - name: u\n    user: { token: "${token}" }`,
        'contexts:',
        '  - name: x\n    context: { cluster: c, user: u }',
        'current-context: x',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const env = { KUBECONFIG: kubeconfig, CONTROLLER_LEASE_NAME: leaseName };
    const group = ['pod-a', 'pod-b'].map((id) => new Elector(id, env));
    const stop = sampler(group);
    const first = await oneLeader(group);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const second = await oneLeader(
      group.filter((e) => e !== first),
      5000,
    );
    expect(lease(leaseName).spec.holderIdentity).toBe(second.id);
    const { bad } = stop();
    expect(bad).toEqual([]);
    expectNoOverlap(group);
  });
  test('the whole chart with controller.replicas=2 passes a server-side dry run', () => {
    const ns = DRY_RUN_NS;
    cluster.kubectlOk(['create', 'namespace', ns]);
    const manifests = cluster.helmOk([
      'template',
      'cn',
      CHART,
      '--namespace',
      ns,
      '--validate',
      '--set',
      'controller.replicas=2',
    ]);
    const objects = parseManifests(manifests);
    expect(objects.map((o) => o.kind as string)).toEqual(
      expect.arrayContaining(['Role', 'RoleBinding', 'PodDisruptionBudget', 'Deployment']),
    );
    // Admission looks the pods' ServiceAccount up in storage; a dry run stores nothing.
    cluster.kubectlOk(['create', 'serviceaccount', 'cn-currency-nodes', '-n', ns, '--save-config']);
    const r = cluster.kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], manifests);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.endsWith('(server dry run)'));
    expect(lines).toHaveLength(objects.length);
  });
});
