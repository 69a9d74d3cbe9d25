/**
 * `--help` and `--version` on every program print and exit 0 without opening a port or
 * reading the configuration; an unknown flag exits 2 naming it. The proof that nothing
 * binds: the ports the program is configured with are held by the test, so a program that
 * tried to listen would fail; and the controller address a node would dial records every
 * connection.
 */
import { type Server, type Socket, createServer } from 'node:net';
import { loadControllerConfig } from '../../services/controller/config';
import { controllerVariables } from '../../services/controller/help';
import { loadLeaderElectionConfig } from '../../services/controller/leader/config';
import { loadNodeConfig } from '../../services/node/config';
import { nodeVariables } from '../../services/node/help';
import type { Env } from '../../services/shared/config';
import { appVersion } from '../../services/shared/version';
import { runProgram } from '../support/processes';

jest.setTimeout(30_000);

const servers: Server[] = [];
let connections = 0;

/** A port on loopback the test holds (and counts connections to). */
async function holdPort(): Promise<number> {
  const server = createServer((s: Socket) => {
    connections++;
    s.destroy();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

let env: Record<string, string>;
beforeAll(async () => {
  const [grpc, metrics, controller] = [await holdPort(), await holdPort(), await holdPort()];
  env = {
    CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpc}`,
    METRICS_ADDR: `127.0.0.1:${metrics}`,
    NODE_CONTROLLER_ADDR: `127.0.0.1:${controller}`,
  };
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

test.each(['controller', 'node', 'cli'] as const)(
  'currency-%s --version prints the version and exits 0 without opening a port',
  async (role) => {
    const r = await runProgram(role, ['--version'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(appVersion());
    expect(connections).toBe(0);
  },
);

test.each([
  ['controller', ['CONTROLLER_LISTEN_ADDR', 'CONTROLLER_STREAMS_PER_PAIR', 'METRICS_ADDR']],
  ['node', ['NODE_CURRENCY_PAIRS', 'NODE_CONTROLLER_ADDR', 'NODE_UUID', 'METRICS_ADDR']],
] as const)(
  'currency-%s --help lists its variables with their defaults and exits 0 without opening a port',
  async (role, names) => {
    for (const flag of ['--help', '-h']) {
      const r = await runProgram(role, [flag], env);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: currency-${role}`);
      for (const n of names) expect(r.stdout).toContain(n);
      expect(r.stdout).toContain('(default: 0.0.0.0:9464)');
      expect(connections).toBe(0);
    }
  },
);

test('the controller --help shows the defaults its config applies', async () => {
  const r = await runProgram('controller', ['--help'], env);
  expect(r.stdout).toMatch(/CONTROLLER_LISTEN_ADDR\s.*\(default: 0\.0\.0\.0:5160\)/);
  expect(r.stdout).toMatch(/CONTROLLER_STREAMS_PER_PAIR\s.*\(default: 1\)/);
});

test('the node --help works without the required NODE_CURRENCY_PAIRS (no config is read)', async () => {
  const r = await runProgram('node', ['--help'], {});
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/NODE_CONTROLLER_ADDR\s.*\(default: localhost:5160\)/);
  expect(r.stdout).toMatch(/NODE_PRICE_INTERVAL_MS\s.*\(default: 2000-10000\)/);
});

test.each([
  ['controller', ['--bogus'], '--bogus'],
  ['node', ['--listen', 'x'], '--listen'],
  ['controller', ['serve'], 'serve'],
] as const)('currency-%s %p exits 2 naming it, without starting', async (role, args, named) => {
  const r = await runProgram(role, [...args], { ...env, NODE_CURRENCY_PAIRS: 'USD_HKD' });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(named);
  expect(r.stdout).toBe('');
  expect(connections).toBe(0);
});

/** Every variable a config loader reads, found by watching it read an environment. */
function variablesRead(load: (env: Env) => unknown, base: Record<string, string>): string[] {
  const read = new Set<string>();
  const env = new Proxy(base, {
    get: (target, key) => {
      if (typeof key === 'string') read.add(key);
      return target[key as string];
    },
  });
  load(env);
  return [...read];
}

test.each([
  [
    'controller',
    () => [
      ...variablesRead(loadControllerConfig, {}),
      ...variablesRead((e) => loadLeaderElectionConfig(e, { podNamespace: () => undefined }), {}),
    ],
    controllerVariables,
  ],
  ['node', () => variablesRead(loadNodeConfig, { NODE_CURRENCY_PAIRS: 'USD_HKD' }), nodeVariables],
] as const)('the %s --help lists every variable its config reads', (_role, read, listed) => {
  const names = new Set(listed().map((v) => v.name));
  expect(read().filter((v) => !names.has(v))).toEqual([]);
});
