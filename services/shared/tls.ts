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
 *
 * PEM loading is pem.ts and a client's TLS tls-client.ts.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { type Scheduler, type TimerHandle, systemScheduler } from './scheduler';
import { ConfigError, type Env } from './config';
import { type PemMaterial, loadPem, problemOf } from './pem';

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
