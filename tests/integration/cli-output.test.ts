/**
 * The built CLI as a child process whose stdout is a pipe the test reads late: every
 * command's output must arrive whole (more than the 64 KiB a pipe buffers), and a reader
 * that goes away must turn into exit 1 with a message, not a crash or a silent exit 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { pack, unpack } from '../../services/shared/any';
import { FakeController } from '../support/fake-controller';
import { programPath } from '../support/processes';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

const PAIRS = Array.from({ length: 3000 }, (_, i) => `P${i}_USD`);
const NODES = Array.from({ length: 3 }, () => randomUUID());

let fake: FakeController;
const children: ChildProcess[] = [];

beforeAll(async () => {
  fake = await FakeController.start(0, {
    cli: (frame, reply) => {
      const cmd = unpack(frame.command);
      // A controller that lists nodes in one reply only (no ControllerListNodesV2Req).
      if (cmd.ok && cmd.value.name === 'ControllerListNodesV2Req')
        reply({
          streamId: frame.streamId,
          traceContext: {},
          response: pack('UnknownCommandV1Notify', { command: frame.command }),
        });
      if (cmd.ok && cmd.value.name === 'ControllerListNodesV1Req')
        reply({
          streamId: frame.streamId,
          traceContext: {},
          response: pack('ControllerListNodesV1Reply', { nodeUuids: [], nodes: [] }),
        });
      if (cmd.ok && cmd.value.name === 'ControllerWatchPricesV2Req') {
        reply({
          streamId: frame.streamId,
          traceContext: {},
          response: pack('ControllerWatchPricesV1Reply', { currencyPairs: [] }),
        });
        // Far more than a pipe buffers, at once: the CLI is still writing when its reader goes.
        reply({
          streamId: frame.streamId,
          traceContext: {},
          response: pack('ControllerPriceUpdatesV1Notify', {
            prices: PAIRS.map((p, i) => ({
              currencyPair: p,
              price: 1 + i,
              priceUpdatedAt: { seconds: 1_700_000_000, nanos: 0 },
              nodeUuid: NODES[0]!,
            })),
          }),
        });
      }
      if (cmd.ok && cmd.value.name === 'ControllerStreamsV1Req')
        reply({
          streamId: frame.streamId,
          traceContext: {},
          response: pack('ControllerStreamsV1Reply', {
            pairs: PAIRS.map((p) => ({
              currencyPair: p,
              nodeUuids: NODES,
              capableNodes: 3,
              desiredStreams: 3,
            })),
          }),
        });
    },
  });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await fake.stop();
});

/** Starts the CLI with its stdout paused: nothing is read until the test says so. */
function startCli(args: string[]) {
  const child = spawn(process.execPath, [programPath('cli'), ...args], {
    env: { PATH: process.env.PATH ?? '', CLI_CONTROLLER_ADDR: fake.address },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout!.pause();
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  );
  return { child, exited, stderr: () => err };
}

/** Reads a stream to its end, one chunk per turn of the event loop (a slow consumer). */
async function readSlowly(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return Buffer.concat(chunks).toString('utf8');
}

test('--json controller streams arrives whole through a pipe read late and slowly', async () => {
  const closedBefore = fake.cliStreamsClosed;
  const cli = startCli(['--json', 'controller', 'streams']);
  // The command is over (it closed its stream) before the test reads a single byte, so
  // everything beyond what the pipe buffers must still be waiting in the CLI.
  await waitFor('the CLI to finish its command', () => fake.cliStreamsClosed > closedBefore);
  const out = await readSlowly(cli.child.stdout!);
  expect(await cli.exited).toBe(0);
  expect(Buffer.byteLength(out)).toBeGreaterThan(64 * 1024);
  const parsed = JSON.parse(out) as { currencyPair: string; nodeUuids: string[] }[];
  expect(parsed.map((p) => p.currencyPair)).toEqual(PAIRS);
  expect(parsed[PAIRS.length - 1]!.nodeUuids).toEqual(NODES);
});

test('the human table arrives whole too', async () => {
  const closedBefore = fake.cliStreamsClosed;
  const cli = startCli(['controller', 'streams']);
  await waitFor('the CLI to finish its command', () => fake.cliStreamsClosed > closedBefore);
  const out = await readSlowly(cli.child.stdout!);
  expect(await cli.exited).toBe(0);
  const lines = out.trimEnd().split('\n');
  expect(lines).toHaveLength(PAIRS.length + 1);
  expect(lines[lines.length - 1]).toContain(PAIRS[PAIRS.length - 1]);
});

test('a reader that goes away early makes the CLI exit 1 with a message, not a crash', async () => {
  const closedBefore = fake.cliStreamsClosed;
  const cli = startCli(['--json', 'controller', 'streams']);
  await waitFor('the CLI to finish its command', () => fake.cliStreamsClosed > closedBefore);
  // Read one chunk, then close our end of the pipe, as `| head -c 100` would.
  await new Promise<void>((resolve) => {
    cli.child.stdout!.once('data', () => resolve());
    cli.child.stdout!.resume();
  });
  cli.child.stdout!.destroy();
  expect(await cli.exited).toBe(1);
  expect(cli.stderr()).toMatch(/currency-cli: could not write the output/);
  expect(cli.stderr()).not.toMatch(/\n\s+at /); // no stack trace
});

test('watch whose reader goes away ends by itself with exit 1 and a message', async () => {
  const cli = startCli(['--json', 'watch']);
  await new Promise<void>((resolve) => {
    cli.child.stdout!.once('data', () => resolve());
    cli.child.stdout!.resume();
  });
  cli.child.stdout!.destroy();
  expect(await cli.exited).toBe(1);
  expect(cli.stderr()).toMatch(/currency-cli: could not write the output/);
  expect(cli.stderr()).not.toMatch(/\n\s+at /);
});
