/**
 * The images under a locked-down runtime, as the Helm chart runs them (and as a cautious
 * `docker run` would): `--read-only` root filesystem with a tmpfs at /tmp, `--cap-drop ALL`,
 * `--security-opt no-new-privileges`, the image's own user. The controller, the cli and a
 * node run that way (ContainerHarness with `hardened`); each runs as a non-root user with no
 * effective capability and cannot write outside /tmp, and the node registers and streams.
 *
 * Needs `npm run setup:e2e` (engine, base image); builds the project images itself.
 */
import type { StartedTestContainer } from 'testcontainers';
import { nodes, prices } from '../tests/support/harness';
import { waitFor } from '../tests/support/wait';
import { ContainerHarness } from './support/container-harness';
import { buildProjectImages, loadImages, type E2eImages } from './support/docker';

jest.setTimeout(120_000);

const report = (line: string) => process.stdout.write(`e2e hardened: ${line}\n`);

let images: E2eImages;
let h: ContainerHarness | undefined;

beforeAll(() => {
  images = loadImages();
  buildProjectImages();
}, 20 * 60_000);

afterAll(async () => {
  const current = h;
  h = undefined;
  await current?.close();
});

async function sh(c: StartedTestContainer, script: string) {
  const r = await c.exec(['/bin/sh', '-c', script]);
  return { code: r.exitCode, out: r.output.trim() };
}

describe('controller, node and cli with a read-only root, no capabilities, no-new-privileges', () => {
  let containers: [string, StartedTestContainer][];
  let nodeUuid: string;
  const PAIRS = ['EUR_USD', 'USD_JPY'];

  beforeAll(async () => {
    const started = Date.now();
    h = await ContainerHarness.start(images, {}, { hardened: true });
    const node = await h.startNode(PAIRS, { name: 'hardened-node' });
    nodeUuid = node.uuid;
    containers = [
      ['controller', h.controller],
      ['cli', h.cliContainer],
      ['node', h.nodeContainers.get(nodeUuid) as StartedTestContainer],
    ];
    report(`controller, cli and node started hardened in ${Date.now() - started} ms`);
  }, 120_000);

  it('are started with --read-only, a /tmp tmpfs, --cap-drop ALL and no-new-privileges', async () => {
    for (const [role, c] of containers) {
      const info = await (h as ContainerHarness).inspect(c);
      expect({ role, readOnly: info.HostConfig.ReadonlyRootfs }).toEqual({ role, readOnly: true });
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges');
      expect(Object.keys(info.HostConfig.Tmpfs ?? {})).toEqual(['/tmp']);
      expect(info.HostConfig.Privileged).toBe(false);
    }
  });

  it('run as a non-root user (id -u is not 0) with no effective capability', async () => {
    for (const [role, c] of containers) {
      const uid = await sh(c, 'id -u');
      expect({ role, code: uid.code }).toEqual({ role, code: 0 });
      expect(uid.out).toMatch(/^\d+$/);
      expect({ role, uid: uid.out }).not.toEqual({ role, uid: '0' });
      // PID 1 is the program itself (exec-form ENTRYPOINT) or the cli's idle shell.
      const status = await sh(c, "grep -E '^(Uid|CapEff|NoNewPrivs):' /proc/1/status");
      expect(status.out).toMatch(/^Uid:\s+[1-9]\d*\s/m);
      expect(status.out).toMatch(/^CapEff:\s+0+$/m);
      expect(status.out).toMatch(/^NoNewPrivs:\s+1$/m);
      report(`${role}: uid ${uid.out}, CapEff 0, NoNewPrivs 1`);
    }
  });

  it('cannot write the root filesystem; /tmp is writable', async () => {
    for (const [role, c] of containers) {
      const root = await sh(c, 'touch /hardened-probe 2>&1; echo "exit $?"');
      expect({ role, out: root.out }).toEqual({
        role,
        out: expect.stringMatching(/Read-only file system[\s\S]*exit 1$/),
      });
      const home = await sh(c, 'touch "$HOME/probe" 2>&1 || echo denied');
      expect(home.out).toMatch(/denied|Read-only/);
      const tmp = await sh(c, 'touch /tmp/probe && rm /tmp/probe && echo ok');
      expect({ role, out: tmp.out }).toEqual({ role, out: 'ok' });
    }
  });

  it('the node registers with the controller and streams its pairs', async () => {
    const harness = h as ContainerHarness;
    const started = Date.now();
    const me = await waitFor(
      'the hardened node registered and streaming both pairs',
      async () =>
        (await nodes(harness)).find(
          (n) => n.nodeUuid === nodeUuid && n.streamingCurrencyPairs.length === PAIRS.length,
        ),
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    expect(me.name).toBe('hardened-node');
    expect([...me.streamingCurrencyPairs].sort()).toEqual([...PAIRS].sort());
    await waitFor(
      'a price for every pair from the hardened node',
      async () => {
        const p = await prices(harness);
        return PAIRS.every((pair) =>
          p.some((x) => x.currencyPair === pair && x.nodeUuid === nodeUuid),
        );
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    report(`node registered and priced both pairs in ${Date.now() - started} ms`);
  });
});
