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
  program: Program;
}

export class RealNodeSetup {
  nodes: RealNode[] = [];
  private listeners = new Set<(p: PriceSeen) => void>();
  private constructor(
    readonly controller: ControllerHandle,
    readonly cli: BenchCli,
  ) {}

  static async start(nodeCount: number): Promise<RealNodeSetup> {
    const controller = startController(await freePort(), await freePort());
    await waitReady(controller.metricsUrl, controller.program);
    const cli = new BenchCli(controller.grpcAddr);
    await cli.open();
    const setup = new RealNodeSetup(controller, cli);
    await cli.watch([PAIR], (p) => {
      for (const l of setup.listeners) l(p);
    });
    for (let i = 0; i < nodeCount; i++) await setup.addNode();
    return setup;
  }

  /** Starts a node and waits until the controller counts it. */
  async addNode(): Promise<RealNode> {
    const uuid = randomUUID();
    const program = startProgram('node', {
      NODE_CONTROLLER_ADDR: this.controller.grpcAddr,
      NODE_CURRENCY_PAIRS: PAIR,
      NODE_UUID: uuid,
      NODE_NAME: `bench-${uuid.slice(0, 8)}`,
      // Only the first price after a start matters here; later ones would blur it.
      NODE_PRICE_INTERVAL_MS: '600000',
      METRICS_ADDR: `127.0.0.1:${await freePort()}`,
    });
    const node = { uuid, program };
    this.nodes.push(node);
    const want = this.nodes.length;
    await waitUntil(
      'node registered',
      async () =>
        (await gauges(this.controller.metricsUrl, ['currency_controller_connected_nodes']))
          .currency_controller_connected_nodes === want,
      { timeoutMs: 15_000, intervalMs: 10 },
    );
    return node;
  }

  /** The node now streaming PAIR, by the controller's own account. */
  async streamer(): Promise<RealNode> {
    return waitUntil('a streamer', async () => {
      const r = await this.cli.request('ControllerStreamsV1Req', {});
      if (r.name !== 'ControllerStreamsV1Reply') return undefined;
      const uuid = r.message.pairs.find((p) => p.currencyPair === PAIR)?.nodeUuids[0];
      return this.nodes.find((n) => n.uuid === uuid);
    });
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

  forget(node: RealNode): void {
    this.nodes = this.nodes.filter((n) => n !== node);
  }

  close(): void {
    this.cli.close();
  }
}
