/**
 * SystemHarness (tests/support/harness.ts) on real containers: the project's images started
 * with Testcontainers on a network this harness creates. The controller answers to the
 * network alias `controller`; a long-running cli container runs `currency-cli` by exec.
 * Nodes are killed with `docker kill`, frozen with `docker pause`, stopped with SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import {
  GenericContainer,
  Network,
  Wait,
  getContainerRuntimeClient,
  type StartedNetwork,
  type StartedTestContainer,
} from 'testcontainers';
import {
  type CliResult,
  type NodeHandle,
  type PriceWatch,
  type SystemHarness,
  parseWatchLines,
} from '../../tests/support/harness';
import { waitFor } from '../../tests/support/wait';
import type { E2eImages } from './docker';

const CONTROLLER_ALIAS = 'controller';
const STARTUP_TIMEOUT_MS = 60_000;
/** Prices every 0.5-1.5 s, so "a price arrived from the new streamer" is quick to see. */
const PRICE_INTERVAL = '500-1500';
const LOG_LEVEL = process.env.E2E_LOG_LEVEL ?? 'info';

async function dockerContainer(id: string) {
  const client = await getContainerRuntimeClient();
  return client.container.getById(id);
}

/** `/bin/sh` loop that stays up until SIGTERM, for `docker exec`; as in deploy/compose. */
export const IDLE_ENTRYPOINT = [
  '/bin/sh',
  '-c',
  "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
];

/**
 * How a locked-down runtime starts the images (as the Helm chart's security contexts do):
 * read-only root filesystem with a tmpfs at /tmp, every capability dropped, no privilege
 * escalation (no-new-privileges), the image's own non-root user.
 */
export interface HardeningOptions {
  hardened?: boolean;
}

/** GenericContainer with `docker run --read-only`, which Testcontainers has no method for. */
class ProjectContainer extends GenericContainer {
  withReadOnlyRootFilesystem(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }
}

function projectContainer(image: string, hardened: boolean): GenericContainer {
  const c = new ProjectContainer(image);
  if (!hardened) return c;
  return c
    .withReadOnlyRootFilesystem()
    .withTmpFs({ '/tmp': 'rw,noexec,nosuid,size=64m' })
    .withDroppedCapabilities('ALL')
    .withSecurityOpt('no-new-privileges');
}

export class ContainerHarness implements SystemHarness {
  /** Keepalive detects a silent peer in about 2 s; this bound is generous on purpose. */
  readonly silentPeerBoundMs = 6000;
  readonly nodeContainers = new Map<string, StartedTestContainer>();
  private paused = new Set<string>();
  /** `currency-cli watch` containers still running (stopped by their watch, or by close). */
  private readonly watchers = new Set<StartedTestContainer>();

  private constructor(
    readonly images: E2eImages,
    readonly network: StartedNetwork,
    readonly controller: StartedTestContainer,
    readonly cliContainer: StartedTestContainer,
    /** Every container of this harness (nodes too) runs hardened (HardeningOptions). */
    readonly hardened = false,
  ) {}

  static async start(
    images: E2eImages,
    controllerEnv: Record<string, string> = {},
    { hardened = false }: HardeningOptions = {},
  ) {
    const network = await new Network().start();
    let controller: StartedTestContainer | undefined;
    try {
      controller = await projectContainer(images.CONTROLLER_IMAGE, hardened)
        .withNetwork(network)
        .withNetworkAliases(CONTROLLER_ALIAS)
        .withEnvironment({ LOG_LEVEL, ...controllerEnv })
        .withExposedPorts(5160, 9464)
        .withWaitStrategy(Wait.forHttp('/readyz', 9464).forStatusCode(200))
        .withStartupTimeout(STARTUP_TIMEOUT_MS)
        .start();
      const cli = await projectContainer(images.CLI_IMAGE, hardened)
        .withNetwork(network)
        .withEntrypoint(IDLE_ENTRYPOINT)
        .withEnvironment({ CLI_CONTROLLER_ADDR: `${CONTROLLER_ALIAS}:5160` })
        .withStartupTimeout(STARTUP_TIMEOUT_MS)
        .start();
      return new ContainerHarness(images, network, controller, cli, hardened);
    } catch (err) {
      await controller?.stop({ timeout: 5_000 }).catch(() => undefined);
      await network.stop().catch(() => undefined);
      throw err;
    }
  }

  async startNode(
    pairs: string[],
    opts: { name?: string; uuid?: string; env?: Record<string, string> } = {},
  ): Promise<NodeHandle> {
    const uuid = opts.uuid ?? randomUUID();
    const container = await projectContainer(this.images.NODE_IMAGE, this.hardened)
      .withNetwork(this.network)
      .withEnvironment({
        NODE_CONTROLLER_ADDR: `${CONTROLLER_ALIAS}:5160`,
        NODE_CURRENCY_PAIRS: pairs.join(','),
        NODE_UUID: uuid,
        ...(opts.name ? { NODE_NAME: opts.name } : {}),
        NODE_PRICE_INTERVAL_MS: PRICE_INTERVAL,
        LOG_LEVEL,
        ...opts.env,
      })
      .withExposedPorts(9464)
      // Ready = connected to the controller and registered.
      .withWaitStrategy(Wait.forHttp('/readyz', 9464).forStatusCode(200))
      .withStartupTimeout(STARTUP_TIMEOUT_MS)
      .start();
    this.nodeContainers.set(uuid, container);
    const id = container.getId();
    return {
      uuid,
      pairs,
      kill: async () => {
        await (await dockerContainer(id)).kill({ signal: 'SIGKILL' });
      },
      freeze: async () => {
        await (await dockerContainer(id)).pause();
        this.paused.add(id);
      },
      unfreeze: async () => {
        await (await dockerContainer(id)).unpause();
        this.paused.delete(id);
      },
      stop: async () => {
        await container.stop({ timeout: 10_000, remove: false });
      },
    };
  }

  /** `docker stop` (SIGTERM, graceful) then `docker start`, and wait until it serves again. */
  async restartController(): Promise<void> {
    const c = await dockerContainer(this.controller.getId());
    await c.stop({ t: 10 });
    await c.start();
    await waitFor(
      'the restarted controller to answer the cli',
      async () => (await this.cli(['controller', 'version'])).code === 0,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  }

  /** A one-off cli container running `watch --json`; its log is the watch's output. */
  async watchPrices(pairs: string[]): Promise<PriceWatch> {
    let out = '';
    const container = await projectContainer(this.images.CLI_IMAGE, this.hardened)
      .withNetwork(this.network)
      .withEnvironment({ CLI_CONTROLLER_ADDR: `${CONTROLLER_ALIAS}:5160` })
      .withCommand(['--json', 'watch', ...pairs.flatMap((p) => ['--pair', p])])
      .withLogConsumer((stream) => stream.on('data', (d: Buffer | string) => (out += String(d))))
      // The CLI says `watching ...` on stderr once the controller took the subscription.
      .withWaitStrategy(Wait.forLogMessage(/watching /))
      .withStartupTimeout(STARTUP_TIMEOUT_MS)
      .start();
    this.watchers.add(container);
    return {
      updates: () => parseWatchLines(out),
      stop: async () => {
        this.watchers.delete(container);
        await container.stop({ timeout: 5_000 });
      },
    };
  }

  async cli(args: string[]): Promise<CliResult> {
    const r = await this.cliContainer.exec(['currency-cli', ...args]);
    return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  }

  /** The exit code and state of a container after it ended. */
  async inspect(container: StartedTestContainer) {
    return (await dockerContainer(container.getId())).inspect();
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    for (const id of this.paused) {
      await attempt(async () => (await dockerContainer(id)).unpause());
    }
    // Nodes may be dead already (killed or stopped): remove them whatever their state.
    for (const c of this.nodeContainers.values()) {
      await attempt(async () => (await dockerContainer(c.getId())).remove({ force: true }));
    }
    for (const w of this.watchers) await attempt(() => w.stop({ timeout: 5_000 }));
    await attempt(() => this.cliContainer.stop({ timeout: 5_000 }));
    await attempt(() => this.controller.stop({ timeout: 10_000 }));
    await attempt(() => this.network.stop());
    if (errors.length > 0) throw new Error(`teardown: ${errors.map(String).join('; ')}`);
    const left = await this.leftovers();
    if (left.length > 0) throw new Error(`teardown left behind: ${left.join(', ')}`);
  }

  /** Containers (by id) and the network of this harness that still exist. */
  async leftovers(): Promise<string[]> {
    const client = await getContainerRuntimeClient();
    const ids = [
      this.controller.getId(),
      this.cliContainer.getId(),
      ...[...this.nodeContainers.values()].map((c) => c.getId()),
      ...[...this.watchers].map((c) => c.getId()),
    ];
    // Inspect finds a container in any state (running, exited, paused); list() only running.
    const exists = (p: Promise<unknown>) =>
      p.then(
        () => true,
        () => false,
      );
    const left: string[] = [];
    for (const id of ids) {
      if (await exists(client.container.getById(id).inspect()))
        left.push(`container ${id.slice(0, 12)}`);
    }
    if (await exists(client.network.getById(this.network.getId()).inspect()))
      left.push(`network ${this.network.getName()}`);
    return left;
  }
}
