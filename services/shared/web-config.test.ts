import { copyFileSync, writeFileSync } from 'node:fs';
import { hashSync } from 'bcryptjs';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../../tests/support/certs';
import { configError, manualClock } from '../../tests/support/fakes';
import { ReloadingWebConfig, loadWebConfig, readMetricsWebConfig } from './web-config';

let certs: CertDir;
let ca: TestCa;
let server: CertFiles;
const HASH = hashSync('scrape-password', 4);

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('web-ca');
  server = ca.issue('metrics');
  copyFileSync(server.cert, certs.path('rel.pem'));
  copyFileSync(server.key, certs.path('rel.key'));
});
afterAll(() => certs.remove());

const write = (name: string, text: string) => {
  writeFileSync(certs.path(name), text);
  return certs.path(name);
};

describe('the exporter-toolkit web config file', () => {
  test('TLS with client certificates and basic auth users load; relative paths are relative to the file', () => {
    const f = write(
      'web.yml',
      [
        'tls_server_config:',
        '  cert_file: rel.pem',
        '  key_file: rel.key',
        `  client_ca_file: ${ca.cert}`,
        '  min_version: TLS13',
        'basic_auth_users:',
        `  prometheus: '${HASH}'`,
      ].join('\n'),
    );
    const c = loadWebConfig(f);
    expect(c.tls).toMatchObject({
      clientAuth: 'RequireAndVerifyClientCert',
      minVersion: 'TLSv1.3',
    });
    expect(c.tls?.ca).toBeDefined();
    expect([...(c.users?.keys() ?? [])]).toEqual(['prometheus']);
  });

  test('an empty file protects nothing (as in exporter-toolkit)', () => {
    expect(loadWebConfig(write('empty.yml', ''))).toEqual({});
  });

  test.each<[string, string, string]>([
    ['an unknown key', 'http_server_config:\n  http2: true\n', 'http_server_config: not supported'],
    ['a password in clear', 'basic_auth_users:\n  p: secret\n', 'must be a bcrypt hash'],
    [
      'a certificate without a key',
      `tls_server_config:\n  cert_file: rel.pem\n`,
      'key_file are both required',
    ],
    [
      'a missing certificate file',
      'tls_server_config:\n  cert_file: nope.pem\n  key_file: rel.key\n',
      'tls_server_config.cert_file',
    ],
    [
      'an unknown client_auth_type',
      'tls_server_config:\n  cert_file: rel.pem\n  key_file: rel.key\n  client_auth_type: Always\n',
      'not one of NoClientCert',
    ],
    [
      'verifying client certificates without a CA',
      'tls_server_config:\n  cert_file: rel.pem\n  key_file: rel.key\n  client_auth_type: RequireAndVerifyClientCert\n',
      'client_ca_file is required',
    ],
    ['not YAML mapping', '- a\n- b\n', 'must be a YAML mapping'],
  ])('%s stops the program naming METRICS_WEB_CONFIG_FILE', (_what, text, says) => {
    const f = write('bad.yml', text);
    const e = configError(() => readMetricsWebConfig({ METRICS_WEB_CONFIG_FILE: f }));
    expect(e.variable).toBe('METRICS_WEB_CONFIG_FILE');
    expect(e.message).toContain(says);
  });

  test('a missing file and a bad METRICS_PROBES_OPEN name their variables', () => {
    expect(
      configError(() => readMetricsWebConfig({ METRICS_WEB_CONFIG_FILE: '/nonexistent/web.yml' }))
        .message,
    ).toContain('no such file');
    expect(configError(() => readMetricsWebConfig({ METRICS_PROBES_OPEN: 'yes' })).variable).toBe(
      'METRICS_PROBES_OPEN',
    );
  });

  test('unset: off; set: the file and the probes knob', () => {
    expect(readMetricsWebConfig({})).toBeUndefined();
    const f = write('ok.yml', `basic_auth_users:\n  p: '${HASH}'\n`);
    expect(
      readMetricsWebConfig({ METRICS_WEB_CONFIG_FILE: f, METRICS_PROBES_OPEN: 'true' }),
    ).toEqual({ file: f, probesOpen: true, reloadMs: 5000 });
  });
});

describe('ReloadingWebConfig', () => {
  test('a change that loads replaces the config; one that does not is reported once and ignored', () => {
    const f = write('reload.yml', `basic_auth_users:\n  a: '${HASH}'\n`);
    const clock = manualClock();
    const events: string[] = [];
    const r = new ReloadingWebConfig(
      { file: f, probesOpen: false, reloadMs: 1000 },
      {
        clock,
        onReload: (e) => events.push(e.outcome === 'loaded' ? 'loaded' : `failed: ${e.problem}`),
      },
    ).start();
    write('reload.yml', `basic_auth_users:\n  b: '${HASH}'\n`);
    clock.fire();
    expect([...r.current().users!.keys()]).toEqual(['b']);
    write('reload.yml', 'basic_auth_users:\n  c: plain\n');
    clock.fire();
    clock.fire();
    expect([...r.current().users!.keys()]).toEqual(['b']);
    expect(events).toEqual(['loaded', expect.stringContaining('failed: basic_auth_users.c')]);
    r.close();
    expect(clock.pending()).toBe(0);
  });

  test('a rotated certificate file named by the config is a change too', () => {
    const f = write('tls.yml', 'tls_server_config:\n  cert_file: rel.pem\n  key_file: rel.key\n');
    const clock = manualClock();
    const r = new ReloadingWebConfig({ file: f, probesOpen: false, reloadMs: 1000 }, { clock });
    r.start();
    const before = r.current().tls!.cert;
    const next = ca.issue('metrics-2');
    copyFileSync(next.cert, certs.path('rel.pem'));
    copyFileSync(next.key, certs.path('rel.key'));
    clock.fire();
    expect(r.current().tls!.cert.equals(before)).toBe(false);
    r.close();
  });
});
