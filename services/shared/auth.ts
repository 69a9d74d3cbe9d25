/**
 * Peer authentication: bearer tokens in gRPC metadata (`authorization: Bearer <token>`),
 * one set for nodes and one for CLIs, and (with mutual TLS) the role written in the
 * client certificate. The decision is a pure function of what the peer presented, so the
 * rules are unit-tested here and the controller only turns a refusal into a gRPC status.
 */
import { PROGRAMS } from './protocol';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type Env, UUID_PATTERN } from './config';
import {
  type TokenSet,
  type TokenSourceConfig,
  fileProblem,
  parseTokens,
  readTokensFile,
  tokenProblem,
} from './tokens';

export * from './tokens';

export type PeerRole = 'node' | 'cli';
export const PEER_ROLES: readonly PeerRole[] = ['node', 'cli'];

export const AUTH_METADATA_KEY = 'authorization';

/** Subject OU that marks a client certificate's role when CONTROLLER_TLS_CLIENT_CERT_ROLES is on. */
export const CERT_ROLE_OU: Record<PeerRole, string> = {
  node: PROGRAMS.node,
  cli: PROGRAMS.cli,
};

// ------------------------------------------------------------------ controller side

export interface ControllerAuthConfig {
  node: TokenSourceConfig;
  cli: TokenSourceConfig;
  /** With mutual TLS: a client certificate with OU currency-node / currency-cli is a credential. */
  clientCertRoles: boolean;
  /** With certificate roles and tokens: `either` credential suffices (default) or `both` are needed. */
  require?: AuthRequire;
}

export type AuthRequire = 'either' | 'both';

export const CONTROLLER_AUTH_VARS = {
  node: { tokens: 'CONTROLLER_NODE_TOKEN', file: 'CONTROLLER_NODE_TOKENS_FILE' },
  cli: { tokens: 'CONTROLLER_CLI_TOKEN', file: 'CONTROLLER_CLI_TOKENS_FILE' },
  certRoles: 'CONTROLLER_TLS_CLIENT_CERT_ROLES',
  require: 'CONTROLLER_AUTH_REQUIRE',
} as const;

function blankToUndefined(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function readTokenSource(env: Env, role: PeerRole): TokenSourceConfig {
  const vars = CONTROLLER_AUTH_VARS[role];
  const inline = blankToUndefined(env[vars.tokens]);
  const tokens = inline === undefined ? [] : inline.split(',').map((t) => t.trim());
  for (const t of tokens) {
    const problem = tokenProblem(t);
    if (problem) throw new ConfigError(vars.tokens, `invalid value: ${problem}`);
  }
  const file = blankToUndefined(env[vars.file]);
  if (file !== undefined) {
    try {
      readTokensFile(file, role === 'node');
    } catch (err) {
      throw new ConfigError(vars.file, `"${file}": ${fileProblem(err)}`);
    }
  }
  return { tokens, ...(file !== undefined ? { file } : {}) };
}

const hasTokens = (s: TokenSourceConfig) => s.tokens.length > 0 || s.file !== undefined;

/**
 * Controller authentication from the environment; undefined when off (no tokens and no
 * certificate roles: the local default). Once on, both roles need a way in, otherwise no
 * node (or no CLI) could ever connect.
 */
export function readControllerAuthConfig(
  env: Env,
  mutualTls: boolean,
): ControllerAuthConfig | undefined {
  const node = readTokenSource(env, 'node');
  const cli = readTokenSource(env, 'cli');
  const rawRoles = blankToUndefined(env[CONTROLLER_AUTH_VARS.certRoles]) ?? 'false';
  if (!['true', 'false'].includes(rawRoles))
    throw new ConfigError(
      CONTROLLER_AUTH_VARS.certRoles,
      `invalid value "${rawRoles}": must be true or false`,
    );
  const clientCertRoles = rawRoles === 'true';
  if (clientCertRoles && !mutualTls)
    throw new ConfigError(
      CONTROLLER_AUTH_VARS.certRoles,
      'needs mutual TLS: set CONTROLLER_TLS_CLIENT_CA_FILE (and the server certificate) too',
    );
  const require = blankToUndefined(env[CONTROLLER_AUTH_VARS.require]) ?? 'either';
  if (require !== 'either' && require !== 'both')
    throw new ConfigError(
      CONTROLLER_AUTH_VARS.require,
      `invalid value "${require}": must be either or both`,
    );
  if (require === 'both' && !(clientCertRoles && hasTokens(node) && hasTokens(cli)))
    throw new ConfigError(
      CONTROLLER_AUTH_VARS.require,
      'both needs certificate roles (CONTROLLER_TLS_CLIENT_CERT_ROLES=true, with mutual TLS) and ' +
        'node and CLI tokens (CONTROLLER_NODE_TOKENS_FILE, CONTROLLER_CLI_TOKENS_FILE)',
    );
  if (!clientCertRoles && !hasTokens(node) && !hasTokens(cli)) return undefined;
  if (!clientCertRoles) {
    for (const [role, other] of [
      ['node', 'cli'],
      ['cli', 'node'],
    ] as const) {
      if (!hasTokens({ node, cli }[role]))
        throw new ConfigError(
          CONTROLLER_AUTH_VARS[role].file,
          `is required (or ${CONTROLLER_AUTH_VARS[role].tokens}) when ${other} tokens are set: ` +
            `otherwise no ${role === 'node' ? 'node' : 'CLI'} could connect`,
        );
    }
  }
  return { node, cli, clientCertRoles, require };
}

export type AuthFailureReason = 'missing' | 'invalid' | 'wrong_role' | 'uuid_not_allowed';
/** Every reason, so that each counter series exists from the start at 0. */
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = [
  'missing',
  'invalid',
  'wrong_role',
  'uuid_not_allowed',
];

export type AuthDecision =
  | {
      ok: true;
      role?: PeerRole;
      via: 'off' | 'token' | 'certificate' | 'token+certificate';
      /** The node UUIDs the presented node credentials may claim; absent: any. */
      uuids?: ReadonlySet<string>;
      /** UUIDs token lines bind to the presented token itself (see TokenSet.lookup). */
      ownTokenUuids?: ReadonlySet<string>;
    }
  | {
      ok: false;
      code: grpc.status.UNAUTHENTICATED | grpc.status.PERMISSION_DENIED;
      reason: Exclude<AuthFailureReason, 'uuid_not_allowed'>;
      message: string;
    };

/** What a peer presented when it opened a stream. */
export interface Presented {
  /** Every `authorization` metadata value. */
  authorization: readonly (string | Buffer)[];
  /** Subject OUs of a verified client certificate (empty without one). */
  certOus: readonly string[];
  /** Node UUIDs the client certificate carries (certNodeUuids); empty: not bound. */
  certUuids?: readonly string[];
}

const ROLE_NAME: Record<PeerRole, string> = { node: 'node', cli: 'CLI' };

/**
 * Decides whether a peer may open `service`'s stream. A credential that is presented and
 * wrong is UNAUTHENTICATED even if another one would pass; no credential at all is
 * UNAUTHENTICATED; a good credential of the other role is PERMISSION_DENIED. With `both`,
 * a token and a certificate of the service's role are needed. Every presented node
 * credential that is bound to UUIDs narrows what the stream may claim (the intersection).
 */
export function authorize(
  service: PeerRole,
  presented: Presented,
  tokens: Record<PeerRole, TokenSet> | undefined,
  clientCertRoles: boolean,
  require: AuthRequire = 'either',
): AuthDecision {
  if (!tokens && !clientCertRoles) return { ok: true, via: 'off' };
  const byToken = new Set<PeerRole>();
  let tokenUuids: ReadonlySet<string> | undefined;
  let ownTokenUuids: ReadonlySet<string> | undefined;
  if (tokens && presented.authorization.length > 0) {
    if (presented.authorization.length > 1)
      return refuse('invalid', 'more than one authorization header');
    const raw = presented.authorization[0]!;
    const m = /^Bearer ([^\s]+)$/i.exec(typeof raw === 'string' ? raw.trim() : '');
    if (!m) return refuse('invalid', 'authorization metadata is not "Bearer <token>"');
    const token = m[1]!;
    // Check both sets every time: how long this takes says nothing about which one matched.
    const asNode = tokens.node.lookup(token);
    const asCli = tokens.cli.matches(token);
    if (!asNode && !asCli) return refuse('invalid', 'the token is not valid');
    if (asNode) byToken.add('node');
    if (asCli) byToken.add('cli');
    tokenUuids = asNode?.uuids;
    ownTokenUuids = asNode?.own;
  }
  const byCert = new Set<PeerRole>(
    clientCertRoles ? PEER_ROLES.filter((r) => presented.certOus.includes(CERT_ROLE_OU[r])) : [],
  );
  const hasToken = byToken.has(service);
  const hasCert = byCert.has(service);
  const admitted = require === 'both' ? hasToken && hasCert : hasToken || hasCert;
  if (admitted) {
    const bound: ReadonlySet<string>[] = [];
    if (service === 'node' && hasToken && tokenUuids) bound.push(tokenUuids);
    if (service === 'node' && hasCert && (presented.certUuids ?? []).length > 0)
      bound.push(new Set(presented.certUuids));
    const uuids = bound.reduce<ReadonlySet<string> | undefined>(
      (acc, b) => (acc ? new Set([...acc].filter((u) => b.has(u))) : b),
      undefined,
    );
    const via = hasToken && hasCert ? 'token+certificate' : hasToken ? 'token' : 'certificate';
    return {
      ok: true,
      role: service,
      via,
      ...(uuids ? { uuids } : {}),
      ...(service === 'node' && hasToken && ownTokenUuids?.size ? { ownTokenUuids } : {}),
    };
  }
  // A credential of the other role where this role's was needed: the peer is known, not allowed.
  const other = [...(hasToken ? [] : byToken), ...(hasCert ? [] : byCert)][0];
  if (other)
    return {
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      reason: 'wrong_role',
      message: `a ${ROLE_NAME[other]} credential cannot open the ${ROLE_NAME[service]} service`,
    };
  if (require === 'both')
    return refuse(
      'missing',
      `both credentials are required: ${hasToken ? `a client certificate with OU=${CERT_ROLE_OU[service]}` : 'send "authorization: Bearer <token>"'}`,
    );
  return refuse(
    'missing',
    tokens
      ? 'no credentials: send "authorization: Bearer <token>"'
      : `no credentials: a client certificate with OU=${CERT_ROLE_OU[service]} is required`,
  );
}

function refuse(reason: 'missing' | 'invalid', message: string): AuthDecision {
  return { ok: false, code: grpc.status.UNAUTHENTICATED, reason, message };
}

/** Subject OUs of a peer certificate as Node reports them (a string or a list). */
export function certOus(subject: { OU?: string | string[] } | undefined): string[] {
  const ou = subject?.OU;
  if (ou === undefined) return [];
  return Array.isArray(ou) ? ou : [ou];
}

/** URI SAN prefix that names a node's UUID in its certificate (SPIFFE style). */
export const NODE_SPIFFE_PREFIX = 'spiffe://currency-nodes/node/';

/**
 * The node UUIDs a client certificate carries: its URI SANs `spiffe://currency-nodes/node/<uuid>`,
 * else its CN when that is a UUID; empty when it carries none (the certificate is not
 * bound). A malformed tail is kept as it is, so it matches no claim instead of unbinding.
 */
export function certNodeUuids(
  cert: { subject?: { CN?: string | string[] }; subjectaltname?: string } | undefined,
): string[] {
  const uuids: string[] = [];
  // Node writes SANs as "DNS:a, URI:b"; values with special characters come JSON-quoted.
  for (const part of (cert?.subjectaltname ?? '').split(/,\s*/)) {
    const uri = /^URI:"?([^"]*)"?$/.exec(part)?.[1];
    if (uri?.startsWith(NODE_SPIFFE_PREFIX))
      uuids.push(uri.slice(NODE_SPIFFE_PREFIX.length).toLowerCase());
  }
  if (uuids.length > 0) return uuids;
  const cn = cert?.subject?.CN;
  const cns = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  return cns.length === 1 && UUID_PATTERN.test(cns[0]!) ? [cns[0]!.toLowerCase()] : [];
}

// ------------------------------------------------------------------ client side

/** A client's credential: a token given inline, or a file read again on every connect. */
export type ClientTokenConfig = { token: string } | { file: string };

/** `NODE_TOKEN` / `NODE_TOKEN_FILE` (or `CLI_*`): at most one; undefined when neither is set. */
export function readClientTokenConfig(
  raw: { token?: string; file?: string },
  names: { token: string; file: string },
): ClientTokenConfig | undefined {
  const token = blankToUndefined(raw.token);
  const file = blankToUndefined(raw.file);
  if (token !== undefined && file !== undefined)
    throw new ConfigError(names.file, `set either ${names.token} or ${names.file}, not both`);
  if (token !== undefined) {
    const problem = tokenProblem(token);
    if (problem) throw new ConfigError(names.token, `invalid value: ${problem}`);
    return { token };
  }
  if (file !== undefined) {
    try {
      readClientToken({ file });
    } catch (err) {
      throw new ConfigError(names.file, `"${file}": ${fileProblem(err)}`);
    }
    return { file };
  }
  return undefined;
}

export function readClientTokenFromEnv(
  env: Env,
  prefix: 'NODE' | 'CLI',
): ClientTokenConfig | undefined {
  const names = { token: `${prefix}_TOKEN`, file: `${prefix}_TOKEN_FILE` };
  return readClientTokenConfig({ token: env[names.token], file: env[names.file] }, names);
}

/** The token to send now: the inline one, or the first token line of the file. */
export function readClientToken(cfg: ClientTokenConfig): string {
  if ('token' in cfg) return cfg.token;
  const first = parseTokens(readFileSync(cfg.file, 'utf8'))[0]!;
  return first;
}

/** Adds `authorization: Bearer <token>` to the metadata of a call. */
export function withToken(md: grpc.Metadata, token: string | undefined): grpc.Metadata {
  if (token !== undefined) md.set(AUTH_METADATA_KEY, `Bearer ${token}`);
  return md;
}

/** True for the statuses a controller uses to refuse credentials. */
export function isAuthStatus(code: number | undefined): boolean {
  return code === grpc.status.UNAUTHENTICATED || code === grpc.status.PERMISSION_DENIED;
}
