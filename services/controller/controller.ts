/**
 * createController: the controller as a value a test can start in-process on port 0.
 * main.ts only reads config, builds deps, starts this, and handles signals.
 */
import { CLI_SERVICE, NODE_SERVICE } from '../shared/protocol';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { type Random, type Scheduler, systemScheduler } from '../shared/scheduler';
import { formatHostPort } from '../shared/config';
import { serverChannelOptions } from '../shared/grpc-options';
import { type ObservabilityServer, startObservabilityServer } from '../shared/http-server';
import type { Logger } from '../shared/logger';
import { appVersion } from '../shared/version';
import { cliServerDefinition, nodeServerDefinition } from '../shared/wire';
import type { ControllerConfig } from './config';
import { ControllerCore } from './core/core';
import { HealthState, HealthStatus } from './health';
import { createControllerMetrics } from './metrics';
import { addReflection } from './reflection';
import { createSecurity } from './security';
import { shutdownWithin } from './shutdown-grace';
import { createLeaderElector } from './leader';
import { Follower } from './leader/follower';
import type { LeaseApi } from './leader/lease-api';

export interface ControllerDeps {
  logger: Logger;
  registry?: Registry;
  scheduler?: Scheduler;
  random?: Random;
  newId?: () => string;
  /** Default process metrics; off in tests that start several controllers. */
  defaultMetrics?: boolean;
  credentials?: grpc.ServerCredentials;
  /** Serve METRICS_ADDR (default true). */
  serveHttp?: boolean;
  appVersion?: string;
  /** Under leader election, the Lease API (tests: an in-memory one); default: Kubernetes. */
  leaseApi?: LeaseApi;
  /**
   * gRPC server options over the program's (grpc-options.ts), e.g. a test whose CLI shares a
   * busy machine and is not about keepalive may allow a longer keepalive timeout.
   */
  serverOptions?: grpc.ChannelOptions;
}

export interface RunningController {
  readonly grpcPort: number;
  readonly httpPort: number | undefined;
  readonly core: ControllerCore;
  readonly health: HealthState;
  readonly registry: Registry;
  /** Graceful: NOT_SERVING, end every stream, wait up to the grace period, then force. */
  stop(): Promise<void>;
}

export async function startController(
  config: ControllerConfig,
  deps: ControllerDeps,
): Promise<RunningController> {
  const log = deps.logger;
  const registry = deps.registry ?? new Registry();
  const metrics = createControllerMetrics(registry, {
    defaultMetrics: deps.defaultMetrics ?? true,
  });
  const version = deps.appVersion ?? appVersion();
  const scheduler = deps.scheduler ?? systemScheduler;
  const core = new ControllerCore({
    scheduler,
    random: deps.random ?? Math.random,
    logger: log,
    metrics,
    appVersion: version,
    streamsPerPair: config.streamsPerPair,
    newId: deps.newId ?? randomUUID,
    limits: config.limits,
    // Under leader election a controller starts as a standby and takes no node stream.
    leading: config.leader.mode === 'off',
  });
  const health = new HealthState([NODE_SERVICE, CLI_SERVICE]);
  // TLS and the credential check on every stream, before the core sees it.
  const security = createSecurity(config.security, { logger: log, registry, clock: scheduler });

  const server = new grpc.Server({
    ...serverChannelOptions(config.maxMessageBytes),
    ...deps.serverOptions,
  });
  server.addService(nodeServerDefinition, {
    nodeCommandStream: (call: Parameters<ControllerCore['attachNode']>[0]) => {
      const admission = security.admit('node', call);
      if (admission) core.attachNode(call, typeof admission === 'object' ? admission : undefined);
    },
  });
  server.addService(cliServerDefinition, {
    cliCommandStream: (call: Parameters<ControllerCore['attachCli']>[0]) => {
      if (security.admit('cli', call)) core.attachCli(call);
    },
  });
  server.addService(HealthState.definition, health.implementation());
  if (config.reflection) addReflection(server);

  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      formatHostPort(config.listenAddr),
      deps.credentials ?? security.credentials,
      (err, port) => (err ? reject(err) : resolve(port)),
    ),
  ).catch((err: unknown) => {
    security.close();
    throw err;
  });
  let http: ObservabilityServer | undefined;
  // Why /readyz is 503 (in its body): set once the elector exists, below.
  let notReady = () => 'starting';
  try {
    if (deps.serveHttp ?? true) {
      http = await startObservabilityServer(
        config.metricsAddr,
        registry,
        () => health.status() === HealthStatus.SERVING || { ready: false, reason: notReady() },
        { webConfig: config.metricsWebConfig, logger: log },
      );
    }
  } catch (err) {
    server.forceShutdown();
    security.close();
    throw err;
  }
  // Leading decides serving: a standby is NOT_SERVING (gRPC health, /readyz 503), so a
  // Service routes nodes and CLIs to the leader alone; a leader that cannot renew stops
  // leading before another may take the Lease (fencing, docs/leader-election.md).
  let stoppingNow = false;
  let lastLeader: string | undefined;
  const follower = new Follower(config.follow, {
    scheduler,
    logger: log,
    onPrice: (p) => core.intake.takeFollowed(p),
    onLeaderStopping: () => elector.tryNow(),
  });
  const elector = await createLeaderElector(config.leader, {
    scheduler,
    logger: log,
    api: deps.leaseApi,
    metrics: {
      renewed: (seconds, outcome) => metrics.leaseRenewDuration.observe({ outcome }, seconds),
      leadershipChanged: (_leading, reason) => metrics.leadershipChanges.inc({ reason }),
    },
    onChange: (leading, leader) => {
      metrics.leader.set(leading ? 1 : 0);
      core.setLeading(leading, leader);
      follower.set(!leading && !stoppingNow);
      if (!leading && leader !== undefined && leader !== lastLeader) follower.leaderChanged();
      lastLeader = leader;
      if (!stoppingNow) health.setAll(leading ? HealthStatus.SERVING : HealthStatus.NOT_SERVING);
      log.info(
        { leading, leader, identity: config.leader.identity },
        leading ? 'leading' : 'not leading',
      );
    },
  }).catch(async (err: unknown) => {
    server.forceShutdown();
    security.close();
    await http?.close();
    throw err;
  });
  notReady = () => {
    if (stoppingNow) return 'stopping';
    if (elector.isLeader()) return 'starting';
    const failure = elector.failure();
    if (failure !== undefined) return `standby: cannot reach the Kubernetes API: ${failure}`;
    const leader = elector.leader();
    return leader === undefined
      ? 'standby: no leader yet (the Lease is free or expired)'
      : `standby: the leader is ${leader}`;
  };
  elector.start();
  log.info(
    {
      listen: `${config.listenAddr.host}:${grpcPort}`,
      metrics_port: http?.port,
      version,
      streams_per_pair: config.streamsPerPair,
      leader_election: config.leader.mode,
    },
    'controller serving',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('controller stopping');
      stoppingNow = true;
      follower.stop();
      health.setAll(HealthStatus.NOT_SERVING);
      // Nodes first: from here on this controller assigns nothing. Then the Lease goes back,
      // and only then do the CLI streams end: a standby following our prices sees its watch
      // end with `shutdown` and takes the Lease at once (Follower.onLeaderStopping) instead
      // of at its next retry period, with no instant at which two controllers lead.
      core.closeNodes();
      await elector.stop();
      core.closeClis();
      health.endWatches();
      await shutdownWithin(server, config.shutdownGraceMs, scheduler, () =>
        log.warn('streams still open after the grace period; forcing shutdown'),
      );
      security.close();
      await http?.close();
      log.info('controller stopped');
    })());

  return { grpcPort, httpPort: http?.port, core, health, registry, stop };
}
