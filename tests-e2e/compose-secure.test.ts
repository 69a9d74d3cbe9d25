/**
 * deploy/compose with mutual TLS and tokens: `docker compose -f compose.yaml -f
 * compose.secure.yaml up`, with credentials made by deploy/compose/make-dev-secrets.sh (into
 * a temporary directory, CURRENCY_SECRETS_DIR) and handed to the containers as compose
 * secrets. The controller requires a client certificate from the CA and reads the role from
 * its OU (CONTROLLER_TLS_CLIENT_CERT_ROLES); the tokens stay on too. Two node replicas
 * register with their node certificate and token; the cli lists them with its CLI
 * certificate (with and without its token); a node with its certificate alone registers.
 * Refused: a plaintext cli (exit 3), a cli or a node without a client certificate (TLS
 * handshake: cli exit 3, the node never registers), a wrong token next to a good
 * certificate (UNAUTHENTICATED), and a node's credentials used for CLI commands
 * (PERMISSION_DENIED). Each container holds only its own secrets, read-only, and no secret
 * value is in any container's environment.
 *
 * Bound identities (issue 16): node-fx and node-crypto run with UUIDs their certificates
 * (URI SAN) and tokens are bound to; node-fx's credentials claiming node-crypto's UUID are
 * refused (PERMISSION_DENIED, counted) and node-crypto keeps its stream. The metrics ports
 * are HTTPS with client certificates and basic auth (METRICS_WEB_CONFIG_FILE): a scrape
 * without them is refused, and Prometheus (prometheus.secure.yml) has every target up.
 *
 * controller, node, node-fx, node-crypto, cli and prometheus are named on the `up` line
 * (compose adds what they depend on: the collector and Jaeger); tracing is off. Same project naming, local images and
 * teardown as compose.test.ts (support/docker.ts).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../tests/support/wait';
import {
  COMPOSE_DIR,
  ComposeProject,
  buildProjectImages,
  composeEnv,
  loadImages,
  run,
  runOk,
  type NodeInfo,
} from './support/docker';

jest.setTimeout(120_000);

const PROJECT = `cn-e2e-secure-${process.pid}`;
const REPLICAS = 2;
/** node-fx and node-crypto: one container each, with a bound identity. */
const BOUND = 2;
const FX_UUID = randomUUID();
const CRYPTO_UUID = randomUUID();
const report = (line: string) => process.stdout.write(`e2e compose secure: ${line}\n`);

let project: ComposeProject;
let secrets: string | undefined;
let up = false;

const exec = (service: string, args: string[]) =>
  project.run(['exec', '-T', service, ...args], 30_000);

const openssl = (args: string[]) =>
  spawnSync('openssl', args, { encoding: 'utf8', timeout: 10_000 });

/** Names of the nodes the controller lists (the cli with its own certificate and token). */
async function listedNodeNames(): Promise<string[]> {
  const r = await exec('cli', ['currency-cli', '--json', 'controller', 'nodes']);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
  return (JSON.parse(r.stdout) as NodeInfo[]).map((n) => n.name);
}

/**
 * One more `node` container beside the replicas (`docker compose run -d`), with some of the
 * service's variables overridden; removed again by the caller.
 */
async function runExtraNode(env: Record<string, string>): Promise<string> {
  const out = await project.ok(
    [
      'run',
      '-d',
      '--no-deps',
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      'node',
    ],
    60_000,
  );
  const name = out.trim().split('\n').pop()?.trim();
  if (!name) throw new Error(`docker compose run printed no container name: ${out}`);
  return name;
}

/** The node's own log lines (JSON). */
async function nodeLog(container: string): Promise<Array<Record<string, unknown>>> {
  const r = await runOk('docker', ['logs', container]);
  return r
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Prometheus's API through its published port. */
async function prometheusJson<T>(path: string): Promise<T> {
  const addr = (await project.ok(['port', 'prometheus', '9090'])).trim();
  const res = await fetch(`http://${addr}${path}`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

/**
 * currency_controller_auth_failures_total{reason="uuid_not_allowed"} from a scrape taken
 * after `afterS` (Unix seconds); undefined until Prometheus has one.
 */
async function uuidRefusalsScrapedAfter(afterS: number): Promise<number | undefined> {
  const m = 'currency_controller_auth_failures_total{reason="uuid_not_allowed"}';
  const r = await prometheusJson<{ data: { result: { value: [number, string] }[] } }>(
    `/api/v1/query?query=${encodeURIComponent(`${m} and timestamp(${m}) > ${afterS}`)}`,
  );
  const v = r.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

async function containerIds(service: string): Promise<string[]> {
  return (await project.ok(['ps', '-q', service]))
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
}

beforeAll(async () => {
  const images = loadImages();
  buildProjectImages();
  secrets = mkdtempSync(join(tmpdir(), 'cn-e2e-secrets-'));
  const made = spawnSync('bash', [join(COMPOSE_DIR, 'make-dev-secrets.sh'), secrets], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_FX_UUID: FX_UUID, NODE_CRYPTO_UUID: CRYPTO_UUID },
  });
  if (made.status !== 0) throw new Error(`make-dev-secrets.sh failed: ${made.stderr}`);
  project = new ComposeProject(
    PROJECT,
    composeEnv(images, {
      CURRENCY_SECRETS_DIR: secrets,
      NODE_PRICE_INTERVAL_MS: '500-1500',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
      NODE_FX_UUID: FX_UUID,
      NODE_CRYPTO_UUID: CRYPTO_UUID,
      CURRENCY_NODE_IMAGE: images.NODE_IMAGE,
    }),
    ['compose.yaml', 'compose.secure.yaml'],
  );
  const started = Date.now();
  up = true;
  await project.ok(
    [
      'up',
      '-d',
      '--no-build',
      '--scale',
      `node=${REPLICAS}`,
      '--wait',
      '--wait-timeout',
      '60',
      'controller',
      'node',
      'node-fx',
      'node-crypto',
      'cli',
      'prometheus',
    ],
    90_000,
  );
  report(
    `up --scale node=${REPLICAS} (mutual TLS + tokens, bound identities, protected metrics): healthy in ${Date.now() - started} ms`,
  );
}, 20 * 60_000);

afterAll(async () => {
  try {
    if (up) report(`stack logs: ${await project.down()}`);
  } finally {
    if (secrets) rmSync(secrets, { recursive: true, force: true });
  }
});

describe('docker compose -f compose.yaml -f compose.secure.yaml', () => {
  it('make-dev-secrets.sh made a CA, a controller certificate for controller/localhost/127.0.0.1, a client certificate per role and two tokens', () => {
    const dir = secrets as string;
    const san = openssl([
      'x509',
      '-in',
      join(dir, 'controller.crt'),
      '-noout',
      '-ext',
      'subjectAltName',
    ]);
    expect(san.stdout).toMatch(/DNS:controller, DNS:localhost, IP Address:127\.0\.0\.1/);
    const verify = openssl(['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'controller.crt')]);
    expect(verify.status).toBe(0);
    for (const role of ['node', 'cli']) {
      const cert = join(dir, `${role}.crt`);
      const client = openssl([
        'verify',
        '-purpose',
        'sslclient',
        '-CAfile',
        join(dir, 'ca.crt'),
        cert,
      ]);
      expect({ role, status: client.status }).toEqual({ role, status: 0 });
      const subject = openssl(['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253']);
      expect(subject.stdout.trim()).toBe(`subject=CN=currency-${role},OU=currency-${role}`);
      // The key belongs to the certificate.
      const fromKey = openssl(['pkey', '-in', join(dir, `${role}.key`), '-pubout']).stdout;
      const fromCert = openssl(['x509', '-in', cert, '-noout', '-pubkey']).stdout;
      expect(fromKey).toContain('BEGIN PUBLIC KEY');
      expect(fromKey).toBe(fromCert);
    }
    const node = readFileSync(join(dir, 'node.token'), 'utf8').trim();
    const cli = readFileSync(join(dir, 'cli.token'), 'utf8').trim();
    expect(node).toMatch(/^[0-9a-f]{64}$/);
    expect(cli).toMatch(/^[0-9a-f]{64}$/);
    expect(node).not.toBe(cli);
  });

  it('the controller serves mutual TLS with certificate roles and tokens', async () => {
    const logs = await project.ok(['logs', '--no-color', 'controller']);
    const line = logs
      .split('\n')
      .map((l) => l.slice(l.indexOf('{')))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'gRPC port security');
    expect(line).toMatchObject({ tls: 'mutual', auth: 'tokens + certificate roles' });
  });

  it('`docker compose exec cli currency-cli controller nodes` lists the replicas over mutual TLS (certificates and tokens)', async () => {
    const ids = (await Promise.all(['node', 'node-fx', 'node-crypto'].map((s) => containerIds(s))))
      .flat()
      .map((id) => id.slice(0, 12))
      .sort();
    expect(ids).toHaveLength(REPLICAS + BOUND);
    const started = Date.now();
    const list = await waitFor(
      'both node replicas registered',
      async () => {
        const r = await exec('cli', ['currency-cli', '--json', 'controller', 'nodes']);
        if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
        const n = JSON.parse(r.stdout) as NodeInfo[];
        return n.length === REPLICAS + BOUND ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(list.map((n) => n.name).sort()).toEqual(ids);
    report(`${list.length} nodes listed over TLS in ${Date.now() - started} ms`);
  });

  it('the cli gets in with its client certificate alone (no token): certificate role currency-cli', async () => {
    const r = await exec('cli', [
      'env',
      '-u',
      'CLI_TOKEN_FILE',
      'currency-cli',
      '--json',
      'controller',
      'nodes',
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toHaveLength(REPLICAS + BOUND);
  });

  it('a node with its client certificate alone (no token) registers', async () => {
    const name = `cert-only-${process.pid}`;
    const container = await runExtraNode({ NODE_TOKEN_FILE: '', NODE_NAME: name });
    try {
      const started = Date.now();
      await waitFor(
        'the certificate-only node listed',
        async () => ((await listedNodeNames()).includes(name) ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      report(`a node with only its certificate registered in ${Date.now() - started} ms`);
    } finally {
      await run('docker', ['rm', '-f', container]);
    }
  });

  it('a plaintext cli never reaches the controller: exit 3', async () => {
    const r = await exec('cli', [
      'env',
      '-u',
      'CLI_TLS_CA_FILE',
      '-u',
      'CLI_TLS_CERT_FILE',
      '-u',
      'CLI_TLS_KEY_FILE',
      'currency-cli',
      '--timeout',
      '3',
      'controller',
      'nodes',
    ]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 3 });
  });

  it('a cli without a client certificate (CA and token fine) fails the TLS handshake: exit 3', async () => {
    const r = await exec('cli', [
      'env',
      '-u',
      'CLI_TLS_CERT_FILE',
      '-u',
      'CLI_TLS_KEY_FILE',
      'currency-cli',
      '--timeout',
      '3',
      'controller',
      'nodes',
    ]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({
      code: 3,
      stderr: expect.stringContaining('could not reach the controller at controller:5160 over TLS'),
    });
  });

  it('a node without a client certificate (CA and token fine) never registers', async () => {
    const name = `no-cert-${process.pid}`;
    const container = await runExtraNode({
      NODE_TLS_CERT_FILE: '',
      NODE_TLS_KEY_FILE: '',
      NODE_NAME: name,
      LOG_LEVEL: 'debug',
    });
    try {
      // Connection attempts fail before any stream reaches the controller; the node logs the
      // first at once (later ones at most once per 30 s, services/node/connect-failures.ts).
      const failed = await waitFor(
        'a failed connection attempt logged',
        async () =>
          (await nodeLog(container)).find((e) =>
            String(e.msg).startsWith('cannot reach the controller'),
          ),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      expect(failed.code).toBe(14); // UNAVAILABLE
      // The controller's TLS alert: the handshake wanted a client certificate.
      expect(String(failed.details)).toContain('certificate required');
      report(`a node without a client certificate: ${String(failed.details).split('\n')[0]}`);
      const log = await nodeLog(container);
      expect(log.filter((e) => e.msg === 'registered with controller')).toEqual([]);
      expect(log.filter((e) => String(e.msg).includes('refused this node')).length).toBe(0);
      expect(await listedNodeNames()).not.toContain(name);
    } finally {
      await run('docker', ['rm', '-f', container]);
    }
  });

  it('a wrong token next to a good certificate is refused: exit 1, UNAUTHENTICATED', async () => {
    const r = await project.run(
      [
        'exec',
        '-T',
        '-e',
        'CLI_TOKEN=not-the-cli-token-0123456789',
        'cli',
        'env',
        '-u',
        'CLI_TOKEN_FILE',
        'currency-cli',
        'controller',
        'nodes',
      ],
      30_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused this CLI's credentials (UNAUTHENTICATED)");
  });

  it("a node's credentials cannot run CLI commands: its certificate, with or without its token, is PERMISSION_DENIED (exit 1)", async () => {
    // currency-cli is in every image: run it in a node container with that node's secrets.
    const asNode = [
      'currency-cli',
      '--controller',
      'controller:5160',
      '--tls-ca',
      '/run/secrets/ca.crt',
      '--tls-cert',
      '/run/secrets/node.crt',
      '--tls-key',
      '/run/secrets/node.key',
    ];
    for (const extra of [[], ['--token-file', '/run/secrets/node.token']]) {
      const r = await exec('node', [...asNode, ...extra, 'controller', 'nodes']);
      expect({ extra, code: r.code, stderr: r.stderr }).toMatchObject({
        extra,
        code: 1,
        stderr: expect.stringContaining(
          "refused this CLI's credentials (PERMISSION_DENIED): a node credential cannot open the CLI service",
        ),
      });
    }
  });

  it('each container holds only its own secrets, read-only, and no secret value in its environment', async () => {
    const metrics = ['metrics-web.yml', 'metrics.crt', 'metrics.key'];
    const expected: Record<string, string[]> = {
      controller: ['ca.crt', 'cli.token', 'controller.crt', 'controller.key', ...metrics].concat([
        'node.tokens',
      ]),
      node: ['ca.crt', ...metrics, 'node.crt', 'node.key', 'node.token'],
      'node-fx': ['ca.crt', ...metrics, 'node-fx.crt', 'node-fx.key', 'node-fx.token'],
      cli: ['ca.crt', 'cli.crt', 'cli.key', 'cli.token'],
    };
    // Tokens, passwords, and the longest line of each key (a PEM body line).
    const values = [
      'node.token',
      'cli.token',
      'node-fx.token',
      'node-crypto.token',
      'metrics.password',
      'controller.key',
      'node.key',
      'node-fx.key',
      'metrics.key',
      'cli.key',
    ].map(
      (f) =>
        readFileSync(join(secrets as string, f), 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .sort((a, b) => b.length - a.length)[0]!,
    );
    for (const [service, files] of Object.entries(expected)) {
      const ls = await exec(service, ['/bin/sh', '-c', 'ls /run/secrets']);
      expect({ service, files: ls.stdout.split('\n').filter(Boolean).sort() }).toEqual({
        service,
        files,
      });
      const write = await exec(service, [
        '/bin/sh',
        '-c',
        `for f in /run/secrets/*; do [ -r "$f" ] || echo "unreadable $f"; [ -w "$f" ] && echo "writable $f"; done; true`,
      ]);
      expect({ service, out: write.stdout.trim() }).toEqual({ service, out: '' });
      for (const id of await containerIds(service)) {
        const envs = await runOk('docker', ['inspect', '-f', '{{json .Config.Env}}', id]);
        for (const v of values) expect(envs).not.toContain(v);
      }
    }
  });

  it.each([
    ["node-fx's credentials (bound certificate and token)", 'node-fx'],
    ["the scaled replicas' shared credentials (unbound certificate, bare token)", 'node'],
  ])("%s cannot claim node-crypto's UUID; node-crypto keeps its stream", async (_what, service) => {
    const holder = async () => {
      const r = await exec('cli', ['currency-cli', '--json', 'controller', 'nodes']);
      return (JSON.parse(r.stdout) as NodeInfo[]).find((n) => n.nodeUuid === CRYPTO_UUID);
    };
    // A baseline scraped after this case began: a previous case's refusals are all in it.
    const began = Date.now() / 1000;
    const refusedBefore = await waitFor(
      'a scrape of the refusal counter after this case began',
      () => uuidRefusalsScrapedAfter(began),
      { timeoutMs: 30_000, intervalMs: 1_000 },
    );
    const before = await waitFor('node-crypto registered', holder, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    const out = await project.ok(
      ['run', '-d', '--no-deps', '-e', `NODE_UUID=${CRYPTO_UUID}`, '-e', 'NODE_NAME=evil', service],
      60_000,
    );
    const container = out.trim().split('\n').pop()!.trim();
    try {
      const refused = await waitFor(
        'the impostor refused',
        async () =>
          (await nodeLog(container)).find((l) =>
            String(l.msg).includes("refused this node's credentials (PERMISSION_DENIED)"),
          ),
        { timeoutMs: 30_000, intervalMs: 500 },
      );
      report(`impostor: ${String(refused.details)}`);
      expect((await holder())?.name).toBe(before.name);
      const counted = await waitFor(
        'uuid_not_allowed counted (through Prometheus)',
        async () => {
          const v = (await uuidRefusalsScrapedAfter(began)) ?? 0;
          return v > refusedBefore ? v : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 1_000 },
      );
      expect(counted).toBeGreaterThan(0);
    } finally {
      await run('docker', ['rm', '-f', container]);
    }
  });

  it('the metrics ports are HTTPS with client certificates and basic auth: a scrape without them is refused, the probes stay open', async () => {
    // From the cli container (it trusts the CA, but holds no Prometheus certificate or password).
    const script = [
      "const https = require('https'); const fs = require('fs');",
      'const get = (path) => new Promise((res) => https.get({ host: "controller", port: 9464, path,',
      'servername: "metrics", ca: fs.readFileSync("/run/secrets/ca.crt"), timeout: 3000 },',
      '(r) => res(r.statusCode)).on("error", (e) => res(e.code)));',
      'fetch("http://controller:9464/metrics").then(() => "answered", (e) => "refused").then(async (plain) =>',
      'console.log(JSON.stringify({ plain, metrics: await get("/metrics"), readyz: await get("/readyz") })));',
    ].join(' ');
    const r = await exec('cli', ['node', '-e', script]);
    expect(JSON.parse(r.stdout)).toEqual({ plain: 'refused', metrics: 403, readyz: 200 });
  });

  it('Prometheus scrapes the controller and every node over HTTPS with its certificate and password: all targets up', async () => {
    const started = Date.now();
    type Target = { labels: { job: string }; health: string; lastError: string };
    const targets = await waitFor(
      'every currency target up',
      async () => {
        const r = await prometheusJson<{ data: { activeTargets: Target[] } }>('/api/v1/targets');
        const ours = r.data.activeTargets.filter((t) => t.labels.job.startsWith('currency-'));
        return ours.length === 1 + REPLICAS + BOUND && ours.every((t) => t.health === 'up')
          ? ours
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    expect(targets.map((t) => t.lastError)).toEqual(targets.map(() => ''));
    report(`${targets.length} targets up over HTTPS + basic auth in ${Date.now() - started} ms`);
  });
});
