import { copyFileSync, writeFileSync } from 'node:fs';
import { configError, manualClock } from '../../tests/support/fakes';
import { X509Certificate } from 'node:crypto';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../../tests/support/certs';
import type { Scheduler } from './scheduler';
import { loadPem } from './pem';
import { ReloadingPemProvider, type ServerTlsConfig, readServerTlsConfig } from './tls';

jest.setTimeout(30_000);

let certs: CertDir;
let ca: TestCa;
let otherCa: TestCa;
let server: CertFiles;
let server2: CertFiles;

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('ca');
  otherCa = certs.newCa('other-ca');
  server = ca.issue('server');
  server2 = ca.issue('server2');
});
afterAll(() => certs.remove());

describe('controller TLS configuration', () => {
  test('with no TLS variable set the port stays plaintext', () => {
    expect(readServerTlsConfig({})).toBeUndefined();
  });

  test('a certificate and its key turn TLS on; a client CA makes it mutual', () => {
    expect(
      readServerTlsConfig({
        CONTROLLER_TLS_CERT_FILE: server.cert,
        CONTROLLER_TLS_KEY_FILE: server.key,
      }),
    ).toEqual({ certFile: server.cert, keyFile: server.key });
    expect(
      readServerTlsConfig({
        CONTROLLER_TLS_CERT_FILE: server.cert,
        CONTROLLER_TLS_KEY_FILE: server.key,
        CONTROLLER_TLS_CLIENT_CA_FILE: ca.cert,
      }),
    ).toEqual({ certFile: server.cert, keyFile: server.key, clientCaFile: ca.cert });
  });

  test.each<[string, string, () => Record<string, string>, string]>([
    [
      'a certificate without its key',
      'CONTROLLER_TLS_KEY_FILE',
      () => ({ CONTROLLER_TLS_CERT_FILE: server.cert }),
      'is required',
    ],
    [
      'a key without its certificate',
      'CONTROLLER_TLS_CERT_FILE',
      () => ({ CONTROLLER_TLS_KEY_FILE: server.key }),
      'is required',
    ],
    [
      'a client CA without a server certificate',
      'CONTROLLER_TLS_CLIENT_CA_FILE',
      () => ({ CONTROLLER_TLS_CLIENT_CA_FILE: ca.cert }),
      'mutual TLS needs TLS',
    ],
    [
      'a certificate file that does not exist',
      'CONTROLLER_TLS_CERT_FILE',
      () => ({ CONTROLLER_TLS_CERT_FILE: '/nonexistent.pem', CONTROLLER_TLS_KEY_FILE: server.key }),
      'no such file',
    ],
    [
      'a certificate file that holds no certificate',
      'CONTROLLER_TLS_CERT_FILE',
      () => ({ CONTROLLER_TLS_CERT_FILE: server.key, CONTROLLER_TLS_KEY_FILE: server.key }),
      'no PEM certificate',
    ],
    [
      'a key that belongs to another certificate',
      'CONTROLLER_TLS_KEY_FILE',
      () => ({ CONTROLLER_TLS_CERT_FILE: server.cert, CONTROLLER_TLS_KEY_FILE: server2.key }),
      'does not belong to the certificate',
    ],
    [
      'a key file that is not a key',
      'CONTROLLER_TLS_KEY_FILE',
      () => ({ CONTROLLER_TLS_CERT_FILE: server.cert, CONTROLLER_TLS_KEY_FILE: server.cert }),
      'server.pem',
    ],
    [
      'a client CA file that is not PEM',
      'CONTROLLER_TLS_CLIENT_CA_FILE',
      () => ({
        CONTROLLER_TLS_CERT_FILE: server.cert,
        CONTROLLER_TLS_KEY_FILE: server.key,
        CONTROLLER_TLS_CLIENT_CA_FILE: certs.path('server.ext'),
      }),
      'no PEM certificate',
    ],
  ])('%s stops the controller naming %s', (_what, variable, env, says) => {
    const e = configError(() => readServerTlsConfig(env()));
    expect(e.variable).toBe(variable);
    expect(e.message).toContain(says);
  });
});

describe('ReloadingPemProvider', () => {
  const serial = (pem: Buffer) => new X509Certificate(pem).serialNumber;

  function served(tls: ServerTlsConfig, clock: Scheduler, onReload = jest.fn()) {
    const provider = new ReloadingPemProvider(tls, { intervalMs: 1000, clock, onReload });
    const identities: string[] = [];
    const cas: Buffer[] = [];
    const onIdentity = (u: { certificate: Buffer } | null) =>
      identities.push(u ? serial(u.certificate) : 'null');
    const onCa = (u: { caCertificate: Buffer } | null) => u && cas.push(u.caCertificate);
    provider.addIdentityCertificateListener(onIdentity);
    provider.addCaCertificateListener(onCa);
    return { provider, identities, cas, onReload, onIdentity, onCa };
  }

  function liveFiles(from: CertFiles): ServerTlsConfig {
    copyFileSync(from.cert, certs.path('live.pem'));
    copyFileSync(from.key, certs.path('live.key'));
    copyFileSync(ca.cert, certs.path('live-ca.pem'));
    return {
      certFile: certs.path('live.pem'),
      keyFile: certs.path('live.key'),
      clientCaFile: certs.path('live-ca.pem'),
    };
  }

  const tick = () => new Promise((r) => process.nextTick(r));

  test('listeners get the current certificate after they are added, not during', async () => {
    const clock = manualClock();
    const s = served(liveFiles(server), clock);
    expect(s.identities).toEqual([]);
    await tick();
    expect(s.identities).toEqual([server.serial]);
    expect(s.cas).toHaveLength(1);
    s.provider.close();
  });

  test('a replaced certificate and key are published on the next poll', async () => {
    const clock = manualClock();
    const tls = liveFiles(server);
    const s = served(tls, clock);
    await tick();
    clock.fire();
    expect(s.identities).toEqual([server.serial]); // unchanged files publish nothing
    copyFileSync(server2.key, tls.keyFile);
    copyFileSync(server2.cert, tls.certFile);
    clock.fire();
    expect(s.identities).toEqual([server.serial, server2.serial]);
    expect(s.provider.material().serialNumber).toBe(server2.serial);
    expect(s.onReload).toHaveBeenCalledWith(
      expect.objectContaining({ outcome: 'loaded', serialNumber: server2.serial }),
    );
    s.provider.close();
    expect(clock.pending()).toBe(0);
  });

  test('a half-rotated pair (new certificate, old key) keeps the old one and is reported once', async () => {
    const clock = manualClock();
    const tls = liveFiles(server);
    const s = served(tls, clock);
    await tick();
    copyFileSync(server2.cert, tls.certFile);
    clock.fire();
    clock.fire();
    expect(s.identities).toEqual([server.serial]);
    expect(s.onReload).toHaveBeenCalledTimes(1);
    expect(s.onReload).toHaveBeenCalledWith(
      expect.objectContaining({
        outcome: 'failed',
        problem: expect.stringContaining('does not belong'),
      }),
    );
    // ...and the key arriving completes the rotation.
    copyFileSync(server2.key, tls.keyFile);
    clock.fire();
    expect(s.identities).toEqual([server.serial, server2.serial]);
    s.provider.close();
  });

  test('an emptied or garbled file does not take the certificate away', async () => {
    const clock = manualClock();
    const tls = liveFiles(server);
    const s = served(tls, clock);
    await tick();
    writeFileSync(tls.certFile, '');
    clock.fire();
    writeFileSync(tls.clientCaFile!, 'garbage');
    clock.fire();
    expect(s.identities).toEqual([server.serial]);
    expect(s.provider.material().serialNumber).toBe(server.serial);
    s.provider.close();
  });

  test('a new client CA is published to the CA listeners', async () => {
    const clock = manualClock();
    const tls = liveFiles(server);
    const s = served(tls, clock);
    await tick();
    copyFileSync(otherCa.cert, tls.clientCaFile!);
    clock.fire();
    expect(s.cas).toHaveLength(2);
    expect(s.cas[1]!.equals(loadPem({ caFile: otherCa.cert }, {}).ca!)).toBe(true);
    s.provider.close();
  });

  test('polling stops when the last listener goes', async () => {
    const clock = manualClock();
    const s = served(liveFiles(server), clock);
    await tick();
    expect(clock.pending()).toBe(1);
    s.provider.removeIdentityCertificateListener(s.onIdentity);
    expect(clock.pending()).toBe(1);
    s.provider.removeCaCertificateListener(s.onCa);
    expect(clock.pending()).toBe(0);
  });
});
