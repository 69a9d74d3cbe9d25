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
  certNodeUuids,
  certOus,
  parseTokenLines,
  parseTokens,
  readClientToken,
  readClientTokenConfig,
  readControllerAuthConfig,
  tokenProblem,
  withToken,
} from './auth';

const NODE_TOKEN = 'node-token-0123456789abcdef';
const CLI_TOKEN = 'cli-token-0123456789abcdef';
const UUID_A = '0b8f3c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const UUID_B = '7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f';
const sets = { node: new TokenSet([NODE_TOKEN]), cli: new TokenSet([CLI_TOKEN]) };
const refused = (d: AuthDecision) => (d.ok ? undefined : { code: d.code, reason: d.reason });
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
      require: 'either',
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
      require: 'either',
    });
  });

  test("CONTROLLER_AUTH_REQUIRE=both is read when certificate roles and both roles' tokens are set", () => {
    const env = {
      CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true',
      CONTROLLER_NODE_TOKEN: NODE_TOKEN,
      CONTROLLER_CLI_TOKEN: CLI_TOKEN,
      CONTROLLER_AUTH_REQUIRE: 'both',
    };
    expect(readControllerAuthConfig(env, true)?.require).toBe('both');
  });

  test.each<[string, Record<string, string>, boolean, string]>([
    ['a value other than either/both', { CONTROLLER_AUTH_REQUIRE: 'all' }, false, 'either or both'],
    ['both without anything', { CONTROLLER_AUTH_REQUIRE: 'both' }, false, 'certificate roles'],
    [
      'both with tokens only',
      {
        CONTROLLER_AUTH_REQUIRE: 'both',
        CONTROLLER_NODE_TOKEN: NODE_TOKEN,
        CONTROLLER_CLI_TOKEN: CLI_TOKEN,
      },
      true,
      'CONTROLLER_TLS_CLIENT_CERT_ROLES=true',
    ],
    [
      'both with certificate roles and node tokens only',
      {
        CONTROLLER_AUTH_REQUIRE: 'both',
        CONTROLLER_TLS_CLIENT_CERT_ROLES: 'true',
        CONTROLLER_NODE_TOKEN: NODE_TOKEN,
      },
      true,
      'node and CLI tokens',
    ],
  ])('CONTROLLER_AUTH_REQUIRE: %s stops naming the variable', (_what, env, mtls, says) => {
    const e = configError(() => readControllerAuthConfig(env, mtls));
    expect(e.variable).toBe('CONTROLLER_AUTH_REQUIRE');
    expect(e.message).toContain(says);
  });

  test('a node tokens file may bind tokens to UUIDs; a CLI tokens file may not', () => {
    const nodes = file('node.tokens', `${NODE_TOKEN} ${UUID_A}\n`);
    const clis = file('cli.tokens', `${CLI_TOKEN} ${UUID_A}\n`);
    expect(
      readControllerAuthConfig(
        { CONTROLLER_NODE_TOKENS_FILE: nodes, CONTROLLER_CLI_TOKEN: CLI_TOKEN },
        false,
      )?.node,
    ).toEqual({ tokens: [], file: nodes });
    const e = configError(() =>
      readControllerAuthConfig(
        { CONTROLLER_NODE_TOKEN: NODE_TOKEN, CONTROLLER_CLI_TOKENS_FILE: clis },
        false,
      ),
    );
    expect(e.variable).toBe('CONTROLLER_CLI_TOKENS_FILE');
    expect(e.message).toContain('only node tokens can be bound');
  });
});

describe('node UUIDs bound to credentials', () => {
  const bound = {
    node: new TokenSet([{ token: NODE_TOKEN, uuids: [UUID_A] }, `${NODE_TOKEN}-any`]),
    cli: new TokenSet([CLI_TOKEN]),
  };
  const uuidsOf = (d: AuthDecision) => (d.ok ? d.uuids && [...d.uuids].sort() : 'refused');

  test('token lines: TOKEN, or TOKEN UUID[,UUID...] (lower-cased); anything else names the line', () => {
    expect(
      parseTokenLines(`# n\n${NODE_TOKEN}\n${CLI_TOKEN}  ${UUID_A},${UUID_B.toUpperCase()}\n`),
    ).toEqual([{ token: NODE_TOKEN }, { token: CLI_TOKEN, uuids: [UUID_A, UUID_B] }]);
    expect(() => parseTokenLines(`${NODE_TOKEN} not-a-uuid\n`)).toThrow(
      'line 1: "not-a-uuid" is not a UUID',
    );
    expect(() => parseTokenLines(`${NODE_TOKEN} ${UUID_A} ${UUID_B}\n`)).toThrow(
      'line 1: expected TOKEN',
    );
    expect(() => parseTokenLines(`${NODE_TOKEN}\n${NODE_TOKEN} ${UUID_A}\n`)).toThrow(
      'line 2: the same token as line 1',
    );
    expect(() => parseTokenLines(`${NODE_TOKEN} ${UUID_A}\n`, false)).toThrow('only node tokens');
    // A node's own token file may hold the controller's line format: the token is sent.
    expect(parseTokens(`${NODE_TOKEN} ${UUID_A}\n`)).toEqual([NODE_TOKEN]);
  });

  test('a bound token carries its UUIDs; a bare token carries none (any UUID)', () => {
    expect(uuidsOf(authorize('node', bearer(NODE_TOKEN), bound, false))).toEqual([UUID_A]);
    expect(uuidsOf(authorize('node', bearer(`${NODE_TOKEN}-any`), bound, false))).toBeUndefined();
    expect(bound.node.lookup('node-token-wrong-0123456789')).toBeUndefined();
  });

  test('the same token inline (bare) and bound in a file is unbound: the weaker line wins', () => {
    const set = new TokenSet([NODE_TOKEN, { token: NODE_TOKEN, uuids: [UUID_A] }]);
    // Unbound, but the UUID its own line names stays its own (not reserved against it).
    expect(set.lookup(NODE_TOKEN)).toEqual({ own: new Set([UUID_A]) });
  });

  test('a node certificate with a SPIFFE URI SAN, or a UUID CN, is bound to it', () => {
    expect(
      certNodeUuids({
        subject: { CN: 'node-1' },
        subjectaltname: `DNS:localhost, URI:spiffe://currency-nodes/node/${UUID_A.toUpperCase()}, URI:https://x`,
      }),
    ).toEqual([UUID_A]);
    expect(certNodeUuids({ subject: { CN: UUID_B } })).toEqual([UUID_B]);
    expect(certNodeUuids({ subject: { CN: 'node-1' }, subjectaltname: 'DNS:localhost' })).toEqual(
      [],
    );
    expect(certNodeUuids(undefined)).toEqual([]);
    // A malformed tail binds to something no claim can match, never to "any".
    expect(certNodeUuids({ subjectaltname: 'URI:spiffe://currency-nodes/node/x' })).toEqual(['x']);
  });

  test('with a bound certificate and a bound token, the stream may claim what both allow', () => {
    const both = {
      authorization: [`Bearer ${NODE_TOKEN}`],
      certOus: ['currency-node'],
      certUuids: [UUID_A, UUID_B],
    };
    expect(uuidsOf(authorize('node', both, bound, true))).toEqual([UUID_A]);
    const certOnly = { authorization: [], certOus: ['currency-node'], certUuids: [UUID_B] };
    expect(uuidsOf(authorize('node', certOnly, bound, true))).toEqual([UUID_B]);
    // Certificate UUIDs count only for a node certificate with certificate roles on.
    expect(uuidsOf(authorize('node', { ...both, certOus: [] }, bound, true))).toEqual([UUID_A]);
  });

  test('both: a token and a certificate of the role are needed', () => {
    const nodeCert = { authorization: [], certOus: ['currency-node'] };
    expect(refused(authorize('node', nodeCert, sets, true, 'both'))).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'missing',
    });
    expect(refused(authorize('node', bearer(NODE_TOKEN), sets, true, 'both'))).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      reason: 'missing',
    });
    const cliCertNodeToken = { authorization: [`Bearer ${NODE_TOKEN}`], certOus: ['currency-cli'] };
    expect(refused(authorize('node', cliCertNodeToken, sets, true, 'both'))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      reason: 'wrong_role',
    });
    expect(
      authorize(
        'node',
        { ...nodeCert, authorization: [`Bearer ${NODE_TOKEN}`] },
        sets,
        true,
        'both',
      ),
    ).toMatchObject({ ok: true, via: 'token+certificate' });
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

  test('a binding added to or removed from a line is picked up on the next poll', () => {
    const f = file('node.tokens', `${NODE_TOKEN}\n`);
    const clock = manualClock();
    const r = new ReloadingTokens({ tokens: [], file: f }, { intervalMs: 1000, clock }).start();
    expect(r.current().lookup(NODE_TOKEN)).toEqual({ own: new Set() });
    writeFileSync(f, `${NODE_TOKEN} ${UUID_A}\n`);
    clock.fire();
    expect(r.current().lookup(NODE_TOKEN)).toEqual({
      uuids: new Set([UUID_A]),
      own: new Set([UUID_A]),
    });
    r.close();
  });

  test('a CLI tokens file (not bindable) that gains a UUID is refused at reload', () => {
    const f = file('cli.tokens', `${CLI_TOKEN}\n`);
    const clock = manualClock();
    const events: { outcome: string }[] = [];
    const r = new ReloadingTokens(
      { tokens: [], file: f },
      { intervalMs: 1000, clock, bindable: false, onReload: (e) => events.push(e) },
    ).start();
    writeFileSync(f, `${CLI_TOKEN} ${UUID_A}\n`);
    clock.fire();
    expect(events).toEqual([
      { outcome: 'failed', problem: 'line 1: only node tokens can be bound to node UUIDs' },
    ]);
    expect(r.current().matches(CLI_TOKEN)).toBe(true);
    r.close();
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
