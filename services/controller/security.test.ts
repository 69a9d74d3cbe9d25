import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { systemScheduler } from '../shared/scheduler';
import { ConfigError } from '../shared/config';
import { silentLogger } from '../shared/logger';
import { loadControllerConfig } from './config';
import { type SecurityConfig, createSecurity } from './security';

const NODE_TOKEN = 'node-secret-0123456789abcdef';
const CLI_TOKEN = 'cli-secret-0123456789abcdef';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'security-test-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The part of a server call the gate touches, recording how it was ended. */
function fakeCall(authorization?: string, ou?: string) {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set('authorization', authorization);
  const ended: { code: number; details: string }[] = [];
  return {
    ended,
    call: {
      metadata: md,
      getPeer: () => 'ipv4:127.0.0.1:50000',
      getAuthContext: () => (ou ? { sslPeerCertificate: { subject: { OU: ou } } as never } : {}),
      emit: (event: string, status: { code: number; details: string }) => {
        if (event === 'error') ended.push(status);
        return true;
      },
    },
  };
}

function gate(config: Partial<SecurityConfig>) {
  const registry = new Registry();
  const security = createSecurity(
    { credentialsReloadMs: 60_000, ...config },
    { logger: silentLogger(), registry, clock: systemScheduler },
  );
  const failures = async (service: string, reason: string) =>
    (await registry.getSingleMetric('currency_controller_auth_failures_total')!.get()).values.find(
      (v) => v.labels.service === service && v.labels.reason === reason,
    )?.value;
  return { security, failures };
}

const tokens = {
  node: { tokens: [NODE_TOKEN] },
  cli: { tokens: [CLI_TOKEN] },
  clientCertRoles: false,
};

describe('the gate on every stream', () => {
  test('with security off every stream is let through and the port is plaintext', async () => {
    const { security, failures } = gate({});
    const { call, ended } = fakeCall();
    expect(security.admit('cli', call)).toBe(true);
    expect(ended).toEqual([]);
    expect(security.credentials._isSecure()).toBe(false);
    expect(await failures('cli', 'missing')).toBe(0);
    security.close();
  });

  test('a refused stream is ended with the status before anything else sees it, and counted', async () => {
    const { security, failures } = gate({ auth: tokens });
    const wrongRole = fakeCall(`Bearer ${NODE_TOKEN}`);
    expect(security.admit('cli', wrongRole.call)).toBe(false);
    expect(wrongRole.ended).toEqual([
      {
        code: grpc.status.PERMISSION_DENIED,
        details: 'a node credential cannot open the CLI service',
      },
    ]);
    const missing = fakeCall();
    expect(security.admit('node', missing.call)).toBe(false);
    expect(missing.ended[0]!.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await failures('cli', 'wrong_role')).toBe(1);
    expect(await failures('node', 'missing')).toBe(1);
    expect(await failures('node', 'invalid')).toBe(0);
    const ok = fakeCall(`Bearer ${NODE_TOKEN}`);
    expect(security.admit('node', ok.call)).toBe(true);
    expect(ok.ended).toEqual([]);
    security.close();
  });

  test('with certificate roles alone, a certificate is the credential and a token is not asked for', async () => {
    const { security, failures } = gate({
      auth: { node: { tokens: [] }, cli: { tokens: [] }, clientCertRoles: true },
    });
    const none = fakeCall();
    expect(security.admit('cli', none.call)).toBe(false);
    expect(none.ended[0]!.details).toContain('OU=currency-cli');
    expect(
      security.admit('cli', fakeCall('Bearer whatever-0123456789abc', 'currency-cli').call),
    ).toBe(true);
    expect(await failures('cli', 'missing')).toBe(1);
    security.close();
  });

  test('with certificate roles the verified client certificate OU decides', () => {
    const { security } = gate({ auth: { ...tokens, clientCertRoles: true } });
    expect(security.admit('node', fakeCall(undefined, 'currency-node').call)).toBe(true);
    expect(security.admit('cli', fakeCall(undefined, 'currency-node').call)).toBe(false);
    security.close();
  });
});

describe('loadControllerConfig security variables', () => {
  test('with none set, security is absent (plaintext, no authentication)', () => {
    expect(loadControllerConfig({}).security).toBeUndefined();
  });

  test('tokens files and the reload interval are read', () => {
    const nodeFile = join(dir, 'node.tokens');
    const cliFile = join(dir, 'cli.tokens');
    writeFileSync(nodeFile, `${NODE_TOKEN}\n`);
    writeFileSync(cliFile, `${CLI_TOKEN}\n`);
    expect(
      loadControllerConfig({
        CONTROLLER_NODE_TOKENS_FILE: nodeFile,
        CONTROLLER_CLI_TOKENS_FILE: cliFile,
        CONTROLLER_CREDENTIALS_RELOAD_MS: '250',
      }).security,
    ).toEqual({
      tls: undefined,
      auth: {
        node: { tokens: [], file: nodeFile },
        cli: { tokens: [], file: cliFile },
        clientCertRoles: false,
      },
      credentialsReloadMs: 250,
    });
  });

  test.each<[string, Record<string, string>]>([
    ['CONTROLLER_CREDENTIALS_RELOAD_MS', { CONTROLLER_CREDENTIALS_RELOAD_MS: '0' }],
    [
      'CONTROLLER_TLS_CERT_FILE',
      {
        CONTROLLER_TLS_CERT_FILE: '/nonexistent/s.pem',
        CONTROLLER_TLS_KEY_FILE: '/nonexistent/s.key',
      },
    ],
    ['CONTROLLER_TLS_CLIENT_CERT_ROLES', { CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true' }],
  ])('a bad %s stops the controller naming it', (variable, env) => {
    let err: unknown;
    try {
      loadControllerConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
  });
});
