/**
 * METRICS_WEB_CONFIG_FILE (issue 16): the metrics and health port closed the Prometheus way.
 * The HTTP server runs in-process for the refusals (status codes, probes, client
 * certificates, reload); the built controller and node run as programs and a real
 * Prometheus scrapes them with the same credentials.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:https';
import { hashSync } from 'bcryptjs';
import { Registry } from 'prom-client';
import {
  type ObservabilityServer,
  startObservabilityServer,
} from '../../services/shared/http-server';
import { createLogger } from '../../services/shared/logger';
import { type CertDir, type CertFiles, type TestCa, makeCertDir } from '../support/certs';
import {
  WaitAborted,
  freePorts,
  httpGet,
  isRunning,
  requireBuilt,
  requireTool,
  startProcess,
  stopAll,
  waitFor,
} from '../support/observability-stack';
import { programPath, runProgram } from '../support/processes';

jest.setTimeout(90_000);

const USER = 'prometheus';
const PASSWORD = 'scrape-secret-0123456789';
const HASH = hashSync(PASSWORD, 4);

let certs: CertDir;
let ca: TestCa;
let rogueCa: TestCa;
let serverCert: CertFiles;
let clientCert: CertFiles;
let rogueCert: CertFiles;
let http: ObservabilityServer | undefined;

beforeAll(() => {
  certs = makeCertDir();
  ca = certs.newCa('metrics-ca');
  rogueCa = certs.newCa('rogue-ca');
  serverCert = ca.issue('metrics');
  clientCert = ca.issue('prometheus');
  rogueCert = rogueCa.issue('intruder');
  writeFileSync(certs.path('password'), PASSWORD);
});

afterEach(async () => {
  await http?.close();
  http = undefined;
  await stopAll();
});

afterAll(() => certs.remove());

function webConfig(name: string, opts: { clientCerts?: boolean; users?: boolean } = {}): string {
  const lines = [
    'tls_server_config:',
    `  cert_file: ${serverCert.cert}`,
    `  key_file: ${serverCert.key}`,
    ...(opts.clientCerts
      ? [`  client_ca_file: ${ca.cert}`, '  client_auth_type: RequireAndVerifyClientCert']
      : []),
    ...((opts.users ?? true) ? ['basic_auth_users:', `  ${USER}: '${HASH}'`] : []),
  ];
  const file = certs.path(`${name}.yml`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

async function serve(file: string, probesOpen = false, reloadMs = 60_000) {
  const registry = new Registry();
  const logs: Record<string, unknown>[] = [];
  http = await startObservabilityServer({ host: '127.0.0.1', port: 0 }, registry, () => true, {
    webConfig: { file, probesOpen, reloadMs },
    logger: createLogger({
      service: 'test',
      level: 'info',
      destination: {
        write: (l: string) => void logs.push(JSON.parse(l) as Record<string, unknown>),
      },
    }),
  });
  return { port: http.port, logs };
}

/** One HTTPS GET to loopback, trusting the test CA; bounded in time. */
function get(
  port: number,
  path: string,
  opts: { auth?: string; cert?: CertFiles } = {},
): Promise<{ status: number; body: string; authenticate?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: [readFileSync(ca.cert) as Buffer],
        ...(opts.auth ? { auth: opts.auth } : {}),
        ...(opts.cert
          ? {
              cert: readFileSync(opts.cert.cert) as Buffer,
              key: readFileSync(opts.cert.key) as Buffer,
            }
          : {}),
        agent: false,
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            authenticate: res.headers['www-authenticate'],
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

const creds = `${USER}:${PASSWORD}`;

/** A Prometheus with this config on a loopback port (the shared helper writes plain jobs only). */
async function startPrometheus(dir: string, port: number, config: string[]) {
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, config.join('\n') + '\n');
  const proc = startProcess(
    'prometheus',
    requireTool('prometheus'),
    [
      `--config.file=${file}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    {},
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    'prometheus to be ready',
    async () => {
      if (!isRunning(proc)) throw new WaitAborted(`prometheus exited: ${proc.output()}`);
      return (await httpGet(`${url}/-/ready`, 1_000)).status === 200;
    },
    { timeoutMs: 30_000 },
  );
  const getJson = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) })).json()) as T;
  return {
    getJson,
    vector: async (expr: string) =>
      (
        await getJson<{ data: { result: { value: [number, string] }[] } }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        )
      ).data.result,
  };
}

describe('the metrics port with a web config', () => {
  test('over TLS, a scrape without credentials is refused and one with them is served', async () => {
    const { port } = await serve(webConfig('basic'));
    const none = await get(port, '/metrics');
    expect(none.status).toBe(401);
    expect(none.authenticate).toBe('Basic');
    expect((await get(port, '/metrics', { auth: `${USER}:wrong-password` })).status).toBe(401);
    expect((await get(port, '/metrics', { auth: `nobody:${PASSWORD}` })).status).toBe(401);
    const ok = await get(port, '/metrics', { auth: creds });
    expect(ok.status).toBe(200);
    // Plain HTTP does not get an answer from a TLS port.
    await expect(
      fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) }),
    ).rejects.toThrow();
  });

  test('the probes are closed too, unless METRICS_PROBES_OPEN leaves them open', async () => {
    const closed = await serve(webConfig('probes-closed'));
    expect((await get(closed.port, '/healthz')).status).toBe(401);
    await http!.close();
    const open = await serve(webConfig('probes-open', { clientCerts: true }), true);
    expect((await get(open.port, '/healthz')).status).toBe(200);
    expect((await get(open.port, '/readyz')).body).toBe('ready\n');
    expect((await get(open.port, '/metrics', { auth: creds })).status).toBe(403);
  });

  test('with client certificates required, only a certificate from the client CA is served', async () => {
    const { port } = await serve(webConfig('mtls', { clientCerts: true }));
    expect((await get(port, '/metrics', { auth: creds })).status).toBe(403);
    expect((await get(port, '/metrics', { auth: creds, cert: rogueCert })).status).toBe(403);
    expect((await get(port, '/metrics', { auth: creds, cert: clientCert })).status).toBe(200);
    // The certificate does not replace the password.
    expect((await get(port, '/metrics', { cert: clientCert })).status).toBe(401);
  });

  test('a changed file is followed; one that does not load leaves the last good in force', async () => {
    const file = webConfig('reload');
    const { port, logs } = await serve(file, false, 50);
    const other = hashSync('another-password-0123', 4);
    writeFileSync(
      file,
      `tls_server_config:\n  cert_file: ${serverCert.cert}\n  key_file: ${serverCert.key}\n` +
        `basic_auth_users:\n  ${USER}: '${other}'\n`,
    );
    await waitFor(
      'the new password in force',
      async () =>
        (await get(port, '/metrics', { auth: `${USER}:another-password-0123` })).status === 200,
    );
    writeFileSync(file, 'basic_auth_users:\n  x: not-a-hash\n');
    await waitFor('the bad file reported', async () =>
      logs.some((l) => String(l.msg).includes('does not load')),
    );
    expect((await get(port, '/metrics', { auth: `${USER}:another-password-0123` })).status).toBe(
      200,
    );
  });
});

describe('a real Prometheus scrapes the programs with the same credentials', () => {
  test('controller and node targets are up with TLS, a client certificate and basic auth; without them down', async () => {
    requireBuilt();
    requireTool('prometheus');
    const file = webConfig('programs', { clientCerts: true });
    const [grpcPort, ctlMetrics, nodeMetrics, promPort] = await freePorts(4);
    const env = { METRICS_WEB_CONFIG_FILE: file, METRICS_PROBES_OPEN: 'true', LOG_LEVEL: 'warn' };
    startProcess('controller', process.execPath, [programPath('controller')], {
      ...env,
      CONTROLLER_LISTEN_ADDR: `127.0.0.1:${grpcPort}`,
      METRICS_ADDR: `127.0.0.1:${ctlMetrics}`,
    });
    startProcess('node', process.execPath, [programPath('node')], {
      ...env,
      NODE_CONTROLLER_ADDR: `127.0.0.1:${grpcPort}`,
      NODE_CURRENCY_PAIRS: 'USD_HKD',
      METRICS_ADDR: `127.0.0.1:${nodeMetrics}`,
    });
    const dir = certs.path('prometheus');
    mkdirSync(dir);
    const targets = `["127.0.0.1:${ctlMetrics}", "127.0.0.1:${nodeMetrics}"]`;
    const prom = await startPrometheus(dir, promPort!, [
      'global: { scrape_interval: 1s, scrape_timeout: 1s }',
      'scrape_configs:',
      '  - job_name: protected',
      '    scheme: https',
      '    tls_config:',
      `      ca_file: ${ca.cert}`,
      `      cert_file: ${clientCert.cert}`,
      `      key_file: ${clientCert.key}`,
      '    basic_auth:',
      `      username: ${USER}`,
      `      password_file: ${certs.path('password')}`,
      `    static_configs: [{ targets: ${targets} }]`,
      '  - job_name: no-credentials',
      '    scheme: https',
      `    tls_config: { ca_file: ${ca.cert} }`,
      `    static_configs: [{ targets: ${targets} }]`,
    ]);
    await waitFor('both protected targets up', async () => {
      const up = await prom.vector('up{job="protected"} == 1');
      return up.length === 2;
    });
    const down = await waitFor('both unauthenticated targets down', async () => {
      const r = await prom.getJson<{
        data: { activeTargets: { labels: { job: string }; health: string; lastError: string }[] };
      }>('/api/v1/targets');
      const t = r.data.activeTargets.filter((x) => x.labels.job === 'no-credentials');
      return t.length === 2 && t.every((x) => x.health === 'down') && t;
    });
    expect(down.map((t) => t.lastError).join(' ')).toMatch(/403|401/);
    expect(
      (await prom.vector('currency_controller_connected_nodes{job="protected"}'))[0]?.value[1],
    ).toBeDefined();
  });
});

describe('configuration', () => {
  test.each(['controller', 'node'] as const)(
    'an invalid METRICS_WEB_CONFIG_FILE stops the %s with exit 2 naming it',
    async (role) => {
      requireBuilt();
      const bad = certs.path(`bad-${role}.yml`);
      writeFileSync(bad, `basic_auth_users:\n  ${USER}: ${PASSWORD}\n`);
      const r = await runProgram(role, [], {
        METRICS_WEB_CONFIG_FILE: bad,
        METRICS_ADDR: '127.0.0.1:0',
        CONTROLLER_LISTEN_ADDR: '127.0.0.1:0',
        NODE_CURRENCY_PAIRS: 'USD_HKD',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('METRICS_WEB_CONFIG_FILE');
      expect(r.stderr).toContain('bcrypt');
    },
  );
});
