/**
 * createNode: a price-streaming node as a value a test can start in-process.
 * It keeps one stream to a controller (connection.ts: reconnecting forever with capped
 * exponential backoff and jitter), announces its pairs, streams the pairs it is told to
 * (streamer.ts, prices from the market feed in prices.ts), and answers status and
 * shutdown commands. It never streams while disconnected.
 */
import { NODE_SERVICE, PROGRAMS } from '../shared/protocol';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { Any } from '../gen/google/protobuf/any';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type CurrencyStreamStateV1,
  type StreamFromNode,
  type StreamToNode,
} from '../gen/protobuf/currency_nodes';
import { type Handlers, commandNameOf, pack, unpack } from '../shared/any';
import { readClientToken, withToken } from '../shared/auth';
import { type Scheduler, type Random, systemScheduler } from '../shared/scheduler';
import { formatHostPort } from '../shared/config';
import { clientChannelOptions } from '../shared/grpc-options';
import { type ObservabilityServer, startObservabilityServer } from '../shared/http-server';
import type { Logger } from '../shared/logger';
import { msFromTimestamp, timestampFromMs } from '../shared/time';
import { clientCredentials } from '../shared/tls';
import {
  SpanKind,
  SpanStatusCode,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../shared/tracing';
import { appVersion } from '../shared/version';
import { type Frame, NODE_NAME_METADATA_KEY, createNodeClient } from '../shared/wire';
import { ControllerConnection, type Dialer, type Link } from './connection';
import { NODE_TIMING_DEFAULTS, type NodeConfig } from './config';
import { ConnectionWatch } from './keepalive';
import { type NodeMetrics, createNodeMetrics } from './metrics';
import { PriceSupply } from './price-supply';
import type { MarketFeed } from './prices';
import type { PriceUpdate } from './streamer';
import { READ_OUTCOMES } from './upstream/types';

const TRACER = PROGRAMS.node;

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
  const wireUpdate = (u: PriceUpdate) => ({
    currencyPair: u.currencyPair,
    price: u.price,
    priceUpdatedAt: timestampFromMs(u.updatedAtMs),
  });

  // ---------------------------------------------------------------- streaming

  const announcement = (): StreamFromNode => ({
    nodeUuid: config.uuid,
    response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: supply.knownPairs() }),
    traceContext: {},
  });

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
    sink: {
      ready: () => connection.link() !== undefined,
      backedUp: () => connection.link()?.backedUp() ?? false,
      takesBatches: () => connection.link()?.acceptsPriceBatches ?? false,
      dropped: (n) => metrics.priceUpdatesDropped.inc(n),
      sendOne: (u, traced, parent) => {
        const span = traced
          ? startCommandSpan(TRACER, 'node price update', SpanKind.PRODUCER, parent, {
              ...rpcAttributes(NODE_SERVICE, 'NodePriceUpdateV1Notify'),
              'currency.pair': u.currencyPair,
              'currency.node_uuid': config.uuid,
            })
          : undefined;
        write({
          nodeUuid: config.uuid,
          response: pack('NodePriceUpdateV1Notify', wireUpdate(u)),
          traceContext: span ? injectContext(span.ctx) : {},
        });
        span?.span.end();
        metrics.priceUpdatesSent.inc({ pair: u.currencyPair });
      },
      sendBatch: (updates) => {
        write({
          nodeUuid: config.uuid,
          response: pack('NodePriceUpdatesV1Notify', { updates: updates.map(wireUpdate) }),
          traceContext: {},
        });
        for (const u of updates) metrics.priceUpdatesSent.inc({ pair: u.currencyPair });
      },
    },
  });

  const streamer = supply.streamer;

  const stopAllPairs = () => {
    supply.stopAll();
    metrics.pairsStreaming.set(0);
  };

  /**
   * NodeStreamModifyStateV1Req is a full desired state: whatever it does not start stops,
   * also when a foreign controller lists only some of our pairs (our controller lists every
   * pair, started or stopped; a request that leaves out a streaming pair is logged).
   */
  const applyDesiredState = (states: CurrencyStreamStateV1[], fromUuid?: string) => {
    const listed = new Set(states.map((s) => s.currencyPair));
    const unlisted = streamer.pairs().filter((p) => !listed.has(p));
    if (unlisted.length > 0)
      log.warn(
        { unlisted, from_uuid: fromUuid },
        'NodeStreamModifyStateV1Req does not list pairs this node streams: stopping them (the request is a full desired state; a controller sending only changes does not follow the contract)',
      );
    const wanted = new Map<string, CurrencyStreamStateV1>();
    for (const s of states) {
      if (s.streamState === StreamState.StreamStart && config.pairs.includes(s.currencyPair)) {
        wanted.set(s.currencyPair, s);
      } else if (s.streamState === StreamState.StreamStart) {
        log.warn(
          { pair: s.currencyPair },
          'asked to stream a pair this node cannot reach; ignored',
        );
      }
    }
    for (const pair of streamer.pairs()) if (!wanted.has(pair)) supply.stop(pair);
    // Every node of a pair reads one market, so the controller's latest price needs no
    // carrying over; its stamp does: no price is sent stamped at or before it (streamer.ts).
    for (const s of wanted.values()) {
      const theirsMs =
        s.latestPrice !== undefined ? msFromTimestamp(s.latestPriceUpdatedAt) : undefined;
      if (!supply.start(s.currencyPair, theirsMs))
        log.info(
          { pair: s.currencyPair },
          'asked to stream a pair this node has withdrawn (its upstream fails); not started',
        );
    }
    metrics.pairsStreaming.set(streamer.pairs().length);
  };

  // ---------------------------------------------------------------- commands

  type Ctx = { fromUuid?: string; command: Any };
  const reply = (ctx: Ctx, response: Any) =>
    write({
      nodeUuid: config.uuid,
      fromUuid: ctx.fromUuid,
      response,
      traceContext: injectContext(),
    });

  const statusStates = (): CurrencyStreamStateV1[] =>
    config.pairs.map((pair) => {
      const last = streamer.lastPrices.get(pair);
      return {
        currencyPair: pair,
        streamState: streamer.isStreaming(pair) ? StreamState.StreamStart : StreamState.StreamStop,
        latestPrice: last?.price,
        latestPriceUpdatedAt: last ? timestampFromMs(last.updatedAtMs) : undefined,
      };
    });

  const handlers: Handlers<Ctx> = {
    NodeStreamModifyStateV1Req: (m, ctx) => {
      applyDesiredState(m.streamStates, ctx.fromUuid);
      reply(ctx, pack('NodeStreamModifyStateV1Reply', {}));
    },
    NodeStatusV1Req: (_m, ctx) => {
      const link = connection.link();
      reply(
        ctx,
        pack('NodeStatusV1Reply', {
          appVersion: version,
          connectedControllerServer: link?.address ?? '',
          connectedAt:
            link?.connectedAtMs !== undefined ? timestampFromMs(link.connectedAtMs) : undefined,
          streamStates: statusStates(),
          config: {
            uuid: config.uuid,
            name: config.name,
            verboseLog: config.logLevel === 'debug' || config.logLevel === 'trace',
            controllerServers: config.controllerAddrs.map(formatHostPort),
          },
        }),
      );
    },
    NodeShutdownV1Req: (_m, ctx) => {
      log.info('shutdown requested by the controller');
      reply(ctx, pack('NodeShutdownV1Reply', { shutdownAt: timestampFromMs(scheduler.now()) }));
      shutdownRequested = true;
      void stop().then(() => deps.onShutdownRequested?.());
    },
    UnknownCommandV1Notify: (m) =>
      log.warn({ type_url: m.command?.typeUrl }, 'controller did not understand a frame we sent'),
  };

  const onFrame = (frame: Frame<StreamToNode>) => {
    if (!frame.ok) {
      metrics.malformedFrames.inc();
      log.warn({ problem: frame.error, bytes: frame.bytes }, 'malformed frame from controller');
      return;
    }
    const f = frame.value;
    const r = unpack(f.command);
    const name = commandNameOf(f.command);
    const { span, ctx } = startCommandSpan(
      TRACER,
      `node ${name}`,
      SpanKind.SERVER,
      f.traceContext,
      {
        ...rpcAttributes(NODE_SERVICE, name),
        'currency.node_uuid': config.uuid,
      },
    );
    runIn(ctx, () => {
      // Every reply echoes from_uuid, so it reaches the CLI stream that asked.
      const hctx: Ctx = {
        fromUuid: f.fromUuid,
        command: f.command ?? { typeUrl: '', value: Buffer.alloc(0) },
      };
      let outcome = 'ok';
      if (r.ok && handlers[r.value.name]) {
        log[name === 'NodeStreamModifyStateV1Req' ? 'debug' : 'info'](
          { command: name },
          'command received',
        );
        (handlers[r.value.name] as (m: unknown, c: Ctx) => void)(r.value.message, hctx);
      } else if (!r.ok && r.reason === 'malformed') {
        outcome = 'malformed';
        metrics.malformedFrames.inc();
        log.warn({ type_url: r.typeUrl, problem: r.error }, 'command payload does not decode');
      } else {
        outcome = 'unknown';
        log.warn({ type_url: f.command?.typeUrl }, 'unknown command from controller');
        reply(hctx, pack('UnknownCommandV1Notify', { command: f.command }));
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'unknown command' });
      }
      metrics.commands.inc({ command: name, outcome });
    });
    span.end();
  };

  // ---------------------------------------------------------------- connection

  // Sees the stream's connection, so that a keepalive timeout can be told from a reset.
  const watch = new ConnectionWatch();
  const dial: Dialer = (address, keepalivePermitMs) => {
    // Read on every connect, so rotated TLS and token files are used from the next one on.
    const channel = deps.credentials
      ? { credentials: deps.credentials, options: {} }
      : clientCredentials(config.tls);
    const token = config.token ? readClientToken(config.token) : undefined;
    const client = createNodeClient(address, watch.credentials(channel.credentials), {
      ...clientChannelOptions(config.reconnectMaxMs, keepalivePermitMs),
      ...channel.options,
    });
    const md = new grpc.Metadata();
    // Text headers carry printable ASCII only: any other name goes as UTF-8 in `-bin` (which
    // our controller prefers), plus a percent-encoded copy for controllers that predate it.
    const plainName = /^(?:[!-~](?:[ -~]*[!-~])?)?$/.test(config.name);
    if (plainName) md.set(NODE_NAME_METADATA_KEY, config.name);
    else {
      md.set(`${NODE_NAME_METADATA_KEY}-bin`, Buffer.from(config.name, 'utf8'));
      md.set(NODE_NAME_METADATA_KEY, encodeURIComponent(config.name));
    }
    return {
      call: client.nodeCommandStream(withToken(md, token)),
      close: () => client.close(),
      connection: watch,
    };
  };

  const connection: ControllerConnection = new ControllerConnection({
    uuid: config.uuid,
    addresses: config.controllerAddrs.map(formatHostPort),
    backoff: { initialMs: config.reconnectInitialMs, maxMs: config.reconnectMaxMs },
    displacedWaitMs: config.displacedWaitMs ?? NODE_TIMING_DEFAULTS.displacedWaitMs,
    displacedJitterMs: config.displacedJitterMs ?? NODE_TIMING_DEFAULTS.displacedJitterMs,
    headerWaitMs: config.headerWaitMs ?? NODE_TIMING_DEFAULTS.headerWaitMs,
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
