/**
 * Bearer tokens: the tokens-file format (`TOKEN` or, for nodes, `TOKEN UUID[,UUID...]`),
 * a set compared in constant time, and a set that follows its file. Re-exported by auth.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Scheduler, type TimerHandle, systemScheduler } from './scheduler';
import { UUID_PATTERN } from './config';
/** Short tokens can be guessed; 16 characters of a random source are plenty. */
export const MIN_TOKEN_LENGTH = 16;
/** RFC 6750 token characters (no comma, no white space), so a list can be comma-separated. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]+$/;

/** What is wrong with a token, or undefined when it is acceptable. */
export function tokenProblem(token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH)
    return `a token must be at least ${MIN_TOKEN_LENGTH} characters long`;
  if (!TOKEN_PATTERN.test(token)) return 'a token may hold only letters, digits and . _ ~ + / = -';
  return undefined;
}

/** A token and, when bound, the node UUIDs it may claim (absent: any UUID, the weaker choice). */
export interface TokenEntry {
  token: string;
  uuids?: readonly string[];
}

/**
 * A tokens file: one `TOKEN` or `TOKEN UUID[,UUID...]` per line (the second form only where
 * `bindable`: node tokens); blank lines and lines starting with # are ignored. A token on
 * two lines is refused: which binding was meant is not ours to guess.
 */
export function parseTokenLines(text: string, bindable = true): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const [token, binding, ...rest] = t.split(/\s+/) as [string, string?, ...string[]];
    const at = `line ${i + 1}`;
    const problem = tokenProblem(token);
    if (problem) throw new Error(`${at}: ${problem}`);
    if (rest.length > 0) throw new Error(`${at}: expected TOKEN or TOKEN UUID[,UUID...]`);
    if (seen.has(token)) throw new Error(`${at}: the same token as line ${seen.get(token)}`);
    seen.set(token, i + 1);
    if (binding === undefined) return void entries.push({ token });
    if (!bindable) throw new Error(`${at}: only node tokens can be bound to node UUIDs`);
    const uuids = binding.split(',');
    const bad = uuids.find((u) => !UUID_PATTERN.test(u));
    if (bad !== undefined) throw new Error(`${at}: "${bad}" is not a UUID`);
    entries.push({ token, uuids: uuids.map((u) => u.toLowerCase()) });
  });
  if (entries.length === 0) throw new Error('holds no token');
  return entries;
}

/** The tokens of a tokens file, without their bindings (what a client sends). */
export function parseTokens(text: string): string[] {
  return parseTokenLines(text).map((e) => e.token);
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * A set of accepted tokens, each with its UUID binding. `lookup` compares SHA-256 digests
 * with timingSafeEqual against every token in the set, so its running time does not depend
 * on how much of a guess is right.
 */
export class TokenSet {
  private readonly entries: { digest: Buffer; uuids?: readonly string[] }[];
  private readonly boundUuids: ReadonlySet<string>;
  constructor(tokens: readonly (string | TokenEntry)[]) {
    this.entries = tokens.map((t) =>
      typeof t === 'string' ? { digest: digest(t) } : { digest: digest(t.token), uuids: t.uuids },
    );
    this.boundUuids = new Set(this.entries.flatMap((e) => e.uuids ?? []));
  }
  /** A token line binds this (lower-case) UUID: only a credential bound to it may claim it
   * (and a token given both bare and bound to it, see `lookup`'s `own`). */
  reserves(uuid: string): boolean {
    return this.boundUuids.has(uuid);
  }
  get size(): number {
    return this.entries.length;
  }
  matches(token: string): boolean {
    return this.lookup(token) !== undefined;
  }
  /**
   * undefined when the token is not in the set; else the UUIDs it may claim (`uuids`
   * absent: any). The same token given inline (unbound) and bound in a file is unbound.
   */
  lookup(token: string): { uuids?: ReadonlySet<string>; own: ReadonlySet<string> } | undefined {
    const d = digest(token);
    let found = false;
    let unbound = false;
    const uuids = new Set<string>();
    for (const e of this.entries) {
      if (!timingSafeEqual(d, e.digest)) continue;
      found = true;
      if (e.uuids === undefined) unbound = true;
      else for (const u of e.uuids) uuids.add(u);
    }
    if (!found) return undefined;
    // `own`: the UUIDs lines bind to this very token, which its reservation never bars it from.
    return unbound ? { own: uuids } : { uuids, own: uuids };
  }
}

/** Where one role's tokens come from: an inline list, a file, or both (the union). */
export interface TokenSourceConfig {
  tokens: string[];
  file?: string;
}

export function readTokensFile(file: string, bindable: boolean): TokenEntry[] {
  return parseTokenLines(readFileSync(file, 'utf8'), bindable);
}

export function fileProblem(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err) {
    if (err.code === 'ENOENT') return 'no such file';
    if (err.code === 'EACCES') return 'permission denied';
  }
  return err instanceof Error ? err.message : String(err);
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
      /** `TOKEN UUID[,UUID...]` lines allowed (node tokens; default true). */
      bindable?: boolean;
    },
  ) {
    this.lastRaw = this.readRaw();
    this.set = new TokenSet([
      ...source.tokens,
      ...(source.file !== undefined ? readTokensFile(source.file, opts.bindable ?? true) : []),
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
    let fileTokens: TokenEntry[];
    try {
      if (raw === undefined || raw.startsWith('! ')) throw new Error(raw?.slice(2) ?? 'unreadable');
      fileTokens = parseTokenLines(raw, this.opts.bindable ?? true);
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
