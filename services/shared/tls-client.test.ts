/** A client's TLS settings (tls-client.ts): off by default, checked at start, credentials. */
import { configError } from '../../tests/support/fakes';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../../tests/support/certs';
import { clientCredentials, readClientTlsFromEnv } from './tls-client';

let certs: CertDir;
let ca: TestCa;
let server: CertFiles;

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('ca');
  server = ca.issue('server');
});
afterAll(() => certs.remove());

describe('client TLS configuration', () => {
  test('with no NODE_TLS_* set the node dials in plaintext', () => {
    expect(readClientTlsFromEnv({}, 'NODE')).toBeUndefined();
    expect(clientCredentials(undefined).credentials._isSecure()).toBe(false);
  });

  test('a CA turns TLS on; a certificate and key add a client identity; a server name overrides the host', () => {
    const tls = readClientTlsFromEnv(
      {
        CLI_TLS_CA_FILE: ca.cert,
        CLI_TLS_CERT_FILE: server.cert,
        CLI_TLS_KEY_FILE: server.key,
        CLI_TLS_SERVER_NAME: 'controller.test',
      },
      'CLI',
    );
    expect(tls).toEqual({
      caFile: ca.cert,
      certFile: server.cert,
      keyFile: server.key,
      serverName: 'controller.test',
    });
    const c = clientCredentials(tls);
    expect(c.credentials._isSecure()).toBe(true);
    expect(c.options).toEqual({ 'grpc.ssl_target_name_override': 'controller.test' });
  });

  test.each<[string, string, () => Record<string, string>, string]>([
    [
      'a client certificate without a CA',
      'NODE_TLS_CA_FILE',
      () => ({ NODE_TLS_CERT_FILE: server.cert, NODE_TLS_KEY_FILE: server.key }),
      'is required when NODE_TLS_CERT_FILE is set',
    ],
    [
      'a client certificate without its key',
      'NODE_TLS_KEY_FILE',
      () => ({ NODE_TLS_CA_FILE: ca.cert, NODE_TLS_CERT_FILE: server.cert }),
      'is required',
    ],
    [
      'a server name that is not a DNS name',
      'NODE_TLS_SERVER_NAME',
      () => ({ NODE_TLS_CA_FILE: ca.cert, NODE_TLS_SERVER_NAME: 'not a name' }),
      'DNS name',
    ],
    [
      'a CA file that does not exist',
      'NODE_TLS_CA_FILE',
      () => ({ NODE_TLS_CA_FILE: '/nonexistent/ca.pem' }),
      'no such file',
    ],
  ])('%s stops the node naming %s', (_what, variable, env, says) => {
    const e = configError(() => readClientTlsFromEnv(env(), 'NODE'));
    expect(e.variable).toBe(variable);
    expect(e.message).toContain(says);
  });
});
