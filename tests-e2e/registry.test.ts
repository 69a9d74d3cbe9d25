/**
 * The install path from a registry: `npm run images -- --push` and `npm run chart -- --push`
 * against a real OCI registry (CNCF Distribution, scripts/setup/registry.sh) that this file
 * starts on 127.0.0.1 with throw-away storage and stops in its teardown. Then the images are
 * pulled back and run, and the chart is read and rendered from its oci:// reference.
 *
 * Installing from oci:// on the k8s test cluster, with the images pulled from the registry:
 * tests/k8s/stage2-registry.test.ts.
 * Needs `npm run setup:e2e` (engine, base image) and `npm run setup:helm` (helm).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { helmBin, parseManifests } from '../tests/helm/support';
import { LocalRegistry } from '../tests/support/registry';
import { COMPOSE_DIR, ROOT, run, runOk } from './support/docker';

jest.setTimeout(120_000);

const VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const ROLES = ['controller', 'node', 'cli'] as const;
const report = (line: string) => process.stdout.write(`e2e/registry: ${line}\n`);

let tmp = '';
let registry: LocalRegistry | undefined;
let host = ''; // 127.0.0.1:PORT
let helm = '';

/** npm, helm and the scripts with this file's own helm state (no login of the user's touched). */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HELM_BIN: helm,
    HELM_CONFIG_HOME: join(tmp, 'helm', 'config'),
    HELM_CACHE_HOME: join(tmp, 'helm', 'cache'),
    HELM_DATA_HOME: join(tmp, 'helm', 'data'),
    ...extra,
  };
}

const npmRun = (
  script: string,
  args: string[],
  extra: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
) => run('npm', ['run', '--silent', script, '--', ...args], { env: env(extra), timeoutMs });

const api = <T>(path: string, headers: Record<string, string> = {}) =>
  registry!.api<T>(path, headers);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cn-registry-'));
  helm = helmBin();
  // Idempotent; cheap when `npm test` (scripts/test-all.sh) has run it already.
  const bin = LocalRegistry.binary(ROOT);
  registry = await LocalRegistry.start(bin, tmp);
  host = registry.host;
  report(`registry ${bin} on ${host}`);
}, 16 * 60_000);

afterAll(async () => {
  await registry?.stop();
  registry = undefined;
  if (host) {
    const left = (
      await runOk('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}'])
    ).split('\n');
    const ours = left.filter((r) => r.startsWith(`${host}/`));
    if (ours.length > 0) await runOk('docker', ['rmi', ...ours]);
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}, 60_000);

/** The images `npm run images -- --list` names for IMAGE_PREFIX (empty: none). */
async function listed(prefix: string): Promise<string[]> {
  const r = await npmRun('images', ['--list'], { IMAGE_PREFIX: prefix });
  expect(r).toMatchObject({ code: 0 });
  return r.stdout.trim().split('\n');
}

/** Every container image in a rendered chart. */
function imagesOf(manifests: string): string[] {
  const out = new Set<string>();
  for (const o of parseManifests(manifests)) {
    const spec = (o as { spec?: { template?: { spec?: unknown } } }).spec;
    const pod = (spec?.template?.spec ?? spec) as
      { containers?: { image: string }[]; initContainers?: { image: string }[] } | undefined;
    for (const c of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) out.add(c.image);
  }
  return [...out].sort();
}

describe('names and usage', () => {
  it('names the images as the compose .env and the chart expect, tagged with the package.json version', async () => {
    const names = await listed('');
    expect(names).toEqual(ROLES.map((r) => `currency-nodes/${r}:${VERSION}`));
    const dotenv = readFileSync(join(COMPOSE_DIR, '.env'), 'utf8');
    const value = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(dotenv)?.[1];
    expect([value('CONTROLLER_IMAGE'), value('CURRENCY_NODE_IMAGE'), value('CLI_IMAGE')]).toEqual(
      names,
    );
    // The chart's defaults with its packaged appVersion (npm run chart sets it from package.json).
    const chart = parseYaml(
      readFileSync(join(ROOT, 'deploy', 'helm', 'currency-nodes', 'Chart.yaml'), 'utf8'),
    ) as {
      version: string;
      appVersion: string;
    };
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({
      version: VERSION,
      appVersion: VERSION,
    });
    const rendered = await runOk(
      helm,
      [
        'template',
        'cn',
        join(ROOT, 'deploy', 'helm', 'currency-nodes'),
        '--set',
        'image.registry=registry.example.com/team',
      ],
      { env: env() },
    );
    expect(imagesOf(rendered)).toEqual((await listed('registry.example.com/team')).sort());
  });

  it('refuses a push with no IMAGE_PREFIX and a chart push to a non-OCI address (exit 2, naming them)', async () => {
    const images = await npmRun('images', ['--push'], { IMAGE_PREFIX: '' });
    expect(images.code).toBe(2);
    expect(images.stderr).toContain('IMAGE_PREFIX');
    const prefix = await npmRun('images', ['--list'], { IMAGE_PREFIX: 'Not a prefix/' });
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toContain('IMAGE_PREFIX');
    const chart = await npmRun('chart', ['--push', 'https://registry.example.com/charts']);
    expect(chart.code).toBe(2);
    expect(chart.stderr).toContain('--push');
  });

  it('without IMAGES_OFFLINE runs an ordinary docker build and docker push (a recording stand-in for docker)', async () => {
    // This machine cannot pull node:24, so the commands a user's Docker would get are
    // recorded instead of run; the real build and push are the tests below.
    const calls = join(tmp, 'docker-calls.txt');
    const stub = join(tmp, 'docker-stub.sh');
    writeFileSync(
      stub,
      [
        '#!/bin/sh',
        `printf '%s\\n' "BUILDKIT=$DOCKER_BUILDKIT $*" >>'${calls}'`,
        'if [ "$1" = push ]; then echo "0.1.0: digest: sha256:' + 'ab'.repeat(32) + ' size: 1"; fi',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const r = await npmRun('images', ['--push'], {
      IMAGE_PREFIX: 'registry.example.com/team',
      NODE_IMAGE: 'node:24-bookworm-slim@sha256:' + 'cd'.repeat(32),
      IMAGES_OFFLINE: '',
      DOCKER: stub,
    });
    if (r.code !== 0) throw new Error(`npm run images -- --push exited ${r.code}:\n${r.stderr}`);
    const lines = readFileSync(calls, 'utf8').trim().split('\n');
    const refs = await listed('registry.example.com/team');
    expect(lines).toHaveLength(6);
    for (const [i, role] of ROLES.entries()) {
      const build = lines[i];
      expect(build).toMatch(new RegExp(`^BUILDKIT=1 build -f Dockerfile\\.${role} -t ${refs[i]} `));
      expect(build).toContain(
        `--build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:${'cd'.repeat(32)}`,
      );
      expect(build).toContain(`--build-arg VERSION=${VERSION}`);
      expect(build).toMatch(/ \.$/);
      // Nothing of this machine's workarounds: no secrets, no host network.
      expect(build).not.toMatch(/--secret|--network/);
      expect(lines[3 + i]).toBe(`BUILDKIT=1 push ${refs[i]}`);
    }
    expect(r.stdout.trim().split('\n')).toEqual(
      refs.map((ref) => `${ref} sha256:${'ab'.repeat(32)}`),
    );
  });
});

describe('to and from a registry', () => {
  let pushed: { ref: string; digest: string }[] = [];

  it(
    'npm run images -- --push pushes the three images, listed by the registry with the version tag',
    async () => {
      const started = Date.now();
      // IMAGES_OFFLINE: this machine reaches no container registry for node:24 (docs/offline-images.md).
      const r = await npmRun(
        'images',
        ['--push'],
        { IMAGE_PREFIX: `${host}/cn`, IMAGES_OFFLINE: '1' },
        15 * 60_000,
      );
      if (r.code !== 0) throw new Error(`npm run images -- --push exited ${r.code}:\n${r.stderr}`);
      report(`images built and pushed in ${Date.now() - started} ms`);
      pushed = r.stdout
        .trim()
        .split('\n')
        .map((line) => {
          const [ref, digest] = line.split(' ');
          return { ref, digest };
        });
      expect(pushed.map((p) => p.ref)).toEqual(await listed(`${host}/cn`));

      const catalog = await api<{ repositories: string[] }>('/v2/_catalog');
      expect(catalog.body.repositories).toEqual(
        expect.arrayContaining(ROLES.map((r) => `cn/currency-nodes/${r}`)),
      );
      for (const [i, role] of ROLES.entries()) {
        const tags = await api<{ tags: string[] }>(`/v2/cn/currency-nodes/${role}/tags/list`);
        expect(tags.body.tags).toContain(VERSION);
        // The digest the script printed is the registry's (for pinning: <role>.image.digest).
        const manifest = await api<unknown>(`/v2/cn/currency-nodes/${role}/manifests/${VERSION}`, {
          Accept:
            'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json',
        });
        expect(manifest.status).toBe(200);
        expect(pushed[i].digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(manifest.headers.get('docker-content-digest')).toBe(pushed[i].digest);
      }
    },
    16 * 60_000,
  );

  it('an image pulled back from the registry, with no local tag before, runs currency-cli --version', async () => {
    const cli = pushed.find((p) => p.ref.includes('/currency-nodes/cli:'));
    if (!cli) throw new Error('the cli image was not pushed (the test before failed)');
    await runOk('docker', ['rmi', cli.ref]);
    expect((await run('docker', ['image', 'inspect', cli.ref])).code).not.toBe(0);
    await runOk('docker', ['pull', cli.ref], { timeoutMs: 120_000 });
    const repoDigests = JSON.parse(
      await runOk('docker', ['image', 'inspect', cli.ref, '--format', '{{json .RepoDigests}}']),
    ) as string[];
    expect(repoDigests).toContain(`${host}/cn/currency-nodes/cli@${cli.digest}`);
    const out = await runOk('docker', ['run', '--rm', '--network', 'none', cli.ref, '--version']);
    expect(out.trim()).toBe(VERSION);
  });

  it('npm run chart -- --push puts the chart in the registry; helm reads and renders it from oci://', async () => {
    const dest = join(tmp, 'chart');
    const r = await npmRun(
      'chart',
      ['--push', `oci://${host}/charts`, '--plain-http', '--destination', dest],
      {},
      120_000,
    );
    if (r.code !== 0) throw new Error(`npm run chart -- --push exited ${r.code}:\n${r.stderr}`);
    expect(r.stdout.trim()).toBe(`oci://${host}/charts/currency-nodes:${VERSION}`);
    const tags = await api<{ tags: string[] }>('/v2/charts/currency-nodes/tags/list');
    expect(tags.body.tags).toEqual([VERSION]);

    const ref = `oci://${host}/charts/currency-nodes`;
    const shown = parseYaml(
      await runOk(helm, ['show', 'chart', ref, '--version', VERSION, '--plain-http'], {
        env: env(),
      }),
    ) as Record<string, unknown>;
    expect(shown).toMatchObject({ name: 'currency-nodes', version: VERSION, appVersion: VERSION });
    // With no --version helm takes the newest tag, as the README's install line does.
    const latest = parseYaml(
      await runOk(helm, ['show', 'chart', ref, '--plain-http'], { env: env() }),
    ) as Record<string, unknown>;
    expect(latest).toMatchObject({ version: VERSION });

    // The images the chart from the registry runs are the ones pushed above.
    const rendered = await runOk(
      helm,
      [
        'template',
        'cn',
        ref,
        '--version',
        VERSION,
        '--plain-http',
        '--set',
        `image.registry=${host}/cn`,
      ],
      { env: env(), timeoutMs: 60_000 },
    );
    expect(imagesOf(rendered)).toEqual(pushed.map((p) => p.ref).sort());
  });
});
