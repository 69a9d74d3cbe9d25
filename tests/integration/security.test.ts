/**
 * TLS, mutual TLS, certificate reload and peer authentication on the gRPC port, with
 * throwaway certificates made by openssl. The controller runs in-process (so its metrics,
 * logs and served certificate can be read); the CLI is the built program, so exit codes
 * and messages are what a user sees; nodes run in-process or as the built program.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { Registry } from 'prom-client';
import type { SecurityConfig } from '../../services/controller/security';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { createLogger, silentLogger } from '../../services/shared/logger';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../support/certs';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { killAll, runProgram, startProgram } from '../support/processes';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(60_000);

const NODE_TOKEN = 'node-secret-0123456789abcdef';
const CLI_TOKEN = 'cli-secret-0123456789abcdef';
const FAILURES = 'currency_controller_auth_failures_total';

let certs: CertDir;
let ca: TestCa;
let rogueCa: TestCa;
let serverA: CertFiles;
let serverB: CertFiles;
let nodeCert: CertFiles;
let cliCert: CertFiles;
let rogueCert: CertFiles;
let leaks: LeakWatch;

type TestController = Awaited<ReturnType<typeof startTestController>>;
let ctl: TestController | undefined;
const nodes: RunningNode[] = [];
let logLines: Record<string, unknown>[] = [];

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('test-ca');
  rogueCa = certs.newCa('rogue-ca');
  serverA = ca.issue('controller-a', { dns: ['controller.test'] });
  serverB = ca.issue('controller-b', { dns: ['controller.test'] });
  nodeCert = ca.issue('node-1', { ou: 'currency-node' });
  cliCert = ca.issue('ops-cli', { ou: 'currency-cli' });
  rogueCert = rogueCa.issue('intruder', { ou: 'currency-cli' });
  writeFileSync(certs.path('node.tokens'), `# nodes\n${NODE_TOKEN}\n`);
  writeFileSync(certs.path('cli.tokens'), `${CLI_TOKEN}\n`);
  leaks = new LeakWatch().start();
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await killAll();
  await ctl?.controller.stop();
  ctl = undefined;
});

afterAll(async () => {
  certs.remove();
  await leaks.expectNoLeaks();
});

async function controller(security: Partial<SecurityConfig>): Promise<TestController> {
  logLines = [];
  const logger = createLogger({
    service: 'currency-controller',
    level: 'info',
    destination: {
      write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>),
    },
  });
  ctl = await startTestController({
    security: { credentialsReloadMs: 100, ...security },
    logger,
  });
  return ctl;
}

const tls = (server = serverA) => ({ certFile: server.cert, keyFile: server.key });
const mtls = (server = serverA) => ({ ...tls(server), clientCaFile: ca.cert });
const tokens = (opts: { clientCertRoles?: boolean } = {}) => ({
  node: { tokens: [], file: certs.path('node.tokens') },
  cli: { tokens: [], file: certs.path('cli.tokens') },
  clientCertRoles: opts.clientCertRoles ?? false,
});

function cli(env: Record<string, string>, ...args: string[]) {
  return runProgram('cli', ['--controller', ctl!.address, '--timeout', '3', ...args], env);
}

/** For runs expected to end with exit 3: no need to wait the full timeout. */
function cliQuick(env: Record<string, string>, ...args: string[]) {
  return runProgram('cli', ['--controller', ctl!.address, '--timeout', '1', ...args], env);
}

function nodeConfig(over: Partial<NodeConfig>): NodeConfig {
  return testNodeConfig({
    controllerAddrs: loopback(ctl!.controller.grpcPort),
    name: 'secure-node',
    reconnectMaxMs: 200,
    ...over,
  });
}

// In-process nodes verify the name localhost (also in the certificate): dialling the IP
// makes Node warn DEP0123 here, where the programs' filter for it does not reach.
async function inProcessNode(over: Partial<NodeConfig>): Promise<RunningNode> {
  const n = await startNode(nodeConfig(over), {
    logger: silentLogger(),
    registry: new Registry(),
    defaultMetrics: false,
    serveHttp: false,
  });
  nodes.push(n);
  return n;
}

const failures = (service: string, reason: string) => ctl!.metric(FAILURES, { service, reason });

/** The certificate a fresh TLS connection (ALPN h2, like gRPC) is served, by serial. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, ALPNProtocols: ['h2'], ca: [readFileSync(ca.cert)] },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial);
      },
    );
    socket.setTimeout(3000, () => socket.destroy(new Error('TLS handshake timed out')));
    socket.once('error', reject);
  });
}

const caEnv = () => ({ CLI_TLS_CA_FILE: ca.cert });

describe('TLS', () => {
  test('a node and the CLI, both built programs, work end to end over TLS with tokens', async () => {
    const c = await controller({ tls: tls(), auth: tokens() });
    const uuid = randomUUID();
    const node = startProgram('node', {
      NODE_CONTROLLER_ADDR: c.address,
      NODE_CURRENCY_PAIRS: 'USD_HKD,BTC_USD',
      NODE_UUID: uuid,
      METRICS_ADDR: '127.0.0.1:0',
      NODE_TLS_CA_FILE: ca.cert,
      NODE_TOKEN_FILE: certs.path('node.tokens'),
    });
    await waitFor('the node registered over TLS', () =>
      c.controller.core.connectedNodes().some((n) => n.uuid === uuid),
    );
    const r = await cli({ ...caEnv(), CLI_TOKEN: CLI_TOKEN }, '--json', 'controller', 'nodes');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ nodeUuid: uuid })]);
    const status = await cli(
      { CLI_TOKEN: CLI_TOKEN },
      '--tls-ca',
      ca.cert,
      'node',
      'status',
      '--node-uuid',
      uuid,
    );
    expect(status.code).toBe(0);
    expect(node.logLines().some((l) => l.msg === 'registered with controller')).toBe(true);
  });

  test('the controller certificate can be checked against another name (NODE_TLS_SERVER_NAME, --tls-server-name)', async () => {
    const c = await controller({ tls: tls() });
    const node = await inProcessNode({ tls: { caFile: ca.cert, serverName: 'controller.test' } });
    await waitFor('node registered', () => node.isConnected());
    const ok = await cli(caEnv(), '--tls-server-name', 'controller.test', 'controller', 'version');
    expect(ok.code).toBe(0);
    // A name the certificate does not carry fails verification: the controller is never reached.
    const wrong = await cliQuick(
      caEnv(),
      '--tls-server-name',
      'elsewhere.test',
      'controller',
      'version',
    );
    expect(wrong.code).toBe(3);
    expect(c.controller.core.connectedNodes()).toHaveLength(1);
  });

  test('a plaintext CLI cannot talk to a TLS controller: exit 3, could not reach it', async () => {
    await controller({ tls: tls() });
    const r = await cliQuick({}, 'controller', 'version');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('could not reach the controller');
  });

  test('a CLI that does not trust the controller certificate cannot connect (exit 3)', async () => {
    await controller({ tls: tls() });
    const r = await cliQuick({ CLI_TLS_CA_FILE: rogueCa.cert }, 'controller', 'version');
    expect(r.code).toBe(3);
  });

  test('a new connection is served the new certificate after the files are replaced, without a restart', async () => {
    copyFileSync(serverA.cert, certs.path('live.pem'));
    copyFileSync(serverA.key, certs.path('live.key'));
    const c = await controller({
      tls: { certFile: certs.path('live.pem'), keyFile: certs.path('live.key') },
    });
    const port = c.controller.grpcPort;
    expect(await servedSerial(port)).toBe(serverA.serial);
    const node = await inProcessNode({ tls: { caFile: ca.cert, serverName: 'localhost' } });
    await waitFor('node registered', () => node.isConnected());

    // Key first, then certificate: the half-rotated moment must not break the port.
    copyFileSync(serverB.key, certs.path('live.key'));
    copyFileSync(serverB.cert, certs.path('live.pem'));
    await waitFor('the new certificate served', async () =>
      (await servedSerial(port)) === serverB.serial ? true : undefined,
    );
    const r = await cli(caEnv(), 'controller', 'version');
    expect(r.code).toBe(0);
    // The node's stream, opened before the rotation, carried on.
    expect(node.isConnected()).toBe(true);
    expect(logLines.some((l) => l.msg === 'TLS certificate reloaded; new connections get it')).toBe(
      true,
    );
  });
});

describe('mutual TLS', () => {
  test('clients with a certificate from the CA get in; one without a certificate does not (exit 3)', async () => {
    await controller({ tls: mtls() });
    const node = await inProcessNode({
      tls: {
        caFile: ca.cert,
        certFile: nodeCert.cert,
        keyFile: nodeCert.key,
        serverName: 'localhost',
      },
    });
    await waitFor('node registered with its certificate', () => node.isConnected());
    const ok = await cli(
      { ...caEnv(), CLI_TLS_CERT_FILE: cliCert.cert, CLI_TLS_KEY_FILE: cliCert.key },
      'controller',
      'nodes',
    );
    expect(ok.code).toBe(0);
    const none = await cliQuick(caEnv(), 'controller', 'nodes');
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('over TLS (check the CA');
  });

  test('a client certificate from another CA is refused (exit 3)', async () => {
    await controller({ tls: mtls() });
    const r = await cliQuick(
      { ...caEnv(), CLI_TLS_CERT_FILE: rogueCert.cert, CLI_TLS_KEY_FILE: rogueCert.key },
      'controller',
      'nodes',
    );
    expect(r.code).toBe(3);
  });

  test('with certificate roles, a node certificate cannot run CLI commands and a CLI certificate can', async () => {
    await controller({ tls: mtls(), auth: { ...tokens(), clientCertRoles: true } });
    const asNode = await cli(
      { ...caEnv(), CLI_TLS_CERT_FILE: nodeCert.cert, CLI_TLS_KEY_FILE: nodeCert.key },
      'controller',
      'nodes',
    );
    expect(asNode.code).toBe(1);
    expect(asNode.stderr).toContain('PERMISSION_DENIED');
    const asCli = await cli(
      { ...caEnv(), CLI_TLS_CERT_FILE: cliCert.cert, CLI_TLS_KEY_FILE: cliCert.key },
      'controller',
      'nodes',
    );
    expect(asCli.code).toBe(0);
    const node = await inProcessNode({
      tls: {
        caFile: ca.cert,
        certFile: nodeCert.cert,
        keyFile: nodeCert.key,
        serverName: 'localhost',
      },
    });
    await waitFor('node registered by its certificate alone', () => node.isConnected());
    expect(await failures('cli', 'wrong_role')).toBe(1);
  });
});

describe('tokens', () => {
  test('every failure series exists at 0 before anything fails', async () => {
    await controller({});
    for (const service of ['node', 'cli'])
      for (const reason of ['missing', 'invalid', 'wrong_role'])
        expect(await failures(service, reason)).toBe(0);
  });

  test('a node token cannot run CLI commands: PERMISSION_DENIED, exit 1, logged and counted', async () => {
    await controller({ auth: tokens() });
    const r = await cli({ CLI_TOKEN: NODE_TOKEN }, 'controller', 'nodes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the controller refused this CLI's credentials (PERMISSION_DENIED)");
    expect(r.stderr).toContain('a node credential cannot open the CLI service');
    expect(await failures('cli', 'wrong_role')).toBe(1);
    const logged = logLines.find((l) => l.msg === 'stream refused');
    expect(logged).toMatchObject({ peer_kind: 'cli', reason: 'wrong_role', level: 'warn' });
    expect(JSON.stringify(logLines)).not.toContain(NODE_TOKEN);
  });

  test('a CLI token cannot register a node; the node keeps retrying and never registers', async () => {
    const c = await controller({ auth: tokens() });
    const node = await inProcessNode({ token: { token: CLI_TOKEN } });
    await waitFor('three refusals', async () => ((await failures('node', 'wrong_role')) ?? 0) >= 3);
    expect(node.isConnected()).toBe(false);
    expect(c.controller.core.connectedNodes()).toHaveLength(0);
  });

  test('a wrong or missing token is UNAUTHENTICATED (exit 1) and counted by reason', async () => {
    await controller({ auth: tokens() });
    const wrong = await cli({ CLI_TOKEN: 'not-the-right-token-0000' }, 'controller', 'version');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('UNAUTHENTICATED');
    const missing = await cli({}, 'watch');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('UNAUTHENTICATED');
    expect(await failures('cli', 'invalid')).toBe(1);
    expect(await failures('cli', 'missing')).toBe(1);
    const ok = await cli({ CLI_TOKEN }, 'controller', 'version');
    expect(ok.code).toBe(0);
  });

  test('a tokens file edited while the controller runs takes effect; a node refused meanwhile gets in', async () => {
    writeFileSync(certs.path('rotating.tokens'), `${NODE_TOKEN}\n`);
    await controller({
      auth: { ...tokens(), node: { tokens: [], file: certs.path('rotating.tokens') } },
    });
    const rotated = 'node-rotated-0123456789abcdef';
    writeFileSync(certs.path('node-own.token'), `${rotated}\n`);
    const node = await inProcessNode({ token: { file: certs.path('node-own.token') } });
    await waitFor('the new token refused', async () =>
      ((await failures('node', 'invalid')) ?? 0) >= 1 ? true : undefined,
    );
    writeFileSync(certs.path('rotating.tokens'), `${NODE_TOKEN}\n${rotated}\n`);
    await waitFor('the node registered with the rotated token', () => node.isConnected());
    expect(logLines.some((l) => l.msg === 'tokens file reloaded' && l.role === 'node')).toBe(true);
  });

  test('TLS without tokens, and tokens without TLS, are each warned about at start', async () => {
    await controller({ tls: tls() });
    expect(logLines.find((l) => l.level === 'warn')?.msg).toMatch(
      /TLS is on but peer authentication is off/,
    );
    await ctl!.controller.stop();
    await controller({ auth: tokens() });
    expect(logLines.find((l) => l.level === 'warn')?.msg).toMatch(/TLS is off/);
  });
});

describe('configuration', () => {
  test.each<
    [string, 'controller' | 'node' | 'cli', () => Record<string, string>, string[], string]
  >([
    [
      'a controller certificate file that does not exist',
      'controller',
      () => ({
        CONTROLLER_TLS_CERT_FILE: '/nonexistent.pem',
        CONTROLLER_TLS_KEY_FILE: serverA.key,
      }),
      [],
      'CONTROLLER_TLS_CERT_FILE',
    ],
    [
      'a controller key that is not the certificate key',
      'controller',
      () => ({ CONTROLLER_TLS_CERT_FILE: serverA.cert, CONTROLLER_TLS_KEY_FILE: serverB.key }),
      [],
      'CONTROLLER_TLS_KEY_FILE',
    ],
    [
      'node tokens without CLI tokens',
      'controller',
      () => ({ CONTROLLER_NODE_TOKEN: NODE_TOKEN }),
      [],
      'CONTROLLER_CLI_TOKENS_FILE',
    ],
    [
      'a node token that is too short',
      'node',
      () => ({ NODE_CURRENCY_PAIRS: 'USD_HKD', NODE_TOKEN: 'short' }),
      [],
      'NODE_TOKEN',
    ],
    [
      'a node client certificate without a CA',
      'node',
      () => ({
        NODE_CURRENCY_PAIRS: 'USD_HKD',
        NODE_TLS_CERT_FILE: nodeCert.cert,
        NODE_TLS_KEY_FILE: nodeCert.key,
      }),
      [],
      'NODE_TLS_CA_FILE',
    ],
    [
      'a CLI --tls-ca that does not exist',
      'cli',
      () => ({}),
      ['--tls-ca', '/nonexistent.pem'],
      '--tls-ca',
    ],
    [
      'a CLI_TOKEN_FILE that does not exist',
      'cli',
      () => ({ CLI_TOKEN_FILE: '/nonexistent/token' }),
      [],
      'CLI_TOKEN_FILE',
    ],
  ])('%s exits 2 naming it (%s)', async (_what, role, env, args, named) => {
    const r = await runProgram(
      role,
      role === 'cli' ? [...args, 'controller', 'nodes'] : args,
      env(),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(named);
  });
});
