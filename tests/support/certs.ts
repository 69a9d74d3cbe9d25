/**
 * Throwaway certificates made with the system's openssl in a temp dir: a CA, and leaf
 * certificates it signs (server and client usage, SANs for loopback). Nothing here is
 * meant to outlive a test file; `remove()` deletes the directory.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
  /** Serial number as openssl prints it (upper-case hex). */
  serial: string;
}

export interface TestCa {
  /** PEM file of the CA certificate. */
  cert: string;
  key: string;
  /** Signs a new leaf; `ou` marks a role (currency-node, currency-cli). */
  issue(name: string, opts?: { ou?: string; dns?: string[] }): CertFiles;
}

export interface CertDir {
  readonly dir: string;
  path(name: string): string;
  newCa(name: string): TestCa;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

export function makeCertDir(): CertDir {
  const dir = mkdtempSync(join(tmpdir(), 'currency-certs-'));
  const path = (name: string) => join(dir, name);
  return {
    dir,
    path,
    remove: () => rmSync(dir, { recursive: true, force: true }),
    newCa(caName) {
      const cert = path(`${caName}.pem`);
      const key = path(`${caName}.key`);
      openssl(
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          key,
          '-out',
          cert,
          '-days',
          '2',
          '-subj',
          `/CN=${caName}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
      return {
        cert,
        key,
        issue(name, opts = {}) {
          const leafKey = path(`${name}.key`);
          const leafCsr = path(`${name}.csr`);
          const leafCert = path(`${name}.pem`);
          const ext = path(`${name}.ext`);
          const dns = ['localhost', ...(opts.dns ?? [])].map((d) => `DNS:${d}`).join(',');
          writeFileSync(
            ext,
            `subjectAltName=${dns},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`,
          );
          const subj = `${opts.ou ? `/OU=${opts.ou}` : ''}/CN=${name}`;
          openssl(
            [
              'req',
              '-newkey',
              'ec',
              '-pkeyopt',
              'ec_paramgen_curve:P-256',
              '-nodes',
              '-keyout',
              leafKey,
              '-out',
              leafCsr,
              '-subj',
              subj,
            ],
            dir,
          );
          // Leading 1: no leading zero and the high bit clear, so Node prints it the same.
          const serial = `1${randomBytes(8).toString('hex').toUpperCase().slice(1)}`;
          openssl(
            [
              'x509',
              '-req',
              '-in',
              leafCsr,
              '-CA',
              cert,
              '-CAkey',
              key,
              '-set_serial',
              `0x${serial}`,
              '-days',
              '2',
              '-out',
              leafCert,
              '-extfile',
              ext,
            ],
            dir,
          );
          return { cert: leafCert, key: leafKey, serial };
        },
      };
    },
  };
}
