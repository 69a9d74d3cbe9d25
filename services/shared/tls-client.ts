/**
 * TLS of a client of the controller (a node, the CLI, a following standby): the settings
 * from variables or flags, checked at start, and the channel credentials, read from the
 * files at each dial.
 */
import * as grpc from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { ConfigError, type Env } from './config';
import { loadPem } from './pem';

export interface ClientTlsConfig {
  /** PEM CA bundle that verifies the controller's certificate. */
  caFile: string;
  /** Client certificate and key, for a controller that requires mutual TLS. */
  certFile?: string;
  keyFile?: string;
  /** Name to verify the controller's certificate against instead of the dialled host. */
  serverName?: string;
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
