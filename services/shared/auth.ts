/**
 * Peer authentication: bearer tokens in gRPC metadata (`authorization: Bearer <token>`),
 * one set for nodes and one for CLIs, and (with mutual TLS) the role written in the
 * client certificate. The decision is a pure function of what the peer presented, so the
 * rules are unit-tested here and the controller only turns a refusal into a gRPC status.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { type Scheduler, type TimerHandle, systemScheduler } from './scheduler';
import { ConfigError, type Env } from './config';

export type PeerRole = 'node' | 'cli';
export const PEER_ROLES: readonly PeerRole[] = ['node', 'cli'];

export const AUTH_METADATA_KEY = 'authorization';

/** Short tokens can be guessed; 16 characters of a random source are plenty. */
export const MIN_TOKEN_LENGTH = 16;
/** RFC 6750 token characters (no comma, no white space), so a list can be comma-separated. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]+$/;

/** Subject OU that marks a client certificate's role when CONTROLLER_TLS_CLIENT_CERT_ROLES is on. */
export const CERT_ROLE_OU: Record<PeerRole, string> = {
  node: 'currency-node',
  cli: 'currency-cli',
};

/** What is wrong with a token, or undefined when it is acceptable. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH)
    return `a token must be at least ${MIN_TOKEN_LENGTH} characters long`;
  if (!TOKEN_PATTERN.test(token)) return 'a token may hold only letters, digits and . _ ~ + / = -';
  return undefined;
}

/** A tokens file: one token per line; blank lines and lines starting with # are ignored. */
export function parseTokens(text: string): string[] {
  const tokens: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const problem = tokenProblem(t);
    if (problem) throw new Error(`line ${i + 1}: ${problem}`);
    tokens.push(t);
  });
  if (tokens.length === 0) throw new Error('holds no token');
  return tokens;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * A set of accepted tokens. `matches` compares SHA-256 digests with timingSafeEqual against
 * every token in the set, so its running time does not depend on how much of a guess is right.
 */
export class TokenSet {
  private readonly digests: Buffer[];
  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }
  get size(): number {
    return this.digests.length;
  }
  matches(token: string): boolean {
    const d = digest(token);
    let found = 0;
    for (const known of this.digests) found |= timingSafeEqual(d, known) ? 1 : 0;
    return found === 1;
  }
}

// ------------------------------------------------------------------ controller side

/** Where one role's tokens come from: an inline list, a file, or both (the union). */
export interface TokenSourceConfig {
  tokens: string[];
  file?: string;
}

export interface ControllerAuthConfig {
  node: TokenSourceConfig;
  cli: TokenSourceConfig;
  /** With mutual TLS: a client certificate with OU currency-node / currency-cli is a credential. */
  clientCertRoles: boolean;
}

export const CONTROLLER_AUTH_VARS = {
  node: { tokens: 'CONTROLLER_NODE_TOKEN', file: 'CONTROLLER_NODE_TOKENS_FILE' },
  cli: { tokens: 'CONTROLLER_CLI_TOKEN', file: 'CONTROLLER_CLI_TOKENS_FILE' },
  certRoles: 'CONTROLLER_TLS_CLIENT_CERT_ROLES',
} as const;

function blankToUndefined(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function readTokensFile(file: string): string[] {
  return parseTokens(readFileSync(file, 'utf8'));
}

function fileProblem(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) {
    if (err.code === 'ENOENT') return 'no such file';
    if (err.code === 'EACCES') return 'permission denied';
  }
  return err instanceof Error ? err.message : String(err);
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
      readTokensFile(file);
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
  return { node, cli, clientCertRoles };
}

export type ReloadOutcome =
  { outcome: 'loaded'; count: number } | { outcome: 'failed'; problem: string };

/**
 * One role's accepted tokens: the inline ones plus the file's, the file re-read every
 * `intervalMs`. A file that turns bad (missing, empty, a short token) is reported and the
 * last good set stays in force, so a botched edit does not lock everyone out.
 */
export class ReloadingTokens {
  private set: TokenSet;
  private lastRaw?: string;
  private timer?: TimerHandle;
  private closed = false;

  constructor(
    private readonly source: TokenSourceConfig,
    private readonly opts: {
      intervalMs: number;
      clock?: Scheduler;
      onReload?: (e: ReloadOutcome) => void;
    },
  ) {
    this.lastRaw = this.readRaw();
    this.set = new TokenSet([
      ...source.tokens,
      ...(source.file !== undefined ? readTokensFile(source.file) : []),
    ]);
  }

  private readRaw(): string | undefined {
    if (this.source.file === undefined) return undefined;
    try {
      return readFileSync(this.source.file, 'utf8');
    } catch (err) {
      return `! ${fileProblem(err)}`;
    }
  }

  current(): TokenSet {
    return this.set;
  }

  /** Re-reads the file once; swaps the set when it changed and parses. */
  check(): void {
    if (this.source.file === undefined || this.closed) return;
    const raw = this.readRaw();
    if (raw === this.lastRaw) return;
    this.lastRaw = raw;
    let fileTokens: string[];
    try {
      if (raw === undefined || raw.startsWith('! ')) throw new Error(raw?.slice(2) ?? 'unreadable');
      fileTokens = parseTokens(raw);
    } catch (err) {
      this.opts.onReload?.({ outcome: 'failed', problem: fileProblem(err) });
      return;
    }
    this.set = new TokenSet([...this.source.tokens, ...fileTokens]);
    this.opts.onReload?.({ outcome: 'loaded', count: this.set.size });
  }

  /** Starts polling the file (nothing to do without one). */
  start(): this {
    if (this.source.file === undefined || this.closed) return this;
    const clock = this.opts.clock ?? systemScheduler;
    const tick = () => {
      this.timer = undefined;
      this.check();
      if (!this.closed) this.timer = clock.setTimeout(tick, this.opts.intervalMs);
    };
    this.timer = clock.setTimeout(tick, this.opts.intervalMs);
    return this;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) (this.opts.clock ?? systemScheduler).clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export type AuthFailureReason = 'missing' | 'invalid' | 'wrong_role';
export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = [
  'missing',
  'invalid',
  'wrong_role',
];

export type AuthDecision =
  | { ok: true; role?: PeerRole; via: 'off' | 'token' | 'certificate' }
  | {
      ok: false;
      code: grpc.status.UNAUTHENTICATED | grpc.status.PERMISSION_DENIED;
      reason: AuthFailureReason;
      message: string;
    };

/** What a peer presented when it opened a stream. */
export interface Presented {
  /** Every `authorization` metadata value. */
  authorization: readonly (string | Buffer)[];
  /** Subject OUs of a verified client certificate (empty without one). */
  certOus: readonly string[];
}

const ROLE_NAME: Record<PeerRole, string> = { node: 'node', cli: 'CLI' };

/**
 * Decides whether a peer may open `service`'s stream. A credential that is presented and
 * wrong is UNAUTHENTICATED even if another one would pass; no credential at all is
 * UNAUTHENTICATED; a good credential of the other role is PERMISSION_DENIED.
 */
export function authorize(
  service: PeerRole,
  presented: Presented,
  tokens: Record<PeerRole, TokenSet> | undefined,
  clientCertRoles: boolean,
): AuthDecision {
  if (!tokens && !clientCertRoles) return { ok: true, via: 'off' };
  const roles = new Map<PeerRole, 'token' | 'certificate'>();
  if (tokens && presented.authorization.length > 0) {
    if (presented.authorization.length > 1)
      return refuse('invalid', 'more than one authorization header');
    const raw = presented.authorization[0]!;
    const m = /^Bearer ([^\s]+)$/i.exec(typeof raw === 'string' ? raw.trim() : '');
    if (!m) return refuse('invalid', 'authorization metadata is not "Bearer <token>"');
    const token = m[1]!;
    // Check both sets every time: how long this takes says nothing about which one matched.
    const asNode = tokens.node.matches(token);
    const asCli = tokens.cli.matches(token);
    if (!asNode && !asCli) return refuse('invalid', 'the token is not valid');
    if (asNode) roles.set('node', 'token');
    if (asCli) roles.set('cli', 'token');
  }
  if (clientCertRoles) {
    for (const role of PEER_ROLES) {
      if (presented.certOus.includes(CERT_ROLE_OU[role]) && !roles.has(role))
        roles.set(role, 'certificate');
    }
  }
  if (roles.size === 0)
    return refuse(
      'missing',
      tokens
        ? 'no credentials: send "authorization: Bearer <token>"'
        : `no credentials: a client certificate with OU=${CERT_ROLE_OU[service]} is required`,
    );
  const via = roles.get(service);
  if (via) return { ok: true, role: service, via };
  const other = [...roles.keys()][0]!;
  return {
    ok: false,
    code: grpc.status.PERMISSION_DENIED,
    reason: 'wrong_role',
    message: `a ${ROLE_NAME[other]} credential cannot open the ${ROLE_NAME[service]} service`,
  };
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
