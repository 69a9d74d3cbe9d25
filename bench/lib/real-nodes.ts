/** A controller and a few real node programs sharing one pair, for failover figures. */
import { randomUUID } from 'node:crypto';
import { freePort } from '../../tests/support/ports';
import { BenchCli, type PriceSeen } from './cli';
import { waitUntil } from './clock';
import { gauges } from './metrics';
import {
  type ControllerHandle,
  type Program,
  startController,
  startProgram,
  waitReady,
} from './procs';

export const PAIR = 'EUR_USD';

export interface RealNode {
  uuid: string;
  name: string;
  program: Program;
}

export interface RealNodeOptions {
  /** The pair every node streams (default PAIR). */
  pair?: string;
  /** Extra environment of a node (e.g. its upstream), given its UUID and name. */
  nodeEnv?: (node: { uuid: string; name: string }) => Record<string, string>;
}

export class RealNodeSetup {
  nodes: RealNode[] = [];
  private listeners = new Set<(p: PriceSeen) => void>();
  readonly pair: string;
  private constructor(
    readonly controller: ControllerHandle,
    readonly cli: BenchCli,
    private readonly options: RealNodeOptions,
  ) {
    this.pair = options.pair ?? PAIR;
  }

  static async start(nodeCount: number, options: RealNodeOptions = {}): Promise<RealNodeSetup> {
    const controller = startController(await freePort(), await freePort());
    await waitReady(controller.metricsUrl, controller.program);
    const cli = new BenchCli(controller.grpcAddr);
    await cli.open();
    const setup = new RealNodeSetup(controller, cli, options);
    await cli.watch([setup.pair], (p) => {
      for (const l of setup.listeners) l(p);
    });
    for (let i = 0; i < nodeCount; i++) await setup.addNode();
    return setup;
  }

  /** Starts a node and waits until the controller counts it. */
  async addNode(): Promise<RealNode> {
    const uuid = randomUUID();
    const name = `bench-${uuid.slice(0, 8)}`;
    const program = startProgram('node', {
      NODE_CONTROLLER_ADDR: this.controller.grpcAddr,
      NODE_CURRENCY_PAIRS: this.pair,
      NODE_UUID: uuid,
      NODE_NAME: name,
      // Only the first price after a start matters here; later ones would blur it.
      NODE_PRICE_INTERVAL_MS: '600000',
      METRICS_ADDR: `127.0.0.1:${await freePort()}`,
      ...this.options.nodeEnv?.({ uuid, name }),
    });
    const node = { uuid, name, program };
    this.nodes.push(node);
    const want = this.nodes.length;
    let lastCount = NaN;
    await waitUntil(
      'node registered',
      async () => {
        if (program.child.exitCode !== null || program.child.signalCode !== null)
          throw new Error(`node exited: ${program.output()}`);
        const n = (
          await gauges(this.controller.metricsUrl, ['currency_controller_connected_nodes'])
        ).currency_controller_connected_nodes;
        lastCount = n;
        return n === want;
      },
      { timeoutMs: 15_000, intervalMs: 10 },
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)} (controller counts ${lastCount} nodes, want ${want}); node output: ${program.output().slice(-1500)}`,
      );
    });
    return node;
  }

  /** The node now streaming the pair, by the controller's own account. */
  async streamer(): Promise<RealNode> {
    return waitUntil('a streamer', async () => {
      const r = await this.cli.request('ControllerStreamsV1Req', {});
      if (r.name !== 'ControllerStreamsV1Reply') return undefined;
      const uuid = r.message.pairs.find((p) => p.currencyPair === this.pair)?.nodeUuids[0];
      return this.nodes.find((n) => n.uuid === uuid);
    });
  }

  /** Connected nodes that offer the pair now, by the controller's own account. */
  async capableNodes(): Promise<number> {
    const r = await this.cli.request('ControllerStreamsV1Req', {});
    if (r.name !== 'ControllerStreamsV1Reply') throw new Error(`unexpected reply ${r.name}`);
    return r.message.pairs.find((p) => p.currencyPair === this.pair)?.capableNodes ?? 0;
  }

  /** Resolves with the first watched price of PAIR from a node other than `notFrom`. */
  nextPriceNotFrom(notFrom: string, timeoutMs: number): Promise<PriceSeen> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no price from a replacement in ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (p: PriceSeen) => {
        if (p.nodeUuid === notFrom) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(p);
      };
      this.listeners.add(listener);
    });
  }

  /** Calls `listener` with every watched price of the pair until the returned function is called. */
  onPrice(listener: (p: PriceSeen) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  forget(node: RealNode): void {
    this.nodes = this.nodes.filter((n) => n !== node);
  }

  close(): void {
    this.cli.close();
  }
}
