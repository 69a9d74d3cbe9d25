/** The README's first command: the local demo starts everything, shows a failover, and exits with --once. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../support/ports';

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
