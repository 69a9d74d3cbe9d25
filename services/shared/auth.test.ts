import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { configError, manualClock } from '../../tests/support/fakes';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  type AuthDecision,
  ReloadingTokens,
  TokenSet,
  authorize,
  certOus,
  parseTokens,
  readClientToken,
  readClientTokenConfig,
  readControllerAuthConfig,
  tokenProblem,
  withToken,
} from './auth';

const NODE_TOKEN = 'node-token-0123456789abcdef';
const CLI_TOKEN = 'cli-token-0123456789abcdef';
const sets = { node: new TokenSet([NODE_TOKEN]), cli: new TokenSet([CLI_TOKEN]) };
const bearer = (t: string) => ({ authorization: [`Bearer ${t}`], certOus: [] });

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'auth-test-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('tokens', () => {
  test('a token shorter than 16 characters or with spaces or commas is refused', () => {
    expect(tokenProblem('short')).toMatch(/at least 16/);
    expect(tokenProblem('has a space in it, too long')).toMatch(/only letters/);
    expect(tokenProblem('a,b-0123456789abcdef')).toMatch(/only letters/);
    expect(tokenProblem('Abc_0123456789-xyz.~+/=')).toBeUndefined();
  });

  test('a tokens file holds one token per line; blank lines and # comments are skipped', () => {
    expect(parseTokens(`# nodes\n\n  ${NODE_TOKEN}  \r\n${CLI_TOKEN}\n`)).toEqual([
      NODE_TOKEN,
      CLI_TOKEN,
    ]);
  });

  test('a tokens file with no token, or a bad line, says which', () => {
    expect(() => parseTokens('# nothing\n\n')).toThrow('holds no token');
    expect(() => parseTokens(`${NODE_TOKEN}\nshort\n`)).toThrow('line 2');
  });

  test('a token set matches exactly the tokens it holds', () => {
    const s = new TokenSet([NODE_TOKEN, CLI_TOKEN]);
    expect(s.size).toBe(2);
    expect(s.matches(NODE_TOKEN)).toBe(true);
    expect(s.matches(CLI_TOKEN)).toBe(true);
    expect(s.matches(NODE_TOKEN.slice(0, -1))).toBe(false);
    expect(s.matches(`${NODE_TOKEN}x`)).toBe(false);
    expect(s.matches('')).toBe(false);
    expect(new TokenSet([]).matches(NODE_TOKEN)).toBe(false);
  });
});

describe('authorize', () => {
  const refused = (d: AuthDecision) => (d.ok ? undefined : { code: d.code, reason: d.reason });

  test('with no tokens and no certificate roles everyone is let in', () => {
    expect(authorize('cli', { authorization: [], certOus: [] }, undefined, false)).toEqual({
      ok: true,
      via: 'off',
    });
  });

  test('a node token opens the node service and a CLI token the CLI service', () => {
    expect(authorize('node', bearer(NODE_TOKEN), sets, false)).toMatchObject({
      ok: true,
      role: 'node',
      via: 'token',
    });
    expect(authorize('cli', bearer(CLI_TOKEN), sets, false)).toMatchObject({ ok: true });
  });

  test('the Bearer scheme is matched without regard to case', () => {
    const d = authorize(
      'cli',
      { authorization: [`bearer ${CLI_TOKEN}`], certOus: [] },
      sets,
      false,
    );
    expect(d.ok).toBe(true);
  });

  test('a node token on the CLI service, and a CLI token on the node service, are PERMISSION_DENIED', () => {
    const a = authorize('cli', bearer(NODE_TOKEN), sets, false);
    expect(refused(a)).toEqual({ code: grpc.status.PERMISSION_DENIED, reason: 'wrong_role' });
    expect(a.ok ? '' : a.message).toBe('a node credential cannot open the CLI service');
    expect(refused(authorize('node', bearer(CLI_TOKEN), sets, false))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      reason: 'wrong_role',
    });
  });

  test('no credentials are UNAUTHENTICATED (missing)', () => {
    expect(refused(authorize('node', { authorization: [], certOus: [] }, sets, false))).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'missing',
    });
  });

  test.each([
    ['an unknown token', ['Bearer not-a-known-token-at-all']],
    ['another scheme', [`Basic ${NODE_TOKEN}`]],
    ['a bare token', [NODE_TOKEN]],
    ['two headers', [`Bearer ${NODE_TOKEN}`, `Bearer ${NODE_TOKEN}`]],
  ])('%s is UNAUTHENTICATED (invalid)', (_what, authorization) => {
    expect(refused(authorize('node', { authorization, certOus: [] }, sets, false))).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'invalid',
    });
  });

  test('with certificate roles, the client certificate OU is a credential of its own', () => {
    const node = { authorization: [], certOus: ['currency-node'] };
    expect(authorize('node', node, undefined, true)).toMatchObject({
      ok: true,
      via: 'certificate',
    });
    expect(refused(authorize('cli', node, undefined, true))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      reason: 'wrong_role',
    });
    expect(
      refused(authorize('cli', { authorization: [], certOus: ['ops'] }, undefined, true)),
    ).toEqual({ code: grpc.status.UNAUTHENTICATED, reason: 'missing' });
  });

  test('with both, either credential of the right role lets a peer in, but a wrong token never does', () => {
    const nodeCertCliToken = { authorization: [`Bearer ${CLI_TOKEN}`], certOus: ['currency-node'] };
    expect(authorize('cli', nodeCertCliToken, sets, true)).toMatchObject({
      ok: true,
      via: 'token',
    });
    expect(authorize('node', nodeCertCliToken, sets, true)).toMatchObject({
      ok: true,
      via: 'certificate',
    });
    const badToken = {
      authorization: ['Bearer wrong-token-0123456789'],
      certOus: ['currency-node'],
    };
    expect(refused(authorize('node', badToken, sets, true))?.reason).toBe('invalid');
  });

  test('certificate OUs are read whether Node gives one or several', () => {
    expect(certOus(undefined)).toEqual([]);
    expect(certOus({ OU: 'currency-cli' })).toEqual(['currency-cli']);
    expect(certOus({ OU: ['a', 'currency-node'] })).toEqual(['a', 'currency-node']);
  });
});

describe('readControllerAuthConfig', () => {
  test('with nothing set, authentication is off', () => {
    expect(readControllerAuthConfig({}, false)).toBeUndefined();
  });

  test('inline tokens may be a comma-separated list, and a file adds its own', () => {
    const f = file('cli.tokens', `${CLI_TOKEN}\n`);
    expect(
      readControllerAuthConfig(
        { CONTROLLER_NODE_TOKEN: `${NODE_TOKEN}, ${NODE_TOKEN}2`, CONTROLLER_CLI_TOKENS_FILE: f },
        false,
      ),
    ).toEqual({
      node: { tokens: [NODE_TOKEN, `${NODE_TOKEN}2`] },
      cli: { tokens: [], file: f },
      clientCertRoles: false,
    });
  });

  test.each([
    [{ CONTROLLER_NODE_TOKEN: NODE_TOKEN }, 'CONTROLLER_CLI_TOKENS_FILE', 'no CLI could connect'],
    [{ CONTROLLER_CLI_TOKEN: CLI_TOKEN }, 'CONTROLLER_NODE_TOKENS_FILE', 'no node could connect'],
    [
      { CONTROLLER_NODE_TOKEN: 'short', CONTROLLER_CLI_TOKEN: CLI_TOKEN },
      'CONTROLLER_NODE_TOKEN',
      'at least 16',
    ],
    [
      { CONTROLLER_NODE_TOKENS_FILE: '/nonexistent/tokens', CONTROLLER_CLI_TOKEN: CLI_TOKEN },
      'CONTROLLER_NODE_TOKENS_FILE',
      'no such file',
    ],
    [
      { CONTROLLER_TLS_CLIENT_CERT_ROLES: 'yes' },
      'CONTROLLER_TLS_CLIENT_CERT_ROLES',
      'true or false',
    ],
    [
      { CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true' },
      'CONTROLLER_TLS_CLIENT_CERT_ROLES',
      'mutual TLS',
    ],
  ])('%j stops naming %s', (env, variable, says) => {
    const e = configError(() => readControllerAuthConfig(env, false));
    expect(e.variable).toBe(variable);
    expect(e.message).toContain(says);
  });

  test('an empty tokens file stops the controller naming the variable', () => {
    const f = file('empty', '\n# nothing yet\n');
    const e = configError(() =>
      readControllerAuthConfig(
        { CONTROLLER_NODE_TOKENS_FILE: f, CONTROLLER_CLI_TOKEN: CLI_TOKEN },
        false,
      ),
    );
    expect(e.variable).toBe('CONTROLLER_NODE_TOKENS_FILE');
    expect(e.message).toContain('holds no token');
  });

  test('certificate roles alone (with mutual TLS) turn authentication on without tokens', () => {
    expect(readControllerAuthConfig({ CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true' }, true)).toEqual({
      node: { tokens: [] },
      cli: { tokens: [] },
      clientCertRoles: true,
    });
  });
});

describe('ReloadingTokens', () => {
  test('a changed tokens file is picked up on the next poll; the inline tokens stay', () => {
    const f = file('node.tokens', `${NODE_TOKEN}\n`);
    const clock = manualClock();
    const events: unknown[] = [];
    const r = new ReloadingTokens(
      { tokens: ['inline-token-0123456789'], file: f },
      { intervalMs: 1000, clock, onReload: (e) => events.push(e) },
    ).start();
    expect(r.current().matches(NODE_TOKEN)).toBe(true);
    writeFileSync(f, 'rotated-token-0123456789\n');
    clock.fire();
    expect(r.current().matches(NODE_TOKEN)).toBe(false);
    expect(r.current().matches('rotated-token-0123456789')).toBe(true);
    expect(r.current().matches('inline-token-0123456789')).toBe(true);
    expect(events).toEqual([{ outcome: 'loaded', count: 2 }]);
    r.close();
    expect(clock.pending()).toBe(0);
  });

  test('a tokens file that turns bad keeps the last good tokens and is reported once', () => {
    const f = file('node.tokens', `${NODE_TOKEN}\n`);
    const clock = manualClock();
    const events: { outcome: string }[] = [];
    const r = new ReloadingTokens(
      { tokens: [], file: f },
      { intervalMs: 1000, clock, onReload: (e) => events.push(e) },
    ).start();
    writeFileSync(f, 'short\n');
    clock.fire();
    clock.fire();
    rmSync(f);
    clock.fire();
    expect(r.current().matches(NODE_TOKEN)).toBe(true);
    expect(events.map((e) => e.outcome)).toEqual(['failed', 'failed']);
    r.close();
  });

  test('without a file nothing is polled', () => {
    const clock = manualClock();
    new ReloadingTokens({ tokens: [NODE_TOKEN] }, { intervalMs: 10, clock }).start();
    expect(clock.pending()).toBe(0);
  });
});

describe('client tokens', () => {
  const names = { token: 'NODE_TOKEN', file: 'NODE_TOKEN_FILE' };

  test('neither set means no token', () => {
    expect(readClientTokenConfig({}, names)).toBeUndefined();
  });

  test('an inline token is sent as it is; a file is read again each time', () => {
    expect(readClientToken(readClientTokenConfig({ token: NODE_TOKEN }, names)!)).toBe(NODE_TOKEN);
    const f = file('token', `# mine\n${NODE_TOKEN}\n`);
    const cfg = readClientTokenConfig({ file: f }, names)!;
    expect(readClientToken(cfg)).toBe(NODE_TOKEN);
    writeFileSync(f, `${CLI_TOKEN}\n`);
    expect(readClientToken(cfg)).toBe(CLI_TOKEN);
  });

  test.each([
    [{ token: NODE_TOKEN, file: '/x' }, 'NODE_TOKEN_FILE', 'not both'],
    [{ token: 'short' }, 'NODE_TOKEN', 'at least 16'],
    [{ file: '/nonexistent/token' }, 'NODE_TOKEN_FILE', 'no such file'],
  ])('%j stops naming %s', (raw, variable, says) => {
    const e = configError(() => readClientTokenConfig(raw, names));
    expect(e.variable).toBe(variable);
    expect(e.message).toContain(says);
  });

  test('the token goes in the authorization metadata as a bearer token', () => {
    expect(withToken(new grpc.Metadata(), NODE_TOKEN).get('authorization')).toEqual([
      `Bearer ${NODE_TOKEN}`,
    ]);
    expect(withToken(new grpc.Metadata(), undefined).get('authorization')).toEqual([]);
  });
});
