/**
 * The real images on a Docker network this test creates (Testcontainers): a controller,
 * nodes with overlapping pairs, and the cli image. The failover and restart scenarios are
 * the ones the integration tier runs on child processes (tests/support/scenarios.ts), here
 * with `docker kill`, `docker pause` and `docker stop`/`start` of the controller container.
 *
 * Needs `npm run setup:e2e` (engine, base image); builds the project images itself.
 */
import { GenericContainer, Wait } from 'testcontainers';
import { nodes, prices, streams } from '../tests/support/harness';
import {
  controllerRestartScenario,
  failoverScenario,
  waitAllStreamed,
} from '../tests/support/scenarios';
import { waitFor } from '../tests/support/wait';
import { ContainerHarness } from './support/container-harness';
import {
  buildProjectImages,
  loadImages,
  run,
  streamProblems,
  type E2eImages,
} from './support/docker';

jest.setTimeout(180_000);

let images: E2eImages;

beforeAll(() => {
  images = loadImages();
  buildProjectImages();
}, 20 * 60_000);

/** One harness per test, so each scenario starts from a controller with no nodes. */
let h: ContainerHarness | undefined;
afterEach(async () => {
  const current = h;
  h = undefined;
  await current?.close();
});

const report = (line: string) => process.stdout.write(`e2e: ${line}\n`);

describe('the images', () => {
  it('run as a non-root user, with a health check on the programs and OCI labels', async () => {
    for (const [role, image] of [
      ['controller', images.CONTROLLER_IMAGE],
      ['node', images.NODE_IMAGE],
      ['cli', images.CLI_IMAGE],
    ] as const) {
      const r = await run('docker', ['image', 'inspect', image, '--format', '{{json .Config}}']);
      expect(r.code).toBe(0);
      const config = JSON.parse(r.stdout) as {
        User: string;
        Entrypoint: string[];
        Healthcheck?: { Test: string[] };
        Labels: Record<string, string>;
      };
      expect({ role, user: config.User }).toEqual({ role, user: 'node' });
      expect(config.Entrypoint).toEqual([`currency-${role}`]);
      expect(config.Labels['org.opencontainers.image.title']).toBe(`currency-${role}`);
      expect(config.Labels['org.opencontainers.image.version']).toMatch(/^\d+\.\d+\.\d+/);
      expect(config.Labels['org.opencontainers.image.revision']).toBeTruthy();
      if (role === 'cli') expect(config.Healthcheck).toBeUndefined();
      else expect(config.Healthcheck?.Test.join(' ')).toMatch(/\/(healthz|readyz)/);
    }
  });

  it('share every layer: base, dependencies and programs; only their metadata differs', async () => {
    const layers = async (image: string) =>
      (await run('docker', ['image', 'inspect', image, '--format', '{{json .RootFS.Layers}}']))
        .stdout;
    const controller = await layers(images.CONTROLLER_IMAGE);
    expect(JSON.parse(controller)).not.toHaveLength(0);
    expect(await layers(images.NODE_IMAGE)).toBe(controller);
    expect(await layers(images.CLI_IMAGE)).toBe(controller);
  });

  it('stream every pair exactly once across nodes with overlapping pairs', async () => {
    h = await ContainerHarness.start(images);
    const fleet: [string, string[]][] = [
      ['alpha', ['EUR_USD', 'USD_JPY', 'GBP_USD']],
      ['beta', ['EUR_USD', 'USD_JPY', 'BTC_USD']],
      ['gamma', ['GBP_USD', 'BTC_USD', 'ETH_USD']],
      ['delta', ['USD_JPY', 'ETH_USD', 'EUR_USD', 'GBP_USD', 'BTC_USD']],
      ['epsilon', ['USD_HKD', 'EUR_USD']],
    ];
    const started = Date.now();
    for (const [name, pairs] of fleet) await h.startNode(pairs, { name });
    const pairs = [...new Set(fleet.flatMap(([, p]) => p))].sort();
    const harness = h;
    await waitFor(
      'every pair streamed exactly once by a capable node',
      async () => {
        const [s, n] = await Promise.all([streams(harness), nodes(harness)]);
        return n.length === fleet.length && streamProblems(s, n, pairs).length === 0;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    const [s, n] = await Promise.all([streams(h), nodes(h)]);
    expect(streamProblems(s, n, pairs)).toEqual([]);
    expect(n.map((x) => x.name).sort()).toEqual(fleet.map(([name]) => name).sort());
    // Prices flow: each pair's latest price came from the node streaming it.
    const streamer = new Map(s.map((x) => [x.currencyPair, x.nodeUuids[0]]));
    await waitFor(
      'a price for every pair from its streamer',
      async () => {
        const p = await prices(harness);
        return pairs.every((pair) =>
          p.some((x) => x.currencyPair === pair && x.nodeUuid === streamer.get(pair)),
        );
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    report(
      `${fleet.length} node containers registered, ${pairs.length} pairs streamed once each, in ${Date.now() - started} ms`,
    );
  });
});

describe('failover on real containers', () => {
  it('moves the pair of a node container killed with docker kill to another node at once', async () => {
    h = await ContainerHarness.start(images);
    const r = await failoverScenario(h, 'kill');
    report(`docker kill: USD_HKD moved from ${r.victim} to ${r.successor} in ${r.ms} ms`);
    expect(r.successor).not.toBe(r.victim);
    expect(r.ms).toBeLessThan(10_000);
    // A price for the pair arrives from its new streamer.
    const harness = h;
    await waitFor(
      'a price for USD_HKD from the new streamer',
      async () =>
        (await prices(harness)).some(
          (p) => p.currencyPair === 'USD_HKD' && p.nodeUuid === r.successor,
        ),
      { timeoutMs: 10_000, intervalMs: 250 },
    );
  });

  it('detects a paused node container (a silent peer) within the keepalive bound and replaces it', async () => {
    h = await ContainerHarness.start(images);
    const r = await failoverScenario(h, 'freeze');
    report(`docker pause: USD_HKD moved from ${r.victim} to ${r.successor} in ${r.ms} ms`);
    expect(r.successor).not.toBe(r.victim);
    expect(r.ms).toBeLessThan(10_000);
    // Unpaused, the node finds its stream gone and registers again by itself.
    const harness = h;
    const t0 = Date.now();
    await waitFor(
      'the unpaused node to register again',
      async () => (await nodes(harness)).some((n) => n.nodeUuid === r.victim),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    report(`docker unpause: ${r.victim} registered again in ${Date.now() - t0} ms`);
  });

  it('brings every node back by itself when the controller container is stopped and started', async () => {
    h = await ContainerHarness.start(images);
    const r = await controllerRestartScenario(h);
    report(
      `controller docker stop + start: ${r.nodes} nodes back and every pair streamed in ${r.ms} ms`,
    );
    expect(r.nodes).toBe(3);
  });

  it('stops a node container gracefully with SIGTERM (exit code 0), its pairs moving on', async () => {
    h = await ContainerHarness.start(images);
    const a = await h.startNode(['USD_HKD'], { name: 'first' });
    await h.startNode(['USD_HKD'], { name: 'second' });
    const before = await waitAllStreamed(h, ['USD_HKD']);
    const victim = before[0].nodeUuids[0];
    const handle = victim === a.uuid ? a : undefined;
    const container = h.nodeContainers.get(victim)!;
    const t0 = Date.now();
    if (handle) await handle.stop();
    else await container.stop({ timeout: 10_000, remove: false });
    const stopMs = Date.now() - t0;
    const state = (await h.inspect(container)).State;
    report(`docker stop of a node: exit code ${state.ExitCode} after ${stopMs} ms`);
    expect(state.ExitCode).toBe(0);
    expect(stopMs).toBeLessThan(8_000);
    const after = await waitAllStreamed(h, ['USD_HKD']);
    expect(after[0].nodeUuids[0]).not.toBe(victim);
  });
});

describe('the cli image', () => {
  it('lists the connected nodes when run as a one-off container', async () => {
    h = await ContainerHarness.start(images);
    await h.startNode(['EUR_USD', 'USD_JPY'], { name: 'listed-one' });
    await h.startNode(['USD_JPY', 'BTC_USD'], { name: 'listed-two' });
    await waitAllStreamed(h, ['BTC_USD', 'EUR_USD', 'USD_JPY']);
    // The image's own entry point, as a user runs it: docker run ... cli controller nodes.
    const cli = await new GenericContainer(images.CLI_IMAGE)
      .withNetwork(h.network)
      .withCommand(['--controller', 'controller:5160', 'controller', 'nodes'])
      .withWaitStrategy(Wait.forOneShotStartup())
      .withStartupTimeout(30_000)
      .start();
    try {
      const logs = await new Promise<string>((resolve, reject) => {
        let out = '';
        cli
          .logs()
          .then((stream) => {
            stream.on('data', (b: Buffer | string) => (out += b.toString()));
            stream.on('end', () => resolve(out));
            stream.on('error', reject);
          })
          .catch(reject);
      });
      expect(logs).toContain('listed-one');
      expect(logs).toContain('listed-two');
      expect((await h.inspect(cli)).State.ExitCode).toBe(0);
    } finally {
      await cli.stop({ timeout: 1_000 }).catch(() => undefined);
    }
  });
});
