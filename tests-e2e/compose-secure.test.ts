/**
 * deploy/compose with TLS and tokens: `docker compose -f compose.yaml -f compose.secure.yaml
 * up`, with credentials made by deploy/compose/make-dev-secrets.sh (into a temporary
 * directory, CURRENCY_SECRETS_DIR) and handed to the containers as compose secrets. Two node
 * replicas register over TLS with the node token; the cli lists them over TLS with the CLI
 * token; a plaintext cli never reaches the controller (exit 3) and a cli without a token is
 * refused (exit 1). Each container holds only its own secrets, read-only, and no secret
 * value is in any container's environment.
 *
 * Only controller, node and cli are named on the `up` line (compose adds what they depend
 * on: the collector and Jaeger); tracing is off. Same project naming, local images and
 * teardown as compose.test.ts (support/docker.ts).
 */
import { spawnSync } from 'node:child_process';
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
  runOk,
  type NodeInfo,
} from './support/docker';

jest.setTimeout(120_000);

const PROJECT = `cn-e2e-secure-${process.pid}`;
const REPLICAS = 2;
const report = (line: string) => process.stdout.write(`e2e compose secure: ${line}\n`);

let project: ComposeProject;
let secrets: string | undefined;
let up = false;

const exec = (service: string, args: string[]) =>
  project.run(['exec', '-T', service, ...args], 30_000);

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
    timeout: 30_000,
  });
  if (made.status !== 0) throw new Error(`make-dev-secrets.sh failed: ${made.stderr}`);
  project = new ComposeProject(
    PROJECT,
    composeEnv(images, {
      CURRENCY_SECRETS_DIR: secrets,
      NODE_PRICE_INTERVAL_MS: '500-1500',
      OTEL_EXPORTER_OTLP_ENDPOINT: '',
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
      'cli',
    ],
    90_000,
  );
  report(`up --scale node=${REPLICAS} (TLS + tokens): healthy in ${Date.now() - started} ms`);
}, 20 * 60_000);

afterAll(async () => {
  try {
    if (up) report(`stack logs: ${await project.down()}`);
  } finally {
    if (secrets) rmSync(secrets, { recursive: true, force: true });
  }
});

describe('docker compose -f compose.yaml -f compose.secure.yaml', () => {
  it('make-dev-secrets.sh made a CA, a controller certificate for controller/localhost/127.0.0.1 and two tokens', () => {
    const dir = secrets as string;
    const san = spawnSync(
      'openssl',
      ['x509', '-in', join(dir, 'controller.crt'), '-noout', '-ext', 'subjectAltName'],
      { encoding: 'utf8', timeout: 10_000 },
    );
    expect(san.stdout).toMatch(/DNS:controller, DNS:localhost, IP Address:127\.0\.0\.1/);
    const verify = spawnSync(
      'openssl',
      ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'controller.crt')],
      { encoding: 'utf8', timeout: 10_000 },
    );
    expect(verify.status).toBe(0);
    const node = readFileSync(join(dir, 'node.token'), 'utf8').trim();
    const cli = readFileSync(join(dir, 'cli.token'), 'utf8').trim();
    expect(node).toMatch(/^[0-9a-f]{64}$/);
    expect(cli).toMatch(/^[0-9a-f]{64}$/);
    expect(node).not.toBe(cli);
  });

  it('`docker compose exec cli currency-cli controller nodes` lists the replicas over TLS with the CLI token', async () => {
    const ids = (await containerIds('node')).map((id) => id.slice(0, 12)).sort();
    expect(ids).toHaveLength(REPLICAS);
    const started = Date.now();
    const list = await waitFor(
      'both node replicas registered',
      async () => {
        const r = await exec('cli', ['currency-cli', '--json', 'controller', 'nodes']);
        if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
        const n = JSON.parse(r.stdout) as NodeInfo[];
        return n.length === REPLICAS ? n : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(list.map((n) => n.name).sort()).toEqual(ids);
    report(`${list.length} nodes listed over TLS in ${Date.now() - started} ms`);
  });

  it('a plaintext cli never reaches the controller: exit 3', async () => {
    const r = await exec('cli', [
      'env',
      '-u',
      'CLI_TLS_CA_FILE',
      'currency-cli',
      '--timeout',
      '3',
      'controller',
      'nodes',
    ]);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 3 });
  });

  it('a cli without a token (TLS fine) is refused: exit 1, UNAUTHENTICATED', async () => {
    const r = await exec('cli', [
      'env',
      '-u',
      'CLI_TOKEN_FILE',
      'currency-cli',
      'controller',
      'nodes',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refused this CLI's credentials (UNAUTHENTICATED)");
  });

  it('the node token cannot run CLI commands: exit 1, PERMISSION_DENIED', async () => {
    // The node token, given to the cli as if it were a CLI token.
    const token = readFileSync(join(secrets as string, 'node.token'), 'utf8').trim();
    const r = await project.run(
      [
        'exec',
        '-T',
        '-e',
        `CLI_TOKEN=${token}`,
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
    expect(r.stderr).toContain('PERMISSION_DENIED');
  });

  it('each container holds only its own secrets, read-only, and no secret value in its environment', async () => {
    const expected: Record<string, string[]> = {
      controller: ['cli.token', 'controller.crt', 'controller.key', 'node.token'],
      node: ['ca.crt', 'node.token'],
      cli: ['ca.crt', 'cli.token'],
    };
    const values = ['node.token', 'cli.token', 'controller.key'].map((f) =>
      readFileSync(join(secrets as string, f), 'utf8').trim(),
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
});
