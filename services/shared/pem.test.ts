/** PEM files (pem.ts): read and checked, every error naming the variable the file came from. */
import { readFileSync } from 'node:fs';
import { configError } from '../../tests/support/fakes';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../../tests/support/certs';
import { loadPem, parseCertificates } from './pem';

jest.setTimeout(30_000);

let certs: CertDir;
let ca: TestCa;
let server: CertFiles;
let other: CertFiles;

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('ca');
  server = ca.issue('server');
  other = ca.issue('other');
});
afterAll(() => certs.remove());

const VARS = { cert: 'X_CERT', key: 'X_KEY', ca: 'X_CA' };

test('a certificate, its key and a CA load, with the leaf named for logs', () => {
  const pem = loadPem({ certFile: server.cert, keyFile: server.key, caFile: ca.cert }, VARS);
  expect(pem.cert && pem.key && pem.ca).toBeTruthy();
  expect(pem.fingerprint256).toMatch(/^[0-9A-F:]+$/);
});

test('a key that is not the certificate’s is refused, naming the key variable', () => {
  const e = configError(() => loadPem({ certFile: server.cert, keyFile: other.key }, VARS));
  expect(e.variable).toBe('X_KEY');
  expect(e.message).toContain('does not belong to the certificate in X_CERT');
});

test('a missing file, or one with no certificate, names its variable', () => {
  expect(configError(() => loadPem({ caFile: '/nonexistent/ca.pem' }, VARS)).message).toBe(
    'X_CA: "/nonexistent/ca.pem": no such file',
  );
  const e = configError(() => loadPem({ certFile: server.key }, VARS));
  expect(e.variable).toBe('X_CERT');
  expect(e.message).toContain('no PEM certificate');
});

test('parseCertificates takes every certificate of a bundle', () => {
  const bundle = Buffer.concat([readFileSync(server.cert), readFileSync(ca.cert)]);
  expect(parseCertificates(bundle).length).toBeGreaterThanOrEqual(2);
  expect(() => parseCertificates(Buffer.from('nothing'))).toThrow(/no PEM certificate/);
});
