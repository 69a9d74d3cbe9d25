/** The README's first command: the local demo starts everything, shows a failover, and exits with --once. */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../support/ports';
import { killAll, startProgram } from '../support/processes';
import { waitFor } from '../support/wait';

jest.setTimeout(90_000);

test('the demo starts a controller and nodes, shows the CLI and a failover of USD_HKD, and exits 0', async () => {
  const grpc = await freePort();
  const metrics = await freePort();
  const child = spawn(
    process.execPath,
    [join(__dirname, '..', '..', 'dist', 'services', 'demo', 'main.js'), '--once'],
    {
      env: { ...process.env, DEMO_GRPC_PORT: String(grpc), DEMO_METRICS_PORT: String(metrics) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  expect(out).toContain('4 node(s) connected');
  expect(out).toMatch(/USD_HKD moved from \S+ to \S+; seen by the CLI \d+ ms after the kill/);
  expect(code).toBe(0);
});

test('the demo with --upstream fails the market for the USD_HKD streamer only: the pair moves, the node stays connected, and exits 0', async () => {
  const grpc = await freePort();
  const metrics = await freePort();
  const child = spawn(
    process.execPath,
    [join(__dirname, '..', '..', 'dist', 'services', 'demo', 'main.js'), '--upstream'],
    {
      env: { ...process.env, DEMO_GRPC_PORT: String(grpc), DEMO_METRICS_PORT: String(metrics) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 80_000);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  expect(out).toMatch(/starting a market on http:\/\/127\.0\.0\.1:\d+/);
  expect(out).toContain('4 node(s) connected');
  const moved =
    /USD_HKD moved from (\S+) to (\S+); seen by the CLI \d+ ms after the market failed for (\S+) /.exec(
      out,
    );
  expect(moved).not.toBeNull();
  const [, from, to, failed] = moved!;
  expect(failed).toBe(from);
  expect(to).not.toBe(from);
  // The node whose market failed is still connected, and USD_HKD prices come from the new one.
  expect(out).toContain(`${from} still connected, connected since `);
  expect(out).toMatch(new RegExp(`USD_HKD price [0-9.]+ at \\S+ from ${to}\\n`));
  expect(out).toContain('demo done');
  expect(code).toBe(0);
});

describe('a port the demo needs is taken: it fails at once, naming the port and the variable', () => {
  afterEach(() => killAll());

  async function runDemo(env: Record<string, string>) {
    const child = spawn(
      process.execPath,
      [join(__dirname, '..', '..', 'dist', 'services', 'demo', 'main.js'), '--once'],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const t0 = Date.now();
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    clearTimeout(timer);
    return { code, out, ms: Date.now() - t0 };
  }

  test('the gRPC port, held by another controller (its nodes would join that one)', async () => {
    const grpc = await freePort();
    const other = startProgram('controller', {
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpc}`,
      METRICS_ADDR: '127.0.0.1:0',
    });
    await waitFor('the other controller to serve', () =>
      other.logLines().some((l) => l.msg === 'controller serving'),
    );
    const r = await runDemo({
      DEMO_GRPC_PORT: String(grpc),
      DEMO_METRICS_PORT: String(await freePort()),
    });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain(`127.0.0.1:${grpc}`);
    expect(r.out).toContain('DEMO_GRPC_PORT');
    expect(r.out).not.toContain('node(s) connected');
    expect(r.ms).toBeLessThan(10_000);
  });

  test('the metrics port', async () => {
    const metrics = await freePort();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(metrics, '127.0.0.1', resolve));
    try {
      const r = await runDemo({
        DEMO_GRPC_PORT: String(await freePort()),
        DEMO_METRICS_PORT: String(metrics),
      });
      expect(r.code).not.toBe(0);
      expect(r.out).toContain(`127.0.0.1:${metrics}`);
      expect(r.out).toContain('DEMO_METRICS_PORT');
      expect(r.ms).toBeLessThan(10_000);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
