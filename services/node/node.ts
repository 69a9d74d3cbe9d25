/**
 * createNode: a price-streaming node as a value a test can start in-process.
 * It keeps one stream to a controller (connection.ts: reconnecting forever with capped
 * exponential backoff and jitter), announces its pairs, streams the pairs it is told to
 * (streamer.ts, prices from the market feed in prices.ts), and answers status and
 * shutdown commands. It never streams while disconnected.
 */
import type * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { StreamFromNode } from '../gen/protobuf/currency_nodes';
import { formatHostPort } from '../shared/config';
import { type ObservabilityServer, startObservabilityServer } from '../shared/http-server';
import type { Logger } from '../shared/logger';
import { type Random, type Scheduler, systemScheduler } from '../shared/scheduler';
import { appVersion } from '../shared/version';
import type { NodeConfig } from './config';
import { ControllerConnection } from './connection';
import type { Link } from './link';
import { nodeDialer } from './dial';
import { ConnectionWatch } from './keepalive';
import { type NodeMetrics, createNodeMetrics } from './metrics';
import { nodeCommandHandler } from './node-commands';
import { announcementFrame, priceSink } from './node-wire';
import { PriceSupply } from './price-supply';
import type { MarketFeed } from './prices';
import { READ_OUTCOMES } from './upstream/types';

export interface NodeDeps {
  logger: Logger;
  registry?: Registry;
  /** Every timer, immediate and `now()` of the node; tests pass a fake. */
  scheduler?: Scheduler;
  random?: Random;
  /** Where prices come from; default: the simulated upstream, one market for every node. */
  market?: MarketFeed;
  defaultMetrics?: boolean;
  credentials?: grpc.ChannelCredentials;
  serveHttp?: boolean;
  /** Called after a NodeShutdownV1Req was answered and the stream closed; main exits 0. */
  onShutdownRequested?: () => void;
  appVersion?: string;
}

export interface RunningNode {
  readonly uuid: string;
  readonly httpPort: number | undefined;
  readonly registry: Registry;
  isConnected(): boolean;
  streamingPairs(): string[];
  /** Graceful: stop streaming, half-close the stream, stop reconnecting. */
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig, deps: NodeDeps): Promise<RunningNode> {
  const scheduler = deps.scheduler ?? systemScheduler;
  const random = deps.random ?? Math.random;
  const log = deps.logger.child({ node_uuid: config.uuid });
  const registry = deps.registry ?? new Registry();
  const metrics: NodeMetrics = createNodeMetrics(registry, {
    defaultMetrics: deps.defaultMetrics ?? true,
  });
  const version = deps.appVersion ?? appVersion();
  metrics.info.set({ version, node_uuid: config.uuid, node_name: config.name }, 1);
  metrics.connected.set(0);
  metrics.pairsStreaming.set(0);
  // Counters start at 0 so that Prometheus sees a first increment (a series that appears
  // at 1 counts as no increase).
  for (const pair of config.pairs) {
    metrics.priceUpdatesSent.inc({ pair }, 0);
    metrics.upstreamWithdrawals.inc({ pair }, 0);
  }
  for (const outcome of READ_OUTCOMES) metrics.upstreamRequests.inc({ outcome }, 0);
  let shutdownRequested = false;

  const write = (msg: StreamFromNode) => connection.link()?.write(msg);

  // ---------------------------------------------------------------- streaming

  const announcement = () => announcementFrame(config.uuid, supply.knownPairs());

  const supply = new PriceSupply({
    config,
    scheduler,
    random,
    log,
    metrics,
    market: deps.market,
    // A withdrawn or restored pair: the controller learns the new set at once (it
    // replaces this node's known set); while disconnected, the next registration carries it.
    onKnownChanged: () => {
      if (connection.link()) write(announcement());
      metrics.pairsStreaming.set(streamer.pairs().length);
    },
    sink: priceSink({ nodeUuid: config.uuid, metrics, link: () => connection.link() }),
  });

  const streamer = supply.streamer;

  const stopAllPairs = () => {
    supply.stopAll();
    metrics.pairsStreaming.set(0);
  };

  // ---------------------------------------------------------------- commands

  const onFrame = nodeCommandHandler({
    config,
    version,
    log,
    metrics,
    scheduler,
    supply,
    link: () => connection.link(),
    write,
    onShutdown: () => {
      shutdownRequested = true;
      void stop().then(() => deps.onShutdownRequested?.());
    },
  });

  // ---------------------------------------------------------------- connection

  // Sees the stream's connection, so that a keepalive timeout can be told from a reset.
  const watch = new ConnectionWatch();
  const dial = nodeDialer(config, watch, deps.credentials);

  const connection: ControllerConnection = new ControllerConnection({
    uuid: config.uuid,
    addresses: config.controllerAddrs.map(formatHostPort),
    backoff: { initialMs: config.reconnectInitialMs, maxMs: config.reconnectMaxMs },
    displacedWaitMs: config.displacedWaitMs,
    displacedJitterMs: config.displacedJitterMs,
    headerWaitMs: config.headerWaitMs,
    connectTimeoutMs: config.connectTimeoutMs,
    stopGraceMs: 1000,
    announce: announcement,
    dial,
    scheduler,
    random,
    log,
    metrics,
    onRegistered: (_link: Link) => metrics.connected.set(1),
    onFrame,
    onLost: () => {
      stopAllPairs();
      metrics.connected.set(0);
    },
  });

  // ---------------------------------------------------------------- lifecycle

  let http: ObservabilityServer | undefined;
  if (deps.serveHttp ?? true) {
    http = await startObservabilityServer(
      config.metricsAddr,
      registry,
      () => connection.link() !== undefined,
      { webConfig: config.metricsWebConfig, logger: log },
    );
  }
  log.info(
    {
      node_name: config.name,
      pairs: config.pairs,
      controllers: config.controllerAddrs.map(formatHostPort),
      metrics_port: http?.port,
      version,
    },
    'node starting',
  );
  connection.start();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopAllPairs();
      await supply.close();
      await connection.stop();
      metrics.connected.set(0);
      await http?.close();
      log.info({ reason: shutdownRequested ? 'shutdown command' : 'stop' }, 'node stopped');
    })());

  return {
    uuid: config.uuid,
    httpPort: http?.port,
    registry,
    isConnected: () => connection.link() !== undefined,
    streamingPairs: () => streamer.pairs(),
    stop,
  };
}
