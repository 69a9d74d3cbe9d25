/**
 * TLS for the gRPC port: PEM files named by variables, checked at start (a bad file stops
 * the program with exit 2 naming the variable), and on the controller re-read while it
 * runs so that a rotated certificate is served to new connections without a restart.
 *
 * Reload goes through grpc-js's own hook (`experimental.createCertificateProviderServerCredentials`
 * with a CertificateProvider): the server calls `setSecureContext` on its listening
 * socket whenever the provider publishes. Our provider publishes only a set of files that
 * parses and whose key matches its certificate, so a half-written file during a rotation
 * keeps the previous certificate instead of taking the port down (grpc-js's own
 * FileWatcherCertificateProvider would publish `null` and drop every new connection).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { type Scheduler, type TimerHandle, systemScheduler } from './scheduler';
import { ConfigError, type Env } from './config';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaCertificateUpdateListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;

export interface ServerTlsConfig {
  /** PEM certificate chain served to clients (leaf first). */
  certFile: string;
  keyFile: string;
  /** PEM CA bundle; set means mutual TLS: every client must present a certificate it signed. */
  clientCaFile?: string;
}

export interface ClientTlsConfig {
  /** PEM CA bundle that verifies the controller's certificate. */
  caFile: string;
  /** Client certificate and key, for a controller that requires mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Name to verify the controller's certificate against instead of the dialled host. */
  serverName?: string;
}

/** What a set of PEM files holds once checked. */
export interface PemMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, for logs. */
  fingerprint256?: string;
  serialNumber?: string;
  validTo?: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM bundle; throws when there is none or one does not parse. */
export function parseCertificates(pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERT) ?? [];
  if (blocks.length === 0)
    throw new Error('no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  return blocks.map((b) => new X509Certificate(b));
}

function readPem(file: string): Buffer {
  const buf = readFileSync(file);
  if (buf.length === 0) throw new Error('file is empty');
  return buf;
}

function problemOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && err.code === 'ENOENT')
    return 'no such file';
  if (err && typeof err === 'object' && 'code' in err && err.code === 'EACCES')
    return 'permission denied';
  return err instanceof Error ? err.message : String(err);
}

/** Names of the variables a set of files came from, so every error names one. */
export interface PemVariables {
  cert?: string;
  key?: string;
  ca?: string;
}

/**
 * Reads and checks PEM files: the certificate chain parses, the key parses and belongs to
 * the leaf certificate, the CA bundle parses. Throws a ConfigError naming the variable.
 */
export function loadPem(
  files: { certFile?: string; keyFile?: string; caFile?: string },
  vars: PemVariables,
): PemMaterial {
  const out: PemMaterial = {};
  const step = <T>(variable: string | undefined, file: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new ConfigError(variable ?? file, `"${file}": ${problemOf(err)}`);
    }
  };
  if (files.certFile !== undefined) {
    const file = files.certFile;
    out.cert = step(vars.cert, file, () => readPem(file));
    const leaf = step(vars.cert, file, () => parseCertificates(out.cert!)[0]!);
    out.fingerprint256 = leaf.fingerprint256;
    out.serialNumber = leaf.serialNumber;
    out.validTo = leaf.validTo;
    if (files.keyFile !== undefined) {
      const keyFile = files.keyFile;
      out.key = step(vars.key, keyFile, () => readPem(keyFile));
      const key = step(vars.key, keyFile, () => createPrivateKey(out.key!));
      if (!leaf.checkPrivateKey(key))
        throw new ConfigError(
          vars.key ?? keyFile,
          `"${keyFile}": the private key does not belong to the certificate in ${vars.cert ?? files.certFile}`,
        );
    }
  }
  if (files.caFile !== undefined) {
    const file = files.caFile;
    out.ca = step(vars.ca, file, () => readPem(file));
    step(vars.ca, file, () => parseCertificates(out.ca!));
  }
  return out;
}

function optionalPath(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

export const CONTROLLER_TLS_VARS = {
  cert: 'CONTROLLER_TLS_CERT_FILE',
  key: 'CONTROLLER_TLS_KEY_FILE',
  ca: 'CONTROLLER_TLS_CLIENT_CA_FILE',
} as const;

/** Controller TLS from the environment; undefined when off (the local default). */
export function readServerTlsConfig(env: Env): ServerTlsConfig | undefined {
  const certFile = optionalPath(env, CONTROLLER_TLS_VARS.cert);
  const keyFile = optionalPath(env, CONTROLLER_TLS_VARS.key);
  const clientCaFile = optionalPath(env, CONTROLLER_TLS_VARS.ca);
  if (certFile === undefined && keyFile === undefined) {
    if (clientCaFile !== undefined)
      throw new ConfigError(
        CONTROLLER_TLS_VARS.ca,
        `mutual TLS needs TLS: set ${CONTROLLER_TLS_VARS.cert} and ${CONTROLLER_TLS_VARS.key} too`,
      );
    return undefined;
  }
  if (certFile === undefined)
    throw new ConfigError(
      CONTROLLER_TLS_VARS.cert,
      `is required when ${CONTROLLER_TLS_VARS.key} is set`,
    );
  if (keyFile === undefined)
    throw new ConfigError(
      CONTROLLER_TLS_VARS.key,
      `is required when ${CONTROLLER_TLS_VARS.cert} is set`,
    );
  loadPem({ certFile, keyFile, caFile: clientCaFile }, CONTROLLER_TLS_VARS);
  return { certFile, keyFile, ...(clientCaFile !== undefined ? { clientCaFile } : {}) };
}

/** Variable names of a client program's TLS settings: `NODE_TLS_*` or `CLI_TLS_*`. */
export function clientTlsVars(prefix: 'NODE' | 'CLI') {
  return {
    ca: `${prefix}_TLS_CA_FILE`,
    cert: `${prefix}_TLS_CERT_FILE`,
    key: `${prefix}_TLS_KEY_FILE`,
    serverName: `${prefix}_TLS_SERVER_NAME`,
  };
}

/**
 * Client TLS from raw values (environment, or CLI flags that override it); undefined when
 * off. TLS is on when a CA file is set; a client certificate needs its key and a CA.
 * `names` says what to call each value in an error (a variable or a flag).
 */
export function readClientTlsConfig(
  raw: { ca?: string; cert?: string; key?: string; serverName?: string },
  names: { ca: string; cert: string; key: string; serverName: string },
): ClientTlsConfig | undefined {
  const blank = (s?: string) => (s === undefined || s.trim() === '' ? undefined : s.trim());
  const caFile = blank(raw.ca);
  const certFile = blank(raw.cert);
  const keyFile = blank(raw.key);
  const serverName = blank(raw.serverName);
  if (caFile === undefined) {
    const stray =
      certFile !== undefined
        ? names.cert
        : keyFile !== undefined
          ? names.key
          : serverName !== undefined
            ? names.serverName
            : undefined;
    if (stray !== undefined)
      throw new ConfigError(
        names.ca,
        `is required when ${stray} is set (TLS is on only with a CA to verify the controller)`,
      );
    return undefined;
  }
  if (certFile !== undefined && keyFile === undefined)
    throw new ConfigError(names.key, `is required when ${names.cert} is set`);
  if (keyFile !== undefined && certFile === undefined)
    throw new ConfigError(names.cert, `is required when ${names.key} is set`);
  if (serverName !== undefined && !/^[A-Za-z0-9.*-]{1,253}$/.test(serverName))
    throw new ConfigError(names.serverName, `invalid value "${serverName}": must be a DNS name`);
  loadPem({ certFile, keyFile, caFile }, { cert: names.cert, key: names.key, ca: names.ca });
  return {
    caFile,
    ...(certFile !== undefined ? { certFile, keyFile } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
}

export function readClientTlsFromEnv(
  env: Env,
  prefix: 'NODE' | 'CLI',
): ClientTlsConfig | undefined {
  const names = clientTlsVars(prefix);
  return readClientTlsConfig(
    {
      ca: env[names.ca],
      cert: env[names.cert],
      key: env[names.key],
      serverName: env[names.serverName],
    },
    names,
  );
}

/**
 * Channel credentials for a client, read from the files now (a node calls this on every
 * connect, so a rotated client certificate or CA is picked up at the next reconnect).
 */
export function clientCredentials(tls: ClientTlsConfig | undefined): {
  credentials: grpc.ChannelCredentials;
  options: ChannelOptions;
} {
  if (!tls) return { credentials: grpc.credentials.createInsecure(), options: {} };
  dropIpServernameWarning();
  const pem = loadPem(tls, {});
  return {
    credentials: grpc.credentials.createSsl(pem.ca, pem.key ?? null, pem.cert ?? null),
    options: tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName } : {},
  };
}

let ipWarningDropped = false;

/**
 * grpc-js sends the dialled host as the TLS server name even when it is an IP address,
 * and Node then prints DEP0123 on stderr. The certificate is still checked against its IP
 * SANs, so the line only alarms operators (and breaks clean stderr); drop that one warning.
 */
function dropIpServernameWarning(): void {
  if (ipWarningDropped) return;
  ipWarningDropped = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, typeOrOptions, code] = args;
    const c =
      typeof typeOrOptions === 'object' && typeOrOptions !== null
        ? (typeOrOptions as { code?: string }).code
        : code;
    if (c === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}

export type ReloadEvent =
  | { outcome: 'loaded'; fingerprint256?: string; serialNumber?: string; validTo?: string }
  | { outcome: 'failed'; problem: string };

/**
 * A grpc-js CertificateProvider over PEM files, re-read every `intervalMs` while the
 * server listens. Publishes only a complete, consistent set that differs from the last;
 * a set that fails its checks is reported and the last good one stays in use.
 */
export class ReloadingPemProvider implements CertificateProvider {
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private current: PemMaterial;
  private lastRaw: string;
  private timer?: TimerHandle;
  private closed = false;

  constructor(
    private readonly tls: ServerTlsConfig,
    private readonly opts: {
      intervalMs: number;
      clock?: Scheduler;
      onReload?: (e: ReloadEvent) => void;
    },
  ) {
    this.current = this.load();
    this.lastRaw = this.rawKey();
  }

  private load(): PemMaterial {
    return loadPem(
      { certFile: this.tls.certFile, keyFile: this.tls.keyFile, caFile: this.tls.clientCaFile },
      CONTROLLER_TLS_VARS,
    );
  }

  /** Cheap change detection: the raw bytes of every file, read again. */
  private rawKey(): string {
    return [this.tls.certFile, this.tls.keyFile, this.tls.clientCaFile]
      .map((f) => {
        if (f === undefined) return '';
        try {
          return readFileSync(f).toString('base64');
        } catch (err) {
          return `! ${problemOf(err)}`;
        }
      })
      .join('|');
  }

  /** The certificate being served now. */
  material(): PemMaterial {
    return this.current;
  }

  /** Reads the files once; publishes when they changed and pass the checks. */
  check(): void {
    if (this.closed) return;
    const raw = this.rawKey();
    if (raw === this.lastRaw) return;
    let next: PemMaterial;
    try {
      next = this.load();
    } catch (err) {
      // Report each bad state once, not on every poll; keep serving the last good set.
      this.lastRaw = raw;
      this.opts.onReload?.({ outcome: 'failed', problem: problemOf(err) });
      return;
    }
    this.lastRaw = raw;
    this.current = next;
    this.publish();
    this.opts.onReload?.({
      outcome: 'loaded',
      fingerprint256: next.fingerprint256,
      serialNumber: next.serialNumber,
      validTo: next.validTo,
    });
  }

  private publish(): void {
    const { cert, key, ca } = this.current;
    for (const l of this.identityListeners) l({ certificate: cert!, privateKey: key! });
    if (ca) for (const l of this.caListeners) l({ caCertificate: ca });
  }

  private schedule(): void {
    const clock = this.opts.clock ?? systemScheduler;
    if (this.timer !== undefined || this.closed) return;
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      this.check();
      if (this.caListeners.size + this.identityListeners.size > 0) this.schedule();
    }, this.opts.intervalMs);
  }

  private unschedule(): void {
    if (this.caListeners.size + this.identityListeners.size > 0) return;
    if (this.timer !== undefined) (this.opts.clock ?? systemScheduler).clearTimeout(this.timer);
    this.timer = undefined;
  }

  // grpc-js adds its listeners while it sets up the server; the first value must arrive
  // after that call returns (it only starts watching once both listeners are in).
  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    const ca = this.current.ca;
    if (ca)
      process.nextTick(() => this.caListeners.has(listener) && listener({ caCertificate: ca }));
    this.schedule();
  }

  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.unschedule();
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    const { cert, key } = this.current;
    process.nextTick(
      () =>
        this.identityListeners.has(listener) && listener({ certificate: cert!, privateKey: key! }),
    );
    this.schedule();
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.unschedule();
  }

  close(): void {
    this.closed = true;
    this.caListeners.clear();
    this.identityListeners.clear();
    this.unschedule();
  }
}

/** Server credentials that follow the PEM files (TLS, or mutual TLS with a client CA). */
export function reloadingServerCredentials(
  provider: ReloadingPemProvider,
  mutual: boolean,
): grpc.ServerCredentials {
  // grpc-js names its parameters (ca, identity) but passes them on as (identity, ca).
  return grpc.experimental.createCertificateProviderServerCredentials(
    provider,
    mutual ? provider : null,
    mutual,
  );
}
