/**
 * METRICS_WEB_CONFIG_FILE: the Prometheus exporter-toolkit web configuration, so that the
 * metrics and health port is closed the way every Prometheus exporter closes it:
 * `tls_server_config` (server certificate, optional client certificates) and
 * `basic_auth_users` (user -> bcrypt hash). The file is checked at start (a bad one stops
 * the program with exit 2 naming the variable) and re-read while the program runs; a change
 * that does not load is reported and the last good configuration stays in force.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { ConfigError, type Env } from './config';
import { type Scheduler, type TimerHandle, systemScheduler } from './scheduler';
import { loadPem } from './pem';

export const WEB_CONFIG_VARS = {
  file: 'METRICS_WEB_CONFIG_FILE',
  probesOpen: 'METRICS_PROBES_OPEN',
} as const;

/** How often the file (and the files it names) are re-read. */
export const DEFAULT_WEB_CONFIG_RELOAD_MS = 5000;

export interface MetricsWebConfigSettings {
  file: string;
  /** `/healthz` and `/readyz` answer without credentials (kubelet and compose probes). */
  probesOpen: boolean;
  reloadMs: number;
}

/** Go's tls.ClientAuthType names, as exporter-toolkit spells them. */
export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS: Record<string, SecureVersion> = {
  TLS10: 'TLSv1',
  TLS11: 'TLSv1.1',
  TLS12: 'TLSv1.2',
  TLS13: 'TLSv1.3',
};

export interface WebTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  clientAuth: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion?: SecureVersion;
  /** A client certificate must carry one of these SANs (DNS, e-mail, IP or URI). */
  allowedSans?: string[];
}

/** A loaded web configuration: what the HTTP server enforces. */
export interface WebConfig {
  tls?: WebTls;
  /** user -> bcrypt hash; absent: no password asked. */
  users?: ReadonlyMap<string, string>;
}

const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const TOP_KEYS = ['tls_server_config', 'basic_auth_users'];
const TLS_KEYS = [
  'cert_file',
  'key_file',
  'client_ca_file',
  'client_auth_type',
  'min_version',
  'max_version',
  'client_allowed_sans',
];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(where: string, obj: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(obj).find((k) => !allowed.includes(k));
  if (extra !== undefined)
    throw new Error(
      `${where}${extra}: not supported here (supported: ${allowed.map((k) => where + k).join(', ')})`,
    );
}

function str(where: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new Error(`${where}: must be a string`);
  return v;
}

/**
 * Parses and checks a web configuration file: its keys, the TLS files it names (relative
 * paths are relative to the file, as in exporter-toolkit) and the bcrypt hashes. Throws an
 * Error saying what is wrong where.
 */
export function loadWebConfig(file: string): WebConfig {
  const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw new Error('must be a YAML mapping');
  onlyKeys('', doc, TOP_KEYS);
  const out: WebConfig = {};
  const t = doc.tls_server_config;
  if (t !== undefined && t !== null) {
    if (!isObject(t)) throw new Error('tls_server_config: must be a mapping');
    const w = 'tls_server_config.';
    onlyKeys(w, t, TLS_KEYS);
    const path = (k: string) => {
      const p = str(w + k, t[k]);
      return p === undefined ? undefined : resolve(dirname(file), p);
    };
    const certFile = path('cert_file');
    const keyFile = path('key_file');
    const caFile = path('client_ca_file');
    if (certFile === undefined || keyFile === undefined)
      throw new Error(`${w}cert_file and ${w}key_file are both required`);
    const raw = str(w + 'client_auth_type', t.client_auth_type);
    const clientAuth = (raw ??
      (caFile ? 'RequireAndVerifyClientCert' : 'NoClientCert')) as ClientAuthType;
    if (!CLIENT_AUTH_TYPES.includes(clientAuth))
      throw new Error(
        `${w}client_auth_type: "${raw}" is not one of ${CLIENT_AUTH_TYPES.join(', ')}`,
      );
    const verifies = clientAuth.includes('Verify');
    if (verifies && caFile === undefined)
      throw new Error(`${w}client_ca_file is required with client_auth_type ${clientAuth}`);
    if (!verifies && caFile !== undefined)
      throw new Error(
        `${w}client_ca_file is set but client_auth_type ${clientAuth} verifies no client certificate`,
      );
    const version = (k: string) => {
      const v = str(w + k, t[k]);
      if (v === undefined) return undefined;
      const tv = TLS_VERSIONS[v];
      if (!tv)
        throw new Error(`${w}${k}: "${v}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
      return tv;
    };
    const sans = t.client_allowed_sans;
    if (sans !== undefined && (!Array.isArray(sans) || !sans.every((s) => typeof s === 'string')))
      throw new Error(`${w}client_allowed_sans: must be a list of strings`);
    if (sans !== undefined && !verifies)
      throw new Error(`${w}client_allowed_sans needs client certificates that are verified`);
    const pem = loadPem(
      { certFile, keyFile, caFile },
      { cert: `${w}cert_file`, key: `${w}key_file`, ca: `${w}client_ca_file` },
    );
    out.tls = {
      cert: pem.cert!,
      key: pem.key!,
      ...(pem.ca ? { ca: pem.ca } : {}),
      clientAuth,
      minVersion: version('min_version') ?? 'TLSv1.2',
      ...(version('max_version') ? { maxVersion: version('max_version') } : {}),
      ...(sans !== undefined ? { allowedSans: sans as string[] } : {}),
    };
  }
  const u = doc.basic_auth_users;
  if (u !== undefined && u !== null) {
    if (!isObject(u)) throw new Error('basic_auth_users: must be a mapping of user: bcrypt hash');
    const users = new Map<string, string>();
    for (const [user, hash] of Object.entries(u)) {
      if (user.includes(':')) throw new Error(`basic_auth_users: user "${user}" may not hold ":"`);
      if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash))
        throw new Error(`basic_auth_users.${user}: must be a bcrypt hash ($2y$10$...)`);
      users.set(user, hash);
    }
    if (users.size > 0) out.users = users;
  }
  return out;
}

function problemOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && err.code === 'ENOENT')
    return 'no such file';
  if (err && typeof err === 'object' && 'code' in err && err.code === 'EACCES')
    return 'permission denied';
  return err instanceof Error ? err.message : String(err);
}

/** METRICS_WEB_CONFIG_FILE and METRICS_PROBES_OPEN; undefined when no file is set. */
export function readMetricsWebConfig(env: Env): MetricsWebConfigSettings | undefined {
  const rawOpen = env[WEB_CONFIG_VARS.probesOpen]?.trim() || 'false';
  if (rawOpen !== 'true' && rawOpen !== 'false')
    throw new ConfigError(
      WEB_CONFIG_VARS.probesOpen,
      `invalid value "${rawOpen}": must be true or false`,
    );
  const file = env[WEB_CONFIG_VARS.file]?.trim();
  if (!file) return undefined;
  try {
    loadWebConfig(file);
  } catch (err) {
    throw new ConfigError(WEB_CONFIG_VARS.file, `"${file}": ${problemOf(err)}`);
  }
  return { file, probesOpen: rawOpen === 'true', reloadMs: DEFAULT_WEB_CONFIG_RELOAD_MS };
}

export type WebConfigReload =
  { outcome: 'loaded'; config: WebConfig } | { outcome: 'failed'; problem: string };

/**
 * The web configuration in force: loaded at construction (throws when it does not load),
 * re-read every `reloadMs`; a change that loads replaces it, one that does not is
 * reported once and ignored.
 */
export class ReloadingWebConfig {
  private config: WebConfig;
  private lastRaw: string;
  private timer?: TimerHandle;
  private closed = false;

  constructor(
    private readonly settings: MetricsWebConfigSettings,
    private readonly opts: {
      clock?: Scheduler;
      /** May refuse a loaded config by returning a problem (e.g. TLS switched on or off). */
      accept?: (next: WebConfig, current: WebConfig) => string | undefined;
      onReload?: (e: WebConfigReload) => void;
    } = {},
  ) {
    this.config = loadWebConfig(settings.file);
    this.lastRaw = this.rawKey(this.config);
  }

  current(): WebConfig {
    return this.config;
  }

  /** The file and the TLS files it names, read again: changes to any of them count. */
  private rawKey(config: WebConfig): string {
    const read = (f: string) => {
      try {
        return readFileSync(f).toString('base64');
      } catch (err) {
        return `! ${problemOf(err)}`;
      }
    };
    const main = read(this.settings.file);
    const tls = config.tls ? tlsFiles(this.settings.file).map(read) : [];
    return [main, ...tls].join('|');
  }

  check(): void {
    if (this.closed) return;
    const raw = this.rawKey(this.config);
    if (raw === this.lastRaw) return;
    let next: WebConfig;
    try {
      next = loadWebConfig(this.settings.file);
      const problem = this.opts.accept?.(next, this.config);
      if (problem) throw new Error(problem);
    } catch (err) {
      this.lastRaw = raw;
      this.opts.onReload?.({ outcome: 'failed', problem: problemOf(err) });
      return;
    }
    this.config = next;
    this.lastRaw = this.rawKey(next);
    this.opts.onReload?.({ outcome: 'loaded', config: next });
  }

  start(): this {
    const clock = this.opts.clock ?? systemScheduler;
    const tick = () => {
      this.timer = undefined;
      this.check();
      if (!this.closed) this.timer = clock.setTimeout(tick, this.settings.reloadMs);
    };
    if (!this.closed) this.timer = clock.setTimeout(tick, this.settings.reloadMs);
    return this;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) (this.opts.clock ?? systemScheduler).clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The TLS file paths a web config file names now (best effort, for change detection). */
function tlsFiles(file: string): string[] {
  try {
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    const t = isObject(doc) && isObject(doc.tls_server_config) ? doc.tls_server_config : {};
    return ['cert_file', 'key_file', 'client_ca_file']
      .map((k) => t[k])
      .filter((p): p is string => typeof p === 'string' && p !== '')
      .map((p) => resolve(dirname(file), p));
  } catch {
    return [];
  }
}
