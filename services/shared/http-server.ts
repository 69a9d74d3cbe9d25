import { createHash } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { compare } from 'bcryptjs';
import type { Registry } from 'prom-client';
import type { HostPort } from './config';
import type { Logger } from './logger';
import { negotiateMetricsFormat, renderMetrics } from './metrics-format';
import type { Scheduler } from './scheduler';
import {
  type MetricsWebConfigSettings,
  ReloadingWebConfig,
  type WebConfig,
  type WebTls,
} from './web-config';

export interface ObservabilityServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** `https` when the web config turns TLS on. */
  readonly scheme: 'http' | 'https';
  close(): Promise<void>;
}

/**
 * `/readyz`: true (200 `ready`), or not (503), optionally with why: the body is then
 * `not ready: <reason>` (e.g. a standby controller names the leader).
 */
export type Readiness = boolean | { ready: false; reason: string };

export interface ObservabilityOptions {
  /** METRICS_WEB_CONFIG_FILE (and METRICS_PROBES_OPEN); absent: plaintext and open. */
  webConfig?: MetricsWebConfigSettings;
  logger?: Logger;
  clock?: Scheduler;
}

const PROBE_PATHS = new Set(['/healthz', '/readyz']);
/** Hashes any unknown user is checked against, so a wrong name takes as long as a wrong password. */
const DUMMY_HASH = '$2b$10$CwTycUXWue0Thq9StjUM0uJ8ZsTLrJ0tRJg7rF6S3hdG5lZQ5P5iy';
/** Good credentials seen recently (digests), so a scrape does not pay bcrypt every time. */
const CACHE_MAX = 64;

/**
 * HTTP on METRICS_ADDR: `/metrics` (OpenMetrics with exemplars when the scraper asks for it,
 * as Prometheus does, else the Prometheus text format), `/healthz` (the process is alive),
 * `/readyz` (ready: the controller is serving, a node is connected and registered).
 * With a web config (exporter-toolkit format) the port speaks TLS, may ask for client
 * certificates and for a password; METRICS_PROBES_OPEN leaves the two probes open.
 */
export async function startObservabilityServer(
  addr: HostPort,
  registry: Registry,
  isReady: () => Readiness,
  opts: ObservabilityOptions = {},
): Promise<ObservabilityServer> {
  const log = opts.logger;
  const web = opts.webConfig
    ? new ReloadingWebConfig(opts.webConfig, {
        clock: opts.clock,
        // TLS on or off is the kind of listening socket: that needs a restart.
        accept: (next, cur) =>
          !!next.tls === !!cur.tls
            ? undefined
            : 'switching tls_server_config on or off needs a restart',
        onReload: (e) => {
          if (e.outcome === 'failed') {
            log?.error(
              { problem: e.problem },
              'metrics web config changed but does not load; the previous one stays in force',
            );
            return;
          }
          if (e.config.tls)
            (server as { setSecureContext?: (o: object) => void }).setSecureContext?.(
              secureContext(e.config.tls),
            );
          goodCredentials.clear();
          log?.info('metrics web config reloaded');
        },
      })
    : undefined;
  const probesOpen = opts.webConfig?.probesOpen ?? false;
  const goodCredentials = new Set<string>();

  async function allowed(
    req: IncomingMessage,
    path: string,
  ): Promise<[number, string] | undefined> {
    const cfg: WebConfig = web?.current() ?? {};
    if (probesOpen && PROBE_PATHS.has(path)) return undefined;
    if (cfg.tls) {
      const problem = clientCertProblem(req.socket as TLSSocket, cfg.tls);
      if (problem) return [403, problem];
    }
    if (cfg.users && !(await passwordOk(req.headers.authorization, cfg.users)))
      return [401, 'unauthorized'];
    return undefined;
  }

  async function passwordOk(
    header: string | undefined,
    users: ReadonlyMap<string, string>,
  ): Promise<boolean> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const hash = users.get(user);
    const key = createHash('sha256')
      .update(`${user}\0${decoded.slice(colon + 1)}\0${hash ?? ''}`)
      .digest('base64');
    if (hash !== undefined && goodCredentials.has(key)) return true;
    const ok = await compare(decoded.slice(colon + 1), hash ?? DUMMY_HASH);
    if (!ok || hash === undefined) return false;
    if (goodCredentials.size >= CACHE_MAX) goodCredentials.clear();
    goodCredentials.add(key);
    return true;
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    allowed(req, path).then(
      (refusal) => {
        if (refusal) {
          const [status, text] = refusal;
          res
            .writeHead(status, {
              'content-type': 'text/plain',
              ...(status === 401 ? { 'www-authenticate': 'Basic' } : {}),
            })
            .end(`${text}\n`);
          return;
        }
        serve(req, path, res);
      },
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  };

  const serve = (req: IncomingMessage, path: string, res: ServerResponse) => {
    if (path === '/metrics') {
      renderMetrics(registry, negotiateMetricsFormat(req.headers.accept)).then(
        ({ contentType, body }) =>
          res.writeHead(200, { 'content-type': contentType, vary: 'Accept' }).end(body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const r = isReady();
      const ready = r === true;
      // One line: a reason carries no line break into a probe's log.
      const why = typeof r === 'object' ? `: ${r.reason.replace(/[\r\n]+/g, ' ')}` : '';
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ready ? 'ready\n' : `not ready${why}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  };

  const tls = web?.current().tls;
  // Client certificates are requested but checked per request (clientCertProblem), so that
  // the probes can stay open on the same port and a reload can change the policy.
  const server: Server = tls
    ? createHttpsServer(
        { ...secureContext(tls), requestCert: true, rejectUnauthorized: false },
        handler,
      )
    : createServer(handler);
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(addr.port, addr.host.replace(/^\[|\]$/g, ''), () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    web?.close();
    throw err;
  }
  web?.start();
  if (!tls && web?.current().users)
    log?.warn(
      'metrics web config has basic_auth_users but no tls_server_config: passwords cross the network in plaintext',
    );
  log?.info(
    {
      tls: tls ? tls.clientAuth : 'off',
      basic_auth: !!web?.current().users,
      probes_open: opts.webConfig ? probesOpen : true,
    },
    'metrics port protection',
  );
  return {
    port: (server.address() as AddressInfo).port,
    scheme: tls ? 'https' : 'http',
    close: () =>
      new Promise<void>((resolve) => {
        web?.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function secureContext(tls: WebTls) {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca ? { ca: tls.ca } : {}),
    minVersion: tls.minVersion,
    ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
  };
}

/** Why this connection's client certificate does not satisfy the policy, or undefined. */
export function clientCertProblem(socket: TLSSocket, tls: WebTls): string | undefined {
  const policy = tls.clientAuth;
  if (policy === 'NoClientCert' || policy === 'RequestClientCert') return undefined;
  const cert = socket.getPeerCertificate?.();
  const given = !!cert && Object.keys(cert).length > 0;
  if (!given)
    return policy === 'VerifyClientCertIfGiven' ? undefined : 'a client certificate is required';
  if (policy === 'RequireAnyClientCert') return undefined;
  if (!socket.authorized)
    return `the client certificate is not trusted (${String(socket.authorizationError)})`;
  if (tls.allowedSans) {
    const sans = (cert.subjectaltname ?? '')
      .split(/,\s*/)
      .map((s) => s.replace(/^[A-Za-z ]+:"?|"$/g, ''));
    if (!tls.allowedSans.some((a) => sans.includes(a)))
      return 'the client certificate carries none of client_allowed_sans';
  }
  return undefined;
}
