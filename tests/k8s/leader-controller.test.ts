/**
 * Stage 1 of the k8s tier, the controller program under leader election: controller
 * processes (dist/services/controller/main.js) share one Lease on the tier's own
 * kube-apiserver; a node program is given every controller's address, as nodes outside
 * Kubernetes are. Exactly one controller leads and is ready; a standby refuses node streams
 * and the CLI commands that need the leader (naming it), and is not ready; when the leader
 * is killed or stopped, the standby takes over and prices from the node arrive at it.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { makeCertDir } from '../support/certs';
import { freePort } from '../support/ports';
import { type Program, killAll, programPath, runProgram, startProgram } from '../support/processes';
import { sleep, waitFor } from '../support/wait';
import { Cluster } from './cluster';

jest.setTimeout(300_000);

const NS = 'leader-ctl';
let cluster: Cluster;

interface Ctl {
  id: string;
  grpc: number;
  http: number;
  program: Program;
  killedAt?: number;
}

/**
 * Controllers sharing `lease`; each follows the next one's prices while it is a standby.
 * `firstLeadsAlone`: the first is started and leading before the others start.
 */
async function startControllers(
  lease: string,
  ids: string[],
  opts: { env?: Record<string, string>; firstLeadsAlone?: boolean } = {},
): Promise<Ctl[]> {
  const out: Ctl[] = [];
  const ports = [];
  for (let i = 0; i < ids.length; i++)
    ports.push({ grpc: await freePort(), http: await freePort() });
  for (const [i, id] of ids.entries()) {
    const { grpc, http } = ports[i]!;
    const program = startProgram('controller', {
      CONTROLLER_FOLLOW_ADDR: `${clientHost}:${ports[(i + 1) % ids.length]!.grpc}`,
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpc}`,
      METRICS_ADDR: `127.0.0.1:${http}`,
      CONTROLLER_LEADER_ELECTION: 'kubernetes',
      CONTROLLER_LEADER_IDENTITY: id,
      CONTROLLER_LEASE_NAMESPACE: NS,
      CONTROLLER_LEASE_NAME: lease,
      KUBECONFIG: cluster.kubeconfig,
      ...opts.env,
    });
    out.push({ id, grpc, http, program });
    if (i === 0 && opts.firstLeadsAlone) await oneLeader(out);
  }
  return out;
}

async function ready(c: Ctl): Promise<boolean> {
  if (c.killedAt !== undefined) return false;
  try {
    const r = await fetch(`http://127.0.0.1:${c.http}/readyz`, {
      signal: AbortSignal.timeout(1000),
    });
    return r.status === 200;
  } catch {
    return false;
  }
}

async function leaders(group: Ctl[]): Promise<Ctl[]> {
  const r = await Promise.all(group.map(ready));
  return group.filter((_, i) => r[i]);
}

/** Samples readiness every 50 ms; more than one ready controller at once is a failure. */
function sampler(group: Ctl[]): () => Promise<{ samples: number; bad: string[] }> {
  let stop = false;
  const bad: string[] = [];
  let samples = 0;
  const loop = (async () => {
    for (let i = 0; i < 10_000 && !stop; i++) {
      const l = await leaders(group);
      samples++;
      if (l.length > 1) bad.push(`${new Date().toISOString()}: ${l.map((c) => c.id).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return async () => {
    stop = true;
    await loop;
    return { samples, bad };
  };
}

async function oneLeader(group: Ctl[], timeoutMs = 20_000): Promise<Ctl> {
  return waitFor(
    'exactly one controller ready (leading)',
    async () => {
      const l = await leaders(group);
      return l.length === 1 ? l[0]! : undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** Client credentials for the CLI, the node and a following standby (the secured test). */
let clientEnv: { cli: Record<string, string>; node: Record<string, string> } = {
  cli: {},
  node: {},
};

async function cliJson<T>(c: Ctl, args: string[]): Promise<T> {
  const r = await runProgram(
    'cli',
    ['--controller', `${clientHost}:${c.grpc}`, '--json', ...args],
    clientEnv.cli,
  );
  if (r.code !== 0) throw new Error(`cli ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

type Price = { currencyPair: string; price: number; priceUpdatedAt: string; nodeUuid: string };

/**
 * A standby answers no `controller prices` (only the leader may: exit 3), so its warm
 * store is seen in its log: its follower says when the leader's prices first arrive. Then
 * the leader's newest price, which the standby's live watch got the moment the leader
 * took it; the kill comes after a pause for that delivery.
 */
async function warmStandby(standby: Ctl, leader: Ctl, afterMs: number): Promise<Price> {
  await waitFor(
    `the leader's prices at the standby ${standby.id}`,
    () =>
      standby.program
        .logLines()
        .some(
          (l) =>
            l.msg === "the leader's prices arrive" &&
            Date.parse(String(l.price_updated_at)) > afterMs,
        ),
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  const newest = await freshPrice(leader, afterMs);
  await sleep(300);
  return newest;
}

/** A command that needs the leader, asked of a standby: exit 3, naming the leader. */
async function expectStandbyRefusal(standby: Ctl, leader: Ctl, args: string[]): Promise<void> {
  const r = await runProgram(
    'cli',
    ['--controller', `${clientHost}:${standby.grpc}`, ...args],
    clientEnv.cli,
  );
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 3, stdout: '' });
  expect(r.stderr).toContain(`this controller is a standby; the leader is ${leader.id}`);
}

/** A price for USD_HKD at `c`, from the node, dated after `afterMs`. */
async function freshPrice(c: Ctl, afterMs: number): Promise<Price> {
  return waitFor(
    `a fresh USD_HKD price at ${c.id}`,
    async () => {
      const prices = await cliJson<Price[]>(c, ['controller', 'prices']).catch(() => []);
      const p = prices.find((x) => x.currencyPair === 'USD_HKD');
      return p && Date.parse(p.priceUpdatedAt) > afterMs ? p : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
}

/** `localhost` when the controllers serve TLS (their certificate names it), else 127.0.0.1. */
let clientHost = '127.0.0.1';

function startNode(group: Ctl[]): Program {
  return startProgram('node', {
    ...clientEnv.node,
    NODE_CONTROLLER_ADDR: group.map((c) => `${clientHost}:${c.grpc}`).join(','),
    NODE_CURRENCY_PAIRS: 'USD_HKD',
    NODE_NAME: 'follower',
    METRICS_ADDR: '127.0.0.1:0',
    NODE_PRICE_INTERVAL_MS: '100',
  });
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

test('stage 1: of two controller programs one leads and is ready; the standby is not ready and refuses node streams, so a node given both addresses streams through the leader', async () => {
  const group = await startControllers('two', ['ctl-a', 'ctl-b']);
  const leader = await oneLeader(group);
  const standby = group.find((c) => c !== leader)!;
  expect(await ready(standby)).toBe(false);
  const started = Date.now();
  startNode(group);
  const p = await freshPrice(leader, started);
  const nodes = await cliJson<{ name: string }[]>(leader, ['controller', 'nodes']);
  expect(nodes.map((n) => n.name)).toEqual(['follower']);
  await expectStandbyRefusal(standby, leader, ['controller', 'nodes']);
  await expectStandbyRefusal(standby, leader, ['node', 'status', '--all']);
  expect(p.price).toBeGreaterThan(0);
  const metrics = await fetch(`http://127.0.0.1:${leader.http}/metrics`).then((r) => r.text());
  expect(metrics).toMatch(/^currency_controller_leader 1$/m);
  const standbyMetrics = await fetch(`http://127.0.0.1:${standby.http}/metrics`).then((r) =>
    r.text(),
  );
  expect(standbyMetrics).toMatch(/^currency_controller_leader 0$/m);
});

test('stage 1: the leader SIGKILLed, the warm standby leads within the lease bound, with the newest price, and the node streams prices to it; never two ready at once', async () => {
  const group = await startControllers('killed', ['ctl-a', 'ctl-b']);
  const first = await oneLeader(group);
  const standby = group.find((c) => c !== first)!;
  const started = Date.now();
  startNode(group);
  await freshPrice(first, started);
  // Warm standby: the standby holds the leader's latest prices before any takeover.
  const followed = await warmStandby(standby, first, started);
  const done = sampler(group);
  first.killedAt = Date.now();
  first.program.signal('SIGKILL');
  const second = await oneLeader(group, 15_000);
  const tookMs = Date.now() - first.killedAt;
  expect(second).not.toBe(first);
  expect(tookMs).toBeLessThan(10_000);
  // Right after the takeover the new leader's price is no older than what it followed.
  const atTakeover = (await cliJson<Price[]>(second, ['controller', 'prices'])).find(
    (p) => p.currencyPair === 'USD_HKD',
  )!;
  expect(Date.parse(atTakeover.priceUpdatedAt)).toBeGreaterThanOrEqual(
    Date.parse(followed.priceUpdatedAt),
  );
  await freshPrice(second, first.killedAt);
  const { samples, bad } = await done();
  expect(samples).toBeGreaterThan(10);
  expect(bad).toEqual([]);
  console.log(`leader killed: standby ready after ${tookMs} ms`);
});

test('stage 1: a leader stopped with SIGTERM releases the Lease: the standby leads in about a second, not a lease duration', async () => {
  const group = await startControllers('released', ['ctl-a', 'ctl-b']);
  const first = await oneLeader(group);
  startNode(group);
  await freshPrice(first, Date.now());
  const stoppedAt = Date.now();
  first.program.signal('SIGTERM');
  expect(await first.program.exited).toBe(0);
  first.killedAt = Date.now();
  const second = await oneLeader(group, 10_000);
  const tookMs = Date.now() - stoppedAt;
  expect(second).not.toBe(first);
  expect(tookMs).toBeLessThan(2500);
  await freshPrice(second, stoppedAt);
  console.log(`leader stopped: standby ready after ${tookMs} ms`);
});

test('stage 1: a standby following the leader takes the Lease the moment the leader stops, not at its next retry period', async () => {
  // A retry period far longer than the bound: only the cue from the leader's ended watch
  // (close reason `shutdown`, sent after the Lease was released) can make it that fast.
  const env = {
    CONTROLLER_LEASE_RETRY_PERIOD_MS: '20000',
    CONTROLLER_LEASE_RENEW_DEADLINE_MS: '25000',
    CONTROLLER_LEASE_DURATION_MS: '30000',
  };
  const group = await startControllers('cued', ['ctl-a', 'ctl-b'], { env, firstLeadsAlone: true });
  const [first, standby] = group as [Ctl, Ctl];
  expect(await leaders(group)).toEqual([first]);
  // The standby's first round saw ctl-a lead (its next is 20 s away), and it follows ctl-a.
  await waitFor(
    'the standby to know the leader and follow it',
    () => {
      const lines = standby.program.logLines();
      return (
        lines.some((l) => l.msg === 'not leading' && l.leader === 'ctl-a') &&
        lines.some((l) => l.msg === 'following the leader')
      );
    },
    { timeoutMs: 10_000, intervalMs: 20 },
  );
  const stoppedAt = Date.now();
  first.program.signal('SIGTERM');
  const second = await oneLeader([standby], 15_000);
  const tookMs = Date.now() - stoppedAt;
  expect(await first.program.exited).toBe(0);
  expect(second).toBe(standby);
  expect(tookMs).toBeLessThan(3000);
  console.log(`leader stopped: the cued standby leads after ${tookMs} ms (retry period 20 s)`);
});

test('stage 1: with TLS, client certificates with roles and tokens (both required), the standby follows the leader as a CLI and leads with the newest price', async () => {
  const certs = makeCertDir();
  try {
    const ca = certs.newCa('ha-ca');
    const server = ca.issue('controller');
    const cli = ca.issue('ops', { ou: 'currency-cli' });
    const node = ca.issue('node', { ou: 'currency-node' });
    writeFileSync(certs.path('cli.tokens'), 'cli-secret-token\n');
    writeFileSync(certs.path('node.tokens'), 'node-secret-token\n');
    const cliCreds = {
      CLI_TLS_CA_FILE: ca.cert,
      CLI_TLS_CERT_FILE: cli.cert,
      CLI_TLS_KEY_FILE: cli.key,
      CLI_TOKEN_FILE: certs.path('cli.tokens'),
    };
    clientEnv = {
      cli: cliCreds,
      node: {
        NODE_TLS_CA_FILE: ca.cert,
        NODE_TLS_CERT_FILE: node.cert,
        NODE_TLS_KEY_FILE: node.key,
        NODE_TOKEN_FILE: certs.path('node.tokens'),
      },
    };
    clientHost = 'localhost';
    const group = await startControllers('secured', ['ctl-a', 'ctl-b'], {
      env: {
        CONTROLLER_TLS_CERT_FILE: server.cert,
        CONTROLLER_TLS_KEY_FILE: server.key,
        CONTROLLER_TLS_CLIENT_CA_FILE: ca.cert,
        CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true',
        CONTROLLER_CLI_TOKENS_FILE: certs.path('cli.tokens'),
        CONTROLLER_NODE_TOKENS_FILE: certs.path('node.tokens'),
        CONTROLLER_AUTH_REQUIRE: 'both',
        // The standby's own client credentials for following: the CLI's variables.
        ...cliCreds,
      },
    });
    const first = await oneLeader(group);
    const standby = group.find((c) => c !== first)!;
    const started = Date.now();
    startNode(group);
    await freshPrice(first, started);
    // Only a standby that got through TLS, its certificate's role and the token has this.
    const followed = await warmStandby(standby, first, started);
    await expectStandbyRefusal(standby, first, ['controller', 'nodes']);
    first.killedAt = Date.now();
    first.program.signal('SIGKILL');
    const second = await oneLeader(group, 15_000);
    expect(second).toBe(standby);
    const atTakeover = (await cliJson<Price[]>(second, ['controller', 'prices'])).find(
      (p) => p.currencyPair === 'USD_HKD',
    )!;
    expect(Date.parse(atTakeover.priceUpdatedAt)).toBeGreaterThanOrEqual(
      Date.parse(followed.priceUpdatedAt),
    );
    await freshPrice(second, first.killedAt);
  } finally {
    clientEnv = { cli: {}, node: {} };
    clientHost = '127.0.0.1';
    certs.remove();
  }
});
