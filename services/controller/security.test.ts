import { randomUUID } from 'node:crypto';
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
const UUID_A = '0b8f3c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const UUID_B = '7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'security-test-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The part of a server call the gate touches, recording how it was ended. */
function fakeCall(authorization?: string, ou?: string, san?: string) {
  const md = new grpc.Metadata();
  if (authorization !== undefined) md.set('authorization', authorization);
  const ended: { code: number; details: string }[] = [];
  return {
    ended,
    call: {
      metadata: md,
      getPeer: () => 'ipv4:127.0.0.1:50000',
      getAuthContext: () =>
        ou ? { sslPeerCertificate: { subject: { OU: ou }, subjectaltname: san } as never } : {},
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
    expect(security.admit('node', call)?.mayClaim(UUID_B)).toBe(true);
    expect(ended).toEqual([]);
    expect(security.credentials._isSecure()).toBe(false);
    expect(await failures('cli', 'missing')).toBe(0);
    security.close();
  });

  test('a refused stream is ended with the status before anything else sees it, and counted', async () => {
    const { security, failures } = gate({ auth: tokens });
    const wrongRole = fakeCall(`Bearer ${NODE_TOKEN}`);
    expect(security.admit('cli', wrongRole.call)).toBeUndefined();
    expect(wrongRole.ended).toEqual([
      {
        code: grpc.status.PERMISSION_DENIED,
        details: 'a node credential cannot open the CLI service',
      },
    ]);
    const missing = fakeCall();
    expect(security.admit('node', missing.call)).toBeUndefined();
    expect(missing.ended[0]!.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(await failures('cli', 'wrong_role')).toBe(1);
    expect(await failures('node', 'missing')).toBe(1);
    expect(await failures('node', 'invalid')).toBe(0);
    const ok = fakeCall(`Bearer ${NODE_TOKEN}`);
    expect(security.admit('node', ok.call)).toBeTruthy();
    expect(ok.ended).toEqual([]);
    security.close();
  });

  test('with certificate roles alone, a certificate is the credential and a token is not asked for', async () => {
    const { security, failures } = gate({
      auth: { node: { tokens: [] }, cli: { tokens: [] }, clientCertRoles: true },
    });
    const none = fakeCall();
    expect(security.admit('cli', none.call)).toBeUndefined();
    expect(none.ended[0]!.details).toContain('OU=currency-cli');
    expect(
      security.admit('cli', fakeCall('Bearer whatever-0123456789abc', 'currency-cli').call),
    ).toBe(true);
    expect(await failures('cli', 'missing')).toBe(1);
    security.close();
  });

  test('with certificate roles the verified client certificate OU decides', () => {
    const { security } = gate({ auth: { ...tokens, clientCertRoles: true } });
    expect(security.admit('node', fakeCall(undefined, 'currency-node').call)).toBeTruthy();
    expect(security.admit('cli', fakeCall(undefined, 'currency-node').call)).toBeUndefined();
    security.close();
  });
});

describe('node UUIDs bound to credentials', () => {
  test('a token bound to A may claim A only; a refused claim is counted as uuid_not_allowed', async () => {
    const tokensFile = join(dir, 'node.tokens');
    writeFileSync(tokensFile, `${NODE_TOKEN} ${UUID_A}\n${NODE_TOKEN}-bare\n`);
    const { security, failures } = gate({
      auth: { ...tokens, node: { tokens: [], file: tokensFile } },
    });
    expect(await failures('node', 'uuid_not_allowed')).toBe(0);
    const bound = security.admit('node', fakeCall(`Bearer ${NODE_TOKEN}`).call)!;
    expect(bound.mayClaim(UUID_A)).toBe(true);
    expect(bound.mayClaim(UUID_A.toUpperCase())).toBe(true);
    expect(bound.mayClaim(UUID_B)).toBe(false);
    bound.refuseClaim(UUID_B, 'the credential is not bound to this UUID');
    expect(await failures('node', 'uuid_not_allowed')).toBe(1);
    // The bare token is the weaker, documented choice: any UUID that no line binds.
    const bare = security.admit('node', fakeCall(`Bearer ${NODE_TOKEN}-bare`).call)!;
    expect([bare.bound, bare.mayClaim(UUID_B)]).toEqual([false, true]);
    expect(bare.mayClaim(UUID_A)).toBe(false);
    expect(bare.mayClaim(UUID_A.toUpperCase())).toBe(false);
    security.close();
  });

  test('a token given bare (inline) and bound in the file is unbound, and its own bound UUIDs are not barred to it', () => {
    const tokensFile = join(dir, 'node-mixed.tokens');
    writeFileSync(tokensFile, `${NODE_TOKEN} ${UUID_A}\n${NODE_TOKEN}-other ${UUID_B}\n`);
    const { security } = gate({
      auth: { ...tokens, node: { tokens: [NODE_TOKEN], file: tokensFile } },
    });
    const t = security.admit('node', fakeCall(`Bearer ${NODE_TOKEN}`).call)!;
    expect(t.bound).toBe(false);
    expect([t.mayClaim(UUID_A), t.mayClaim(UUID_B), t.mayClaim(randomUUID())]).toEqual([
      true,
      false,
      true,
    ]);
    security.close();
  });

  test('a node certificate with URI SAN A may claim A only (certificate roles on)', () => {
    const { security } = gate({
      auth: { node: { tokens: [] }, cli: { tokens: [] }, clientCertRoles: true },
    });
    const san = `DNS:localhost, URI:spiffe://currency-nodes/node/${UUID_A}`;
    const a = security.admit('node', fakeCall(undefined, 'currency-node', san).call)!;
    expect([a.mayClaim(UUID_A), a.mayClaim(UUID_B)]).toEqual([true, false]);
    const unbound = security.admit('node', fakeCall(undefined, 'currency-node').call)!;
    expect(unbound.mayClaim(UUID_B)).toBe(true);
    security.close();
  });

  test('both: a certificate without a token and a token without a role certificate are refused', async () => {
    const { security, failures } = gate({
      auth: { ...tokens, clientCertRoles: true, require: 'both' },
    });
    const certOnly = fakeCall(undefined, 'currency-node');
    expect(security.admit('node', certOnly.call)).toBeUndefined();
    expect(certOnly.ended[0]!.code).toBe(grpc.status.UNAUTHENTICATED);
    const tokenOnly = fakeCall(`Bearer ${NODE_TOKEN}`, 'some-other-ou');
    expect(security.admit('node', tokenOnly.call)).toBeUndefined();
    expect(tokenOnly.ended[0]!.details).toContain('OU=currency-node');
    expect(await failures('node', 'missing')).toBe(2);
    expect(
      security.admit('node', fakeCall(`Bearer ${NODE_TOKEN}`, 'currency-node').call),
    ).toBeTruthy();
    security.close();
  });
});

describe('loadControllerConfig security variables', () => {
  test('with none set, security is absent (plaintext, no authentication)', () => {
    const security = loadControllerConfig({}).security;
    expect([security.tls, security.auth]).toEqual([undefined, undefined]);
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
        require: 'either',
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
