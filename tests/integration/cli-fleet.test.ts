/**
 * `controller nodes` at fleet size (the issue: 4,000 nodes announcing 100 pairs each made
 * `controller nodes`, `--json controller nodes`, `nodes -w` and every `--node NAME` lookup
 * exit 1 with "Received message larger than max"), and again at the documented maxima,
 * CONTROLLER_MAX_NODES nodes each announcing CONTROLLER_MAX_PAIRS_PER_NODE pairs.
 *
 * The controller runs in this process; the fleet is registered in its core without a
 * stream per node (tests/support/fleet.ts says why: the fleet through the core's
 * real registration, the maxima straight into the registry and the assignment), and the
 * built CLI runs as a child process that talks to the controller over real gRPC, with its
 * V8 heap capped. Its output is checked line by line as it arrives (the biggest listing is
 * hundreds of MB). Printed: the pages and bytes on the wire, and the CLI's peak RSS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { CONTROLLER_DEFAULTS } from '../../services/controller/config';
import { StreamLink } from '../../services/controller/core/links/stream-link';
import type { MessageName, MessageOf } from '../../services/shared/any';
import { Fleet, type FleetNode, pairPool } from '../support/fleet';
import { startTestController } from '../support/in-process';
import { programPath } from '../support/processes';
import { waitFor } from '../support/wait';

const ROOT = join(__dirname, '..', '..');
const MAX_NODES = Number(CONTROLLER_DEFAULTS.CONTROLLER_MAX_NODES);
const MAX_PAIRS_PER_NODE = Number(CONTROLLER_DEFAULTS.CONTROLLER_MAX_PAIRS_PER_NODE);
const MAX_KNOWN_PAIRS = Number(CONTROLLER_DEFAULTS.CONTROLLER_MAX_KNOWN_PAIRS);

jest.setTimeout(15 * 60_000);

/**
 * Writes the CLI's peak RSS (kB) to stderr as it exits, sampled from inside every 20 ms.
 * (Not getrusage's ru_maxrss: for a child of a big process such as this test runner it
 * counts memory of the parent's, from before the child's exec.)
 */
const preload = join(mkdtempSync(join(tmpdir(), 'cli-fleet-')), 'peak-rss.js');
writeFileSync(
  preload,
  `let peak = 0;
const sample = () => (peak = Math.max(peak, process.memoryUsage.rss()));
setInterval(sample, 20).unref();
const lag = require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 });
lag.enable();
let gcMax = 0;
new (require('node:perf_hooks').PerformanceObserver)((list) => {
  for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration);
}).observe({ entryTypes: ['gc'] });
process.on('exit', () => {
  sample();
  const lagMs = Math.round(lag.max / 1e6);
  require('node:fs').writeSync(2, '\\npeak-rss-kb ' + Math.round(peak / 1024) + ' loop-max-ms ' + lagMs + ' gc-max-ms ' + Math.round(gcMax) + '\\n');
});
`,
);

const children = new Set<ChildProcess>();
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

interface CliRun {
  child: ChildProcess;
  exited: Promise<{
    code: number | string;
    stderr: string;
    peakRssKb: number;
    loopMaxMs: number;
    gcMaxMs: number;
  }>;
  /** With `unread`: starts reading stdout. */
  read(): void;
}

/**
 * The CLI's V8 heap is capped in every run here: a CLI that held the fleet could not list
 * it (the whole list at the maxima is over 200 MiB on the wire; its 20 million pair strings
 * alone take over 600 MiB as objects). Not lower: at 96 MiB the listing's live data (a page
 * being printed, and the gRPC stream's buffered messages, whose memory counts toward the
 * collector's budget) kept the collector running, and a maxima listing took 43-51 CPU
 * seconds of the CLI against 8-9 at 192 MiB, with the same peak RSS. Peak RSS is reported
 * too, but it also counts what the garbage collector has not reclaimed yet, which varies
 * with the machine's load.
 */
const CLI_HEAP_MIB = 192;

/**
 * The built CLI; `onLine` sees each stdout line as it comes (nothing is kept). `unread`:
 * nothing is read from its stdout until `read()`. A generous --timeout: the machine may be
 * busy, and the timeout is not what these tests are about.
 */
function startCli(
  address: string,
  args: string[],
  onLine: (line: string) => void,
  { unread = false } = {},
): CliRun {
  const argv = [
    `--max-old-space-size=${CLI_HEAP_MIB}`,
    '--require',
    preload,
    programPath('cli'),
    '--timeout',
    '60',
    ...args,
  ];
  const child = spawn(process.execPath, argv, {
    env: { PATH: process.env.PATH ?? '', CLI_CONTROLLER_ADDR: address },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let read!: () => void;
  const closed = new Promise<void>((resolve) => {
    read = () => {
      const lines = createInterface({ input: child.stdout!, crlfDelay: Infinity });
      lines.on('line', onLine);
      lines.once('close', resolve);
    };
  });
  if (!unread) read();

  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  ).then(async (code) => {
    await closed;
    children.delete(child);
    const rss = /peak-rss-kb (\d+) loop-max-ms (\d+) gc-max-ms (\d+)/.exec(stderr);
    return {
      code,
      stderr: stderr.replace(/\npeak-rss-kb \d+ loop-max-ms \d+ gc-max-ms \d+\n/, ''),
      peakRssKb: rss ? Number(rss[1]) : NaN,
      loopMaxMs: rss ? Number(rss[2]) : NaN,
      gcMaxMs: rss ? Number(rss[3]) : NaN,
    };
  });
  return { child, exited, read };
}

const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MiB`;

/**
 * What a listing may take in all, at any fleet size: the memory limit of the chart's CLI
 * pod, where an operator runs it (`kubectl exec`), so that a listing at the documented
 * maxima is not killed there. A CLI holding the fleet would need gigabytes.
 */
const CLI_RSS_BOUND_KB = chartCliMemoryKb();

function chartCliMemoryKb(): number {
  const values = parseYaml(
    readFileSync(join(__dirname, '../../deploy/helm/currency-nodes/values.yaml'), 'utf8'),
  ) as { cli: { resources: { limits: { memory: string } } } };
  const limit = values.cli.resources.limits.memory;
  const m = /^(\d+)(Mi|Gi)$/.exec(limit);
  if (!m) throw new Error(`cli.resources.limits.memory: ${limit} is not in Mi or Gi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 * 1024 : 1024);
}

interface RawListing {
  frames: number;
  bytes: number;
  largest: number;
  nodes: number;
  /** The last page, without its nodes. */
  last?: { page: number; last: boolean; totalNodes: number };
  /** A frame that is not a page (V1's reply or error), decoded. */
  other?: { name: string; message: { code?: number; message?: string } };
  error?: string;
}

/**
 * One listing as a stock gRPC client (grpc-js with its defaults: 4 MiB per message, no
 * keepalive) sees it on the wire: every frame's size, and the pages' nodes counted, then
 * dropped. In a child process, as a real client is: one in this process would share its
 * event loop with the controller, whose keepalive pings it could then miss.
 */
const rawClient = join(mkdtempSync(join(tmpdir(), 'cli-fleet-raw-')), 'raw-listing.js');
writeFileSync(
  rawClient,
  `const grpc = require(${JSON.stringify(join(ROOT, 'node_modules', '@grpc', 'grpc-js'))});
const pb = require(${JSON.stringify(join(ROOT, 'dist', 'services', 'gen', 'protobuf', 'currency_nodes.js'))});
const [address, name, json] = process.argv.slice(2);
const client = new grpc.Client(address, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest('/protobuf.CliCmdStream/CliCommandStream', (b) => b, (b) => b);
const seen = { frames: 0, bytes: 0, largest: 0, nodes: 0 };
let finished = false;
const done = () => {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify(seen));
  call.cancel();
  client.close();
};
call.on('error', (e) => { seen.error = e.message; done(); });
call.on('data', (b) => {
  seen.frames++;
  seen.bytes += b.length;
  seen.largest = Math.max(seen.largest, b.length);
  const f = pb.StreamToCli.decode(b);
  const type = f.response.typeUrl.split('.').pop();
  if (type === 'ControllerListNodesPageV1') {
    const p = pb.ControllerListNodesPageV1.decode(f.response.value);
    seen.nodes += p.nodes.length;
    if (p.last) { seen.last = { page: p.page, last: p.last, totalNodes: p.totalNodes }; done(); }
  } else {
    seen.other = { name: type, message: pb[type].toJSON(pb[type].decode(f.response.value)) };
    done();
  }
});
const command = { typeUrl: 'type.googleapis.com/protobuf.' + name, value: Buffer.from(pb[name].encode(pb[name].fromJSON(JSON.parse(json))).finish()) };
call.write(Buffer.from(pb.StreamFromCli.encode({ streamId: 'raw', cliUuid: '11111111-2222-4333-8444-555555555555', nodeUuids: [], command, traceContext: {} }).finish()));
`,
);

function rawListing<N extends MessageName>(
  address: string,
  name: N,
  message: MessageOf<N>,
): Promise<RawListing> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [rawClient, address, name, JSON.stringify(message)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('exit', () => {
      children.delete(child);
      try {
        resolve(JSON.parse(out) as RawListing);
      } catch (e) {
        reject(new Error(`raw listing printed ${JSON.stringify(out)}: ${String(e)}`));
      }
    });
  });
}

/** VmRSS of a running process, in kB. */
function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Pages of listings the in-process controller has sent since the test began. */
let pagesSent = 0;
beforeAll(() => {
  const send = StreamLink.prototype.send;
  jest.spyOn(StreamLink.prototype, 'send').mockImplementation(function (
    this: StreamLink<unknown, unknown, unknown>,
    msg: unknown,
    onWritten?: () => void,
  ) {
    const any = (msg as { response?: { typeUrl?: string } }).response;
    if (any?.typeUrl?.endsWith('.ControllerListNodesPageV1')) pagesSent++;
    return send.call(this, msg, onWritten);
  });
});

describe.each([
  // Registered through the core's real path (attachNode, NodeKnownCurrenciesV1Notify).
  { what: "the issue's fleet", nodes: 4000, pairsPerNode: 100, direct: false },
  {
    what: 'the documented maxima (CONTROLLER_MAX_NODES x CONTROLLER_MAX_PAIRS_PER_NODE)',
    nodes: MAX_NODES,
    pairsPerNode: MAX_PAIRS_PER_NODE,
    // Straight into the registry and the assignment (tests/support/fleet.ts says why).
    direct: true,
  },
])('$what: $nodes nodes x $pairsPerNode pairs', ({ nodes: count, pairsPerNode, direct }) => {
  let ctl: Awaited<ReturnType<typeof startTestController>>;
  let fleet: Fleet;
  /** The fleet in `controller nodes` order (by name; names are unique here). */
  let expected: FleetNode[];
  let baselineRssKb: number;
  let statusTarget: FleetNode;

  beforeAll(async () => {
    // The fleet sends no prices: without this, every streamer would go stale after 30 s
    // and its pairs move every second, which is not what these tests are about.
    ctl = await startTestController({
      limits: { staleStreamMs: 24 * 3600_000 },
      // The CLI shares two cores with two other jest processes here: a stall of over a
      // second (766 ms seen) would let the controller's 1 s keepalive timeout cut it, a
      // fact about the machine, not about the listing. Keepalive has its own tests
      // (node-keepalive, failover of a frozen node); this file measures listings.
      serverOptions: { 'grpc.keepalive_timeout_ms': 10_000 },
    });
    fleet = new Fleet(ctl.controller.core);
    const pool = pairPool(MAX_KNOWN_PAIRS);
    const started = Date.now();
    const all: FleetNode[] = [];
    for (let i = 0; i < count; i++) {
      const from = (i * pairsPerNode) % pool.length;
      const pairs = pool.slice(from, from + pairsPerNode);
      if (pairs.length < pairsPerNode) pairs.push(...pool.slice(0, pairsPerNode - pairs.length));
      // Names in another order than the UUIDs and than the order of joining.
      const n = {
        uuid: randomUUID(),
        name: `edge-${String((i * 7919) % count).padStart(5, '0')}`,
        pairs,
      };
      // The node `node status --node NAME` asks answers through the core: it joins the
      // real way (it is in the middle of the name order).
      if (direct && i !== count / 2) fleet.addDirect(n);
      else fleet.add(n);
      if (i === count / 2) statusTarget = n;
      all.push(n);
    }
    expected = [...all].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(ctl.controller.core.openStreamCount().nodes).toBe(count);
    console.log(`fleet of ${count} x ${pairsPerNode} registered in ${Date.now() - started} ms`);
    const base = await startCli(ctl.address, ['controller', 'version'], () => {}).exited;
    expect(base.code).toBe(0);
    baselineRssKb = base.peakRssKb;
  });

  afterAll(async () => {
    await ctl?.controller.stop();
  });

  test('on the wire: V2 pages of at most 1 MiB with the count; V1 refused, naming V2', async () => {
    const started = Date.now();
    const v2 = await rawListing(ctl.address, 'ControllerListNodesV2Req', {
      maxPageBytes: 0,
      withoutPairs: false,
    });
    const ms = Date.now() - started;
    expect(v2.error).toBeUndefined();
    expect(v2.other).toBeUndefined();
    expect(v2.largest).toBeLessThanOrEqual(1024 * 1024);
    expect(v2.nodes).toBe(count);
    expect(v2.last).toMatchObject({ last: true, totalNodes: count, page: v2.frames - 1 });
    console.log(
      `ControllerListNodesV2Req (${count} x ${pairsPerNode}): ${v2.frames} pages, ` +
        `${(v2.bytes / 1024 / 1024).toFixed(1)} MiB in all, largest frame ${v2.largest} bytes, ${ms} ms`,
    );
    // An old CLI (or grpcurl) asking for the whole list gets a clear error, not a dead stream.
    const v1 = await rawListing(ctl.address, 'ControllerListNodesV1Req', {});
    expect(v1.other?.name).toBe('CliErrorV1Notify');
    const err = v1.other!.message;
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.message).toContain(`the list of ${count} nodes is`);
    expect(err.message).toContain('ask with ControllerListNodesV2Req');
    console.log(`ControllerListNodesV1Req (${count} x ${pairsPerNode}): ${err.message}`);
  });

  test('controller nodes: every node, in name order, and the count', async () => {
    let header = '';
    let rows = 0;
    let outOfOrder = 0;
    let pairsChecked = false;
    const run = startCli(ctl.address, ['controller', 'nodes'], (line) => {
      if (header === '') {
        header = line;
        return;
      }
      const want = expected[rows];
      if (!want || !line.startsWith(`${want.uuid}  ${want.name} `)) outOfOrder++;
      else if (!pairsChecked) {
        expect(line).toContain(want.pairs.join(','));
        pairsChecked = true;
      }
      rows++;
    });
    const r = await run.exited;
    expect(r.stderr).toBe(`${count} node(s) connected\n`);
    expect(r.code).toBe(0);
    expect(header).toMatch(/^UUID +NAME +KNOWN PAIRS +STREAMING +AGE$/);
    expect(rows).toBe(count);
    expect(outOfOrder).toBe(0);
    console.log(
      `controller nodes (${count} x ${pairsPerNode}): CLI peak RSS ${mb(r.peakRssKb)}, ` +
        `${mb(r.peakRssKb - baselineRssKb)} over \`controller version\`, ` +
        `longest event-loop stall ${r.loopMaxMs} ms (longest GC pause ${r.gcMaxMs} ms)`,
    );
    expect(r.peakRssKb).toBeLessThan(CLI_RSS_BOUND_KB);
  });

  test('--json controller nodes: one whole JSON document with every node', async () => {
    // The document is read item by item (it is too big for one string at the maxima).
    let first = '';
    let last = '';
    let item: string[] | undefined;
    const items: { nodeUuid: string; name: string; known: number; connectedAt: unknown }[] = [];
    let prefix = true;
    const run = startCli(ctl.address, ['--json', 'controller', 'nodes'], (line) => {
      if (prefix) {
        first = line;
        prefix = false;
        return;
      }
      last = line;
      if (line === '  {') item = [line];
      else if (item) {
        item.push(line);
        if (line === '  }' || line === '  },') {
          const text = item.join('\n').replace(/,$/, '');
          const o = JSON.parse(text) as {
            nodeUuid: string;
            name: string;
            knownCurrencyPairs: string[];
            connectedAt: unknown;
          };
          items.push({
            nodeUuid: o.nodeUuid,
            name: o.name,
            known: o.knownCurrencyPairs.length,
            connectedAt: o.connectedAt,
          });
          item = undefined;
        }
      }
    });
    const r = await run.exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(first).toBe('[');
    expect(last).toBe(']');
    expect(items).toHaveLength(count);
    expect(
      items.every((x, i) => x.nodeUuid === expected[i]!.uuid && x.name === expected[i]!.name),
    ).toBe(true);
    expect(items.every((x) => x.known === pairsPerNode && typeof x.connectedAt === 'string')).toBe(
      true,
    );
    console.log(
      `--json controller nodes (${count} x ${pairsPerNode}): CLI peak RSS ${mb(r.peakRssKb)}, ` +
        `${mb(r.peakRssKb - baselineRssKb)} over \`controller version\`, ` +
        `longest event-loop stall ${r.loopMaxMs} ms (longest GC pause ${r.gcMaxMs} ms)`,
    );
    expect(r.peakRssKb).toBeLessThan(CLI_RSS_BOUND_KB);
  });

  test('a reader that does not read holds the listing back; then it all arrives', async () => {
    let items = 0;
    const before = pagesSent;
    const run = startCli(
      ctl.address,
      ['--json', 'controller', 'nodes'],
      (line) => {
        if (line === '  {') items++;
      },
      { unread: true },
    );
    // Nothing is read for a while: the pipe, the CLI's stdout and the HTTP/2 window fill.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const sentWhilePaused = pagesSent - before;
    const rss = rssKb(run.child.pid!);
    run.read();
    const r = await run.exited;
    expect(r.code).toBe(0);
    expect(items).toBe(count);
    const total = pagesSent - before;
    console.log(
      `--json controller nodes read late (${count} x ${pairsPerNode}): ${sentWhilePaused} of ` +
        `${total} pages sent while stdout was not read, CLI RSS then ${mb(rss)} ` +
        `(${mb(rss - baselineRssKb)} over \`controller version\`'s peak)`,
    );
    // However big the listing: what the transport and the CLI buffer (the HTTP/2 window of
    // 4 MiB, the gRPC stream's 16 messages, one page being printed), no more.
    expect(sentWhilePaused).toBeLessThanOrEqual(24);
  });

  test('node status --node NAME finds the one node by name', async () => {
    const target = statusTarget;
    expect(expected.indexOf(target)).toBe(count / 2);
    let out = '';
    const before = pagesSent;
    const started = Date.now();
    const run = startCli(ctl.address, ['node', 'status', '--node', target.name], (line) => {
      out += line + '\n';
    });
    const r = await run.exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(out).toContain(target.uuid);
    // The name is looked up in a listing without pairs (ControllerListNodesV2Req
    // without_pairs): an entry is a UUID, a name, a peer and a time, well under 256 bytes,
    // whatever the node's pairs. With its pairs the maxima's listing is 213 pages.
    const pages = pagesSent - before;
    expect(pages).toBeLessThanOrEqual(Math.ceil((count * 256) / (1024 * 1024 - 4096)) + 1);
    console.log(
      `node status --node NAME (${count} x ${pairsPerNode}): ${pages} page(s) of the node ` +
        `list, ${Date.now() - started} ms, CLI peak RSS ${mb(r.peakRssKb)}`,
    );
    expect(r.peakRssKb).toBeLessThan(CLI_RSS_BOUND_KB);
  });

  test('controller nodes -w: the table, then a node that goes and one that comes', async () => {
    let lines = 0;
    let gone = false;
    let added = false;
    const leaving = expected[1]!;
    const joining: FleetNode = {
      uuid: randomUUID(),
      name: 'edge-joined',
      pairs: expected[0]!.pairs,
    };
    const run = startCli(ctl.address, ['controller', 'nodes', '-w', '--interval', '1'], (line) => {
      lines++;
      if (line.includes(`GONE  ${leaving.uuid}  ${leaving.name}`)) gone = true;
      if (line.includes(`ADDED  ${joining.uuid}  ${joining.name}`)) added = true;
    });
    const exited = run.exited.then((r) => r);
    let early: unknown;
    void exited.then((r) => (early = r));
    await waitFor('the whole first table', () => early ?? lines === count + 1, {
      timeoutMs: 10 * 60_000,
      intervalMs: 100,
    });
    expect(early).toBeUndefined();
    fleet.remove(leaving.uuid);
    fleet.add(joining);
    await waitFor('GONE and ADDED lines', () => early ?? (gone && added), {
      timeoutMs: 10 * 60_000,
      intervalMs: 100,
    });
    expect(early).toBeUndefined();
    run.child.kill('SIGINT');
    const r = await exited;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    fleet.remove(joining.uuid);
    fleet.add(leaving);
    console.log(
      `controller nodes -w (${count} x ${pairsPerNode}): CLI peak RSS ${mb(r.peakRssKb)}, ` +
        `${mb(r.peakRssKb - baselineRssKb)} over \`controller version\`, ` +
        `longest event-loop stall ${r.loopMaxMs} ms (longest GC pause ${r.gcMaxMs} ms)`,
    );
    expect(r.peakRssKb).toBeLessThan(CLI_RSS_BOUND_KB);
  });
});
