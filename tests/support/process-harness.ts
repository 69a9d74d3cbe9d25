/** SystemHarness on real child processes on loopback. */
import { randomUUID } from 'node:crypto';
import {
  type CliResult,
  type NodeHandle,
  type PriceWatch,
  type SystemHarness,
  parseWatchLines,
} from './harness';
import { type Program, runProgram, startProgram } from './processes';
import { WaitAborted, waitFor } from './wait';

export interface ProcessHarnessOptions {
  streamsPerPair?: number;
  priceIntervalMs?: string;
  extraControllerEnv?: Record<string, string>;
}

export class ProcessHarness implements SystemHarness {
  readonly silentPeerBoundMs = 6000;
  controller!: Program;
  readonly nodes: Program[] = [];
  /** Known once the first controller serves: it picked them itself (port 0). */
  grpcPort = 0;
  metricsPort = 0;
  private constructor(private readonly opts: ProcessHarnessOptions) {}

  static async start(opts: ProcessHarnessOptions = {}): Promise<ProcessHarness> {
    const h = new ProcessHarness(opts);
    await h.startController();
    return h;
  }

  get address(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}/metrics`;
  }

  /**
   * The first start listens on port 0 and reads the ports the controller got from its
   * `controller serving` line: a port picked here and handed over could be taken in between
   * (by a container another lane publishes, say). A restart reuses the same ports, which
   * the nodes dial again.
   */
  async startController(): Promise<void> {
    this.controller = startProgram('controller', {
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${this.grpcPort}`,
      METRICS_ADDR: `127.0.0.1:${this.metricsPort}`,
      CONTROLLER_STREAMS_PER_PAIR: String(this.opts.streamsPerPair ?? 1),
      ...this.opts.extraControllerEnv,
    });
    const serving = await loggedLine(this.controller, 'controller serving');
    this.grpcPort = Number(String(serving.listen).split(':').pop());
    this.metricsPort = Number(serving.metrics_port);
    await waitUntilReady(this.controller, this.metricsPort);
  }

  async restartController(): Promise<void> {
    this.controller.signal('SIGTERM');
    await this.controller.exited;
    await this.startController();
  }

  async startNode(
    pairs: string[],
    opts: { name?: string; uuid?: string } = {},
  ): Promise<NodeHandle> {
    const uuid = opts.uuid ?? randomUUID();
    const p = startProgram('node', {
      NODE_CONTROLLER_ADDR: this.address,
      NODE_CURRENCY_PAIRS: pairs.join(','),
      NODE_UUID: uuid,
      NODE_NAME: opts.name ?? `node-${this.nodes.length + 1}`,
      NODE_PRICE_INTERVAL_MS: this.opts.priceIntervalMs ?? '100-200',
      METRICS_ADDR: '127.0.0.1:0',
    });
    this.nodes.push(p);
    const starting = await loggedLine(p, 'node starting');
    await waitUntilReady(p, Number(starting.metrics_port));
    return {
      uuid,
      pairs,
      kill: async () => {
        p.signal('SIGKILL');
        await p.exited;
      },
      freeze: async () => p.signal('SIGSTOP'),
      unfreeze: async () => p.signal('SIGCONT'),
      stop: async () => {
        p.signal('SIGTERM');
        await p.exited;
      },
    };
  }

  cli(args: string[]): Promise<CliResult> {
    return runProgram('cli', ['--controller', this.address, '--timeout', '5', ...args]);
  }

  watchPrices(pairs: string[]): Promise<PriceWatch> {
    return startWatch(this.address, pairs);
  }

  async metrics(): Promise<string> {
    const res = await fetch(this.metricsUrl);
    return res.text();
  }

  async close(): Promise<void> {
    for (const n of this.nodes) {
      n.signal('SIGCONT');
      n.signal('SIGKILL');
    }
    this.controller.signal('SIGKILL');
    await Promise.all([...this.nodes.map((n) => n.exited), this.controller.exited]);
  }
}

/**
 * `currency-cli --json watch` as a child process; resolves once the controller took the
 * subscription (the CLI says `watching` on stderr). Output is parsed as it grows, once.
 */
export async function startWatch(
  address: string,
  pairs: string[],
): Promise<PriceWatch & { program: Program }> {
  const p = startProgram('cli', {}, [
    '--controller',
    address,
    '--json',
    'watch',
    ...pairs.flatMap((x) => ['--pair', x]),
  ]);
  let ended = false;
  void p.exited.then(() => (ended = true));
  await waitFor(
    'the watch to start',
    () => {
      if (p.stderr().includes('watching ')) return true;
      if (ended) throw new WaitAborted(`watch exited: ${p.stderr()}`);
      return false;
    },
    { timeoutMs: 10_000 },
  );
  let parsedUpTo = 0;
  const seen: ReturnType<typeof parseWatchLines> = [];
  return {
    program: p,
    updates: () => {
      const out = p.stdout();
      const end = out.lastIndexOf('\n') + 1;
      if (end > parsedUpTo) {
        for (const u of parseWatchLines(out.slice(parsedUpTo, end))) seen.push(u);
        parsedUpTo = end;
      }
      return seen;
    },
    stop: async () => {
      p.signal('SIGINT');
      await p.exited;
    },
  };
}

/** The first pino line of `p` whose msg is `msg` (rejects with the output if `p` exits first). */
async function loggedLine(p: Program, msg: string): Promise<Record<string, unknown>> {
  await p.waitForOutput(new RegExp(`"msg":"${msg}"[^\\n]*\\n`), 15_000);
  return p.logLines().find((l) => l.msg === msg)!;
}

/**
 * Polls /readyz until 200; stops at once, with the program's output, if it exits. The bound
 * is generous: a program that loads the OpenTelemetry SDK takes seconds to start on a
 * machine busy with two other jest lanes.
 */
export async function waitUntilReady(
  p: Program,
  metricsPort: number,
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `${p.name} ready (/readyz on ${metricsPort})`,
    async () => {
      if (!p.running()) throw new WaitAborted(`${p.name} exited: ${p.output()}`);
      return (await httpStatus(`http://127.0.0.1:${metricsPort}/readyz`)) === 200;
    },
    { timeoutMs },
  );
}

export async function httpStatus(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** The value of one sample in Prometheus text format (labels as written, e.g. `{pair="USD_HKD"}`). */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
