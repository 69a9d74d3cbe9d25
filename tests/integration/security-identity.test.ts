/**
 * Node identities bound to credentials (issue 16): a hostile peer holding one valid node
 * credential tries to register with another node's UUID. The controller runs in-process
 * (its metrics and core can be read), the victim is an in-process node (its stream can be
 * watched), the attacker is the built node program (what it logs is what an operator sees).
 * Also CONTROLLER_AUTH_REQUIRE=both against real TLS handshakes.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import type { SecurityConfig } from '../../services/controller/security';
import { type NodeConfig } from '../../services/node/config';
import { type RunningNode, startNode } from '../../services/node/node';
import { silentLogger } from '../../services/shared/logger';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../support/certs';
import { startTestController } from '../support/in-process';
import { type Program, killAll, runProgram, startProgram } from '../support/processes';
import { waitFor } from '../support/wait';
import { testNodeConfig } from '../support/node-config';

jest.setTimeout(60_000);

const TOKEN_A = 'node-a-secret-0123456789abcdef';
const TOKEN_B = 'node-b-secret-0123456789abcdef';
const TOKEN_BARE = 'node-any-secret-0123456789abcdef';
const CLI_TOKEN = 'cli-secret-0123456789abcdef';
const UUID_A = randomUUID();
const UUID_B = randomUUID();
const FAILURES = 'currency_controller_auth_failures_total';

let certs: CertDir;
let ca: TestCa;
let server: CertFiles;
let certA: CertFiles;
let certB: CertFiles;
let plainCert: CertFiles;
let roleCert: CertFiles;
let cliCert: CertFiles;

type TestController = Awaited<ReturnType<typeof startTestController>>;
let ctl: TestController | undefined;
const nodes: RunningNode[] = [];

/** A node certificate carrying its UUID as a SPIFFE URI SAN (tests/support/certs has no URI SANs). */
function issueNodeCert(name: string, uuid: string): CertFiles {
  const p = (ext: string) => certs.path(`${name}.${ext}`);
  const run = (args: string[]) =>
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  writeFileSync(
    p('ext'),
    `subjectAltName=URI:spiffe://currency-nodes/node/${uuid},DNS:localhost\n` +
      'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n',
  );
  run(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      p('key'),
      '-out',
      p('csr'),
      '-subj',
      `/OU=currency-node/CN=${name}`,
    ]),
  );
  run(
    ['x509', '-req', '-in', p('csr'), '-CA', ca.cert, '-CAkey', ca.key, '-set_serial'].concat([
      `0x1${randomUUID().replace(/-/g, '').slice(0, 15)}`,
      '-days',
      '2',
      '-out',
      p('pem'),
      '-extfile',
      p('ext'),
    ]),
  );
  return { cert: p('pem'), key: p('key'), serial: '' };
}

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('identity-ca');
  server = ca.issue('controller');
  certA = issueNodeCert('node-a', UUID_A);
  certB = issueNodeCert('node-b', UUID_B);
  plainCert = ca.issue('no-role');
  roleCert = ca.issue('any-node', { ou: 'currency-node' });
  cliCert = ca.issue('ops', { ou: 'currency-cli' });
  writeFileSync(
    certs.path('node.tokens'),
    `# bound identities\n${TOKEN_A} ${UUID_A}\n${TOKEN_B} ${UUID_B}\n# any UUID not bound above\n${TOKEN_BARE}\n`,
  );
  writeFileSync(certs.path('cli.tokens'), `${CLI_TOKEN}\n`);
  writeFileSync(certs.path('a.token'), `${TOKEN_A}\n`);
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await killAll();
  await ctl?.controller.stop();
  ctl = undefined;
});

afterAll(() => certs.remove());

async function controller(security: Partial<SecurityConfig>): Promise<TestController> {
  ctl = await startTestController({ security: { credentialsReloadMs: 100, ...security } });
  return ctl;
}

const mtls = () => ({ certFile: server.cert, keyFile: server.key });
const tokenAuth = (over: { clientCertRoles?: boolean; require?: 'either' | 'both' } = {}) => ({
  node: { tokens: [], file: certs.path('node.tokens') },
  cli: { tokens: [], file: certs.path('cli.tokens') },
  clientCertRoles: over.clientCertRoles ?? false,
  require: over.require ?? 'either',
});

async function inProcessNode(over: Partial<NodeConfig>): Promise<RunningNode> {
  const n = await startNode(
    testNodeConfig({
      controllerAddrs: [{ host: 'localhost', port: ctl!.controller.grpcPort }],
      name: 'victim',
      reconnectMaxMs: 200,
      ...over,
    }),
    { logger: silentLogger(), registry: new Registry(), defaultMetrics: false, serveHttp: false },
  );
  nodes.push(n);
  return n;
}

const refusedAs = (p: Program, code: string) =>
  p
    .logLines()
    .some(
      (l) =>
        typeof l.msg === 'string' && l.msg.includes(`refused this node's credentials (${code})`),
    );

const notAllowed = () => ctl!.metric(FAILURES, { service: 'node', reason: 'uuid_not_allowed' });

/** The victim's stream: connected, and never reconnected since it registered. */
async function expectUntouched(victim: RunningNode): Promise<void> {
  expect(victim.isConnected()).toBe(true);
  const reconnects = await victim.registry.getSingleMetric('currency_node_reconnects_total')?.get();
  expect(reconnects?.values.reduce((s, v) => s + v.value, 0) ?? 0).toBe(0);
  const held = ctl!.controller.core.connectedNodes().filter((n) => n.uuid === UUID_B);
  expect(held).toHaveLength(1);
  expect(held[0]!.name).toBe('victim');
}

/** The built node program's environment: it claims UUID_B as "evil" with `over`'s credentials. */
const attackerEnv = (over: Record<string, string>) => ({
  NODE_CONTROLLER_ADDR: `localhost:${ctl!.controller.grpcPort}`,
  NODE_CURRENCY_PAIRS: 'USD_HKD',
  NODE_UUID: UUID_B,
  NODE_NAME: 'evil',
  METRICS_ADDR: '127.0.0.1:0',
  NODE_TLS_CA_FILE: ca.cert,
  ...over,
});

/** Starts the node program (attackerEnv) and waits until the controller refuses it with `code`. */
async function refused(over: Record<string, string>, code = 'PERMISSION_DENIED'): Promise<Program> {
  const p = startProgram('node', attackerEnv(over));
  await waitFor(`the node program refused with ${code}`, () => refusedAs(p, code));
  return p;
}

/** The victim: an in-process node holding UUID_B with `over`'s credentials, registered. */
async function victimNode(over: Partial<NodeConfig>): Promise<RunningNode> {
  const v = await inProcessNode({ uuid: UUID_B, ...over });
  await waitFor('the victim registered', () =>
    ctl!.controller.core.connectedNodes().some((n) => n.uuid === UUID_B),
  );
  return v;
}

/** Mutual TLS with certificate roles, no tokens. */
const certRoles = () =>
  controller({
    tls: { ...mtls(), clientCaFile: ca.cert },
    auth: { node: { tokens: [] }, cli: { tokens: [] }, clientCertRoles: true },
  });

describe('a node credential bound to UUIDs', () => {
  test('a token bound to A cannot register as B, and B keeps its stream', async () => {
    await controller({ tls: mtls(), auth: tokenAuth() });
    expect(await notAllowed()).toBe(0);
    const victim = await victimNode({ tls: { caFile: ca.cert }, token: { token: TOKEN_B } });
    await refused({ NODE_TOKEN_FILE: certs.path('a.token') });
    expect(await notAllowed()).toBeGreaterThanOrEqual(1);
    await expectUntouched(victim);
    // The same token registers fine under the UUID it is bound to.
    const honest = await inProcessNode({
      uuid: UUID_A,
      tls: { caFile: ca.cert },
      token: { token: TOKEN_A },
    });
    await waitFor('A registered with its own token', () => honest.isConnected());
  });

  test('a certificate with URI SAN A cannot claim B (certificate roles), and B keeps its stream', async () => {
    await certRoles();
    const victim = await victimNode({
      tls: { caFile: ca.cert, certFile: certB.cert, keyFile: certB.key },
    });
    await refused({ NODE_TLS_CERT_FILE: certA.cert, NODE_TLS_KEY_FILE: certA.key });
    expect(await notAllowed()).toBeGreaterThanOrEqual(1);
    await expectUntouched(victim);
  });
});

describe('a node certificate whose CN is its UUID', () => {
  test('may claim that UUID only (certificate roles), and the victim keeps its stream', async () => {
    const cnCert = ca.issue(UUID_A, { ou: 'currency-node' });
    await certRoles();
    const victim = await victimNode({
      tls: { caFile: ca.cert, certFile: certB.cert, keyFile: certB.key },
    });
    await refused({ NODE_TLS_CERT_FILE: cnCert.cert, NODE_TLS_KEY_FILE: cnCert.key });
    await expectUntouched(victim);
    const own = await inProcessNode({
      uuid: UUID_A,
      name: 'cn-node',
      tls: { caFile: ca.cert, certFile: cnCert.cert, keyFile: cnCert.key },
    });
    await waitFor('the CN node registered under its own UUID', () => own.isConnected());
  });
});

describe('a UUID bound to a credential is reserved for it', () => {
  test('a bare token cannot claim a UUID the tokens file binds to another token, connected or not', async () => {
    const c = await controller({ tls: mtls(), auth: tokenAuth() });
    // B is not connected: its UUID is still not the bare token's to take.
    const early = await refused({ NODE_TOKEN: TOKEN_BARE });
    expect(c.controller.core.connectedNodes()).toHaveLength(0);
    early.signal('SIGKILL');
    await early.exited;
    const victim = await victimNode({ tls: { caFile: ca.cert }, token: { token: TOKEN_B } });
    await refused({ NODE_TOKEN: TOKEN_BARE });
    expect(await notAllowed()).toBeGreaterThanOrEqual(2);
    await expectUntouched(victim);
    // The bare token still registers under a UUID nobody is bound to.
    const free = await inProcessNode({
      uuid: randomUUID(),
      name: 'free',
      tls: { caFile: ca.cert },
      token: { token: TOKEN_BARE },
    });
    await waitFor('a free UUID registered with the bare token', () => free.isConnected());
  });

  test('a certificate without a UUID cannot displace a node registered with a certificate bound to its UUID', async () => {
    await certRoles();
    const victim = await victimNode({
      tls: { caFile: ca.cert, certFile: certB.cert, keyFile: certB.key },
    });
    await refused({ NODE_TLS_CERT_FILE: roleCert.cert, NODE_TLS_KEY_FILE: roleCert.key });
    expect(await notAllowed()).toBeGreaterThanOrEqual(1);
    await expectUntouched(victim);
  });
});

describe('CONTROLLER_AUTH_REQUIRE=both', () => {
  const both = () =>
    controller({
      tls: { ...mtls(), clientCaFile: ca.cert },
      auth: tokenAuth({ clientCertRoles: true, require: 'both' }),
    });

  test('a role certificate without a token is refused', async () => {
    await both();
    await refused(
      { NODE_UUID: UUID_A, NODE_TLS_CERT_FILE: certA.cert, NODE_TLS_KEY_FILE: certA.key },
      'UNAUTHENTICATED',
    );
    expect(await ctl!.metric(FAILURES, { service: 'node', reason: 'missing' })).toBeGreaterThan(0);
  });

  test('a token without a role certificate is refused', async () => {
    await both();
    await refused(
      {
        NODE_UUID: UUID_A,
        NODE_TLS_CERT_FILE: plainCert.cert,
        NODE_TLS_KEY_FILE: plainCert.key,
        NODE_TOKEN: TOKEN_A,
      },
      'UNAUTHENTICATED',
    );
    const cli = await runProgram(
      'cli',
      ['--controller', `localhost:${ctl!.controller.grpcPort}`, '--timeout', '3'].concat([
        'controller',
        'version',
      ]),
      {
        CLI_TLS_CA_FILE: ca.cert,
        CLI_TLS_CERT_FILE: plainCert.cert,
        CLI_TLS_KEY_FILE: plainCert.key,
        CLI_TOKEN,
      },
    );
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('UNAUTHENTICATED');
  });

  test('with bound identities, the token and the certificate must both allow the UUID', async () => {
    await both();
    // Certificate bound to A, token bound to B: neither UUID is allowed by both.
    const mixed = {
      NODE_TLS_CERT_FILE: certA.cert,
      NODE_TLS_KEY_FILE: certA.key,
      NODE_TOKEN: TOKEN_B,
    };
    await refused({ ...mixed, NODE_UUID: UUID_B });
    // Nor the certificate's UUID: the token is bound to another.
    await refused({ ...mixed, NODE_UUID: UUID_A });
    expect(await notAllowed()).toBeGreaterThanOrEqual(2);
    expect(ctl!.controller.core.connectedNodes()).toEqual([]);
  });

  test('both credentials together are let in, for a node and for a CLI', async () => {
    const c = await both();
    const n = await inProcessNode({
      uuid: UUID_A,
      tls: { caFile: ca.cert, certFile: certA.cert, keyFile: certA.key },
      token: { token: TOKEN_A },
    });
    await waitFor('registered with both credentials', () => n.isConnected());
    const cli = await runProgram(
      'cli',
      ['--controller', `localhost:${c.controller.grpcPort}`, '--timeout', '3', 'controller'].concat(
        ['version'],
      ),
      {
        CLI_TLS_CA_FILE: ca.cert,
        CLI_TLS_CERT_FILE: cliCert.cert,
        CLI_TLS_KEY_FILE: cliCert.key,
        CLI_TOKEN,
      },
    );
    expect(cli.code).toBe(0);
  });
});

describe('configuration', () => {
  test('CONTROLLER_AUTH_REQUIRE=both without certificate roles stops the controller with exit 2', async () => {
    const r = await runProgram('controller', [], {
      CONTROLLER_LISTEN_ADDR: '127.0.0.1:0',
      METRICS_ADDR: '127.0.0.1:0',
      CONTROLLER_NODE_TOKENS_FILE: certs.path('node.tokens'),
      CONTROLLER_CLI_TOKENS_FILE: certs.path('cli.tokens'),
      CONTROLLER_AUTH_REQUIRE: 'both',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CONTROLLER_AUTH_REQUIRE');
  });
});
