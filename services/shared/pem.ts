/** PEM files: read, checked (certificates parse, the key matches), named by variable in errors. */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './config';

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

/** A file error as a short phrase for a message naming the file. */
export function problemOf(err: unknown): string {
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
