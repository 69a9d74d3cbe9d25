/**
 * The controller's gate: TLS credentials that follow their files, and the check every node
 * and CLI stream passes before the hub sees it. A refused stream is ended at once with
 * UNAUTHENTICATED or PERMISSION_DENIED, logged and counted. An admitted node stream gets a
 * NodeAdmission: which UUIDs its credentials may claim (the core asks it at registration).
 */
import * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import {
  AUTH_FAILURE_REASONS,
  AUTH_METADATA_KEY,
  type ControllerAuthConfig,
  PEER_ROLES,
  type PeerRole,
  ReloadingTokens,
  authorize,
  certNodeUuids,
  certOus,
} from '../shared/auth';
import type { Scheduler } from '../shared/scheduler';
import type { Logger } from '../shared/logger';
import {
  ReloadingPemProvider,
  type ServerTlsConfig,
  reloadingServerCredentials,
} from '../shared/tls';
import type { NodeAdmission } from './identity';

export interface SecurityConfig {
  tls?: ServerTlsConfig;
  auth?: ControllerAuthConfig;
  /** How often certificate and token files are re-read. */
  credentialsReloadMs: number;
}

export const DEFAULT_CREDENTIALS_RELOAD_MS = 5000;

/** A stream call as far as the gate needs it. */
interface GatedCall {
  readonly metadata: grpc.Metadata;
  getPeer(): string;
  getAuthContext(): ReturnType<grpc.ServerDuplexStream<unknown, unknown>['getAuthContext']>;
  emit(event: 'error', status: Partial<grpc.StatusObject>): boolean;
}

export interface Security {
  /** Credentials for bindAsync. */
  readonly credentials: grpc.ServerCredentials;
  /**
   * A node stream that may go on gets its NodeAdmission, a CLI stream `true`; a refused
   * stream gets `undefined` and has been ended with a status.
   */
  admit(service: 'node', call: GatedCall): NodeAdmission | undefined;
  admit(service: 'cli', call: GatedCall): true | undefined;
  /** The certificate served now (undefined without TLS). */
  servedFingerprint(): string | undefined;
  close(): void;
}

export function createSecurity(
  config: SecurityConfig,
  deps: { logger: Logger; registry: Registry; clock: Scheduler },
): Security {
  const log = deps.logger;
  const failures = new Counter({
    name: 'currency_controller_auth_failures_total',
    help: 'Node and CLI streams refused for their credentials, by service (node, cli) and reason (missing, invalid, wrong_role, uuid_not_allowed: a node claimed a UUID its credential is not bound to, or a bound UUID with an unbound credential).',
    labelNames: ['service', 'reason'],
    registers: [deps.registry],
  });
  for (const service of PEER_ROLES)
    for (const reason of AUTH_FAILURE_REASONS)
      if (service === 'node' || reason !== 'uuid_not_allowed') failures.inc({ service, reason }, 0);

  let provider: ReloadingPemProvider | undefined;
  let credentials = grpc.ServerCredentials.createInsecure();
  if (config.tls) {
    provider = new ReloadingPemProvider(config.tls, {
      intervalMs: config.credentialsReloadMs,
      clock: deps.clock,
      onReload: (e) =>
        e.outcome === 'loaded'
          ? log.info(
              { fingerprint256: e.fingerprint256, serial: e.serialNumber, valid_to: e.validTo },
              'TLS certificate reloaded; new connections get it',
            )
          : log.error(
              { problem: e.problem },
              'TLS files changed but do not load; still serving the previous certificate',
            ),
    });
    credentials = reloadingServerCredentials(provider, config.tls.clientCaFile !== undefined);
  }

  // Token checks only when some token is configured: certificate roles alone need none.
  const withTokens =
    config.auth !== undefined &&
    [config.auth.node, config.auth.cli].some((t) => t.tokens.length > 0 || t.file !== undefined);
  const tokens = withTokens
    ? {
        node: new ReloadingTokens(config.auth!.node, reloadOpts('node')),
        cli: new ReloadingTokens(config.auth!.cli, { ...reloadOpts('cli'), bindable: false }),
      }
    : undefined;
  function reloadOpts(role: PeerRole) {
    return {
      intervalMs: config.credentialsReloadMs,
      clock: deps.clock,
      onReload: (
        e: { outcome: 'loaded'; count: number } | { outcome: 'failed'; problem: string },
      ) =>
        e.outcome === 'loaded'
          ? log.info({ role, tokens: e.count }, 'tokens file reloaded')
          : log.error(
              { role, problem: e.problem },
              'tokens file changed but does not load; the previous tokens stay in force',
            ),
    };
  }
  tokens?.node.start();
  tokens?.cli.start();

  const tlsMode = !config.tls ? 'off' : config.tls.clientCaFile ? 'mutual' : 'server';
  const authMode = !config.auth
    ? 'off'
    : [
        withTokens ? 'tokens' : undefined,
        config.auth.clientCertRoles ? 'certificate roles' : undefined,
      ]
        .filter(Boolean)
        .join(config.auth.require === 'both' ? ' and ' : ' + ');
  log.info(
    { tls: tlsMode, auth: authMode, fingerprint256: provider?.material().fingerprint256 },
    'gRPC port security',
  );
  // What an operator would want pointed out: half of the protection on its own.
  if (config.tls && !config.auth)
    log.warn(
      tlsMode === 'mutual'
        ? 'mutual TLS is on but peer authorization is off: any client with a certificate from the CA can register nodes and run CLI commands'
        : 'TLS is on but peer authentication is off: anyone who can reach the port can register nodes and run CLI commands',
    );
  if (!config.tls && config.auth)
    log.warn(
      'peer authentication is on but TLS is off: tokens cross the network in plaintext; set CONTROLLER_TLS_CERT_FILE and CONTROLLER_TLS_KEY_FILE',
    );

  function admission(
    uuids: ReadonlySet<string> | undefined,
    own: ReadonlySet<string> | undefined,
    peer: string,
  ): NodeAdmission {
    const reserved = (u: string) =>
      (tokens?.node.current().reserves(u) ?? false) && !(own?.has(u) ?? false);
    return {
      bound: uuids !== undefined,
      // An unbound credential may not take a UUID that a token line binds to another token.
      mayClaim: (uuid) =>
        uuids === undefined ? !reserved(uuid.toLowerCase()) : uuids.has(uuid.toLowerCase()),
      refuseClaim(uuid, because) {
        failures.inc({ service: 'node', reason: 'uuid_not_allowed' });
        log.warn(
          {
            peer_kind: 'node',
            reason: 'uuid_not_allowed',
            node_uuid: uuid,
            allowed: uuids === undefined ? 'any unbound UUID' : [...uuids],
            peer,
            because,
          },
          `node UUID claim refused: ${because}`,
        );
      },
    };
  }

  function admit(service: 'node', call: GatedCall): NodeAdmission | undefined;
  function admit(service: 'cli', call: GatedCall): true | undefined;
  function admit(service: PeerRole, call: GatedCall): NodeAdmission | true | undefined {
    const cert = config.auth?.clientCertRoles
      ? call.getAuthContext().sslPeerCertificate
      : undefined;
    const decision = authorize(
      service,
      {
        authorization: call.metadata.get(AUTH_METADATA_KEY),
        certOus: certOus(cert?.subject),
        certUuids: certNodeUuids(cert),
      },
      tokens ? { node: tokens.node.current(), cli: tokens.cli.current() } : undefined,
      config.auth?.clientCertRoles ?? false,
      config.auth?.require,
    );
    if (decision.ok) {
      if (decision.role)
        log.debug(
          { peer_kind: service, via: decision.via, peer: call.getPeer(), bound: !!decision.uuids },
          'peer authenticated',
        );
      return service === 'node'
        ? admission(decision.uuids, decision.ownTokenUuids, call.getPeer())
        : true;
    }
    failures.inc({ service, reason: decision.reason });
    log.warn(
      {
        peer_kind: service,
        reason: decision.reason,
        code: grpc.status[decision.code],
        peer: call.getPeer(),
        problem: decision.message,
      },
      'stream refused',
    );
    try {
      call.emit('error', { code: decision.code, details: decision.message });
    } catch {
      // the call is already gone
    }
    return undefined;
  }

  return {
    credentials,
    admit,
    servedFingerprint: () => provider?.material().fingerprint256,
    close() {
      provider?.close();
      tokens?.node.close();
      tokens?.cli.close();
    },
  };
}
