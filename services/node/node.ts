/**
 * createNode: a price-streaming node as a value a test can start in-process.
 * It keeps one stream to a controller, reconnecting forever with capped exponential
 * backoff and jitter, announces its pairs, streams the pairs it is told to, and answers
 * status and shutdown commands. It never streams while disconnected.
 */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import type { Any } from '../gen/google/protobuf/any';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type CurrencyStreamStateV1,
  type StreamToNode,
} from '../gen/protobuf/currency_nodes';
import { type Handlers, type MessageOf, commandNameOf, pack, unpack } from '../shared/any';
import { isAuthStatus, readClientToken, withToken } from '../shared/auth';
import { type Scheduler, type Random, type TimerHandle, systemScheduler } from '../shared/scheduler';
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
import {
  CONTROLLER_ACCEPTS_METADATA_KEY,
  type Frame,
  NODE_NAME_METADATA_KEY,
  type NodeClientCall,
  PRICE_BATCH_MESSAGE,
  createNodeClient,
} from '../shared/wire';
import { backoffDelayMs } from './backoff';
import type { NodeConfig } from './config';
import { type NodeMetrics, createNodeMetrics } from './metrics';
import { PriceSimulator } from './prices';

const TRACER = 'currency-node';
const NODE_SERVICE = 'protobuf.NodeCmdStream';

export interface NodeDeps {
  logger: Logger;
  registry?: Registry;
  clock?: Scheduler;
  random?: Random;
  defaultMetrics?: boolean;
  credentials?: grpc.ChannelCredentials;
  serveHttp?: boolean;
  /** Called after a NodeShutdownV1Req was answered and the stream closed; main exits 0. */
  onShutdownRequested?: () => void;
  appVersion?: string;
}

interface PairStream {
  price: number;
  updatedAtMs: number;
  timer?: TimerHandle;
}

interface Connection {
  readonly client: ReturnType<typeof createNodeClient>;
  readonly call: NodeClientCall;
  readonly address: string;
  registered: boolean;
  connectedAtMs?: number;
  closed: boolean;
  /** The controller said (response header) that it takes NodePriceUpdatesV1Notify. */
  acceptsPriceBatches: boolean;
}

type PriceUpdate = MessageOf<'NodePriceUpdateV1Notify'>;

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
  const clock = deps.clock ?? systemScheduler;
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
  for (const pair of config.pairs) metrics.priceUpdatesSent.inc({ pair }, 0);
  const simulator = new PriceSimulator(random);
  /** Last price per pair this node has produced or been handed, kept across streams. */
  const lastPrices = new Map<string, { price: number; updatedAtMs: number }>();
  const streams = new Map<string, PairStream>();

  let conn: Connection | undefined;
  let everRegistered = false;
  let attempt = 0;
  let reconnectTimer: TimerHandle | undefined;
  let stopped = false;
  let shutdownRequested = false;

  // ---------------------------------------------------------------- streaming

  const intervalMs = () => {
    const { minMs, maxMs } = config.priceIntervalMs;
    return minMs + Math.floor(random() * (maxMs - minMs + 1));
  };

  /**
   * Updates that fell due in this event-loop turn, sent together at its end as one
   * NodePriceUpdatesV1Notify when the controller takes it: one frame instead of many is
   * most of the cost of a price update, on both sides.
   */
  const batch = new Map<string, PriceUpdate>();
  let batchFlush: NodeJS.Immediate | undefined;

  const clearBatch = () => {
    batch.clear();
    if (batchFlush) clearImmediate(batchFlush);
    batchFlush = undefined;
  };

  const flushBatch = () => {
    batchFlush = undefined;
    // Pairs stopped since their update was queued are not sent.
    const updates = [...batch.values()].filter((u) => streams.has(u.currencyPair));
    batch.clear();
    if (updates.length === 0 || !conn?.registered) return;
    if (conn.call.writableNeedDrain) {
      // The controller is behind; these updates would be superseded by the next anyway.
      metrics.priceUpdatesDropped.inc(updates.length);
      return;
    }
    write({
      nodeUuid: config.uuid,
      response:
        updates.length === 1
          ? pack('NodePriceUpdateV1Notify', updates[0]!)
          : pack('NodePriceUpdatesV1Notify', { updates }),
      traceContext: {},
    });
    for (const u of updates) metrics.priceUpdatesSent.inc({ pair: u.currencyPair });
  };

  const sendPrice = (pair: string) => {
    const s = streams.get(pair);
    if (!s || !conn?.registered) return;
    s.price = simulator.next(s.price);
    s.updatedAtMs = Math.max(clock.now(), s.updatedAtMs + 1);
    lastPrices.set(pair, { price: s.price, updatedAtMs: s.updatedAtMs });
    const update: PriceUpdate = {
      currencyPair: pair,
      price: s.price,
      priceUpdatedAt: timestampFromMs(s.updatedAtMs),
    };
    if (conn.call.writableNeedDrain) {
      // The controller is behind; this update would be superseded by the next anyway.
      metrics.priceUpdatesDropped.inc();
    } else {
      // A sampled share of updates carries a span, continued by the controller; those
      // travel alone, so that the span covers exactly one update.
      const traced = config.priceSpanSampleRatio > 0 && random() < config.priceSpanSampleRatio;
      if (!traced && conn.acceptsPriceBatches) {
        batch.set(pair, update);
        batchFlush ??= setImmediate(flushBatch);
      } else {
        const span = traced
          ? startCommandSpan(TRACER, 'node price update', SpanKind.PRODUCER, undefined, {
              ...rpcAttributes(NODE_SERVICE, 'NodePriceUpdateV1Notify'),
              'currency.pair': pair,
              'currency.node_uuid': config.uuid,
            })
          : undefined;
        write({
          nodeUuid: config.uuid,
          response: pack('NodePriceUpdateV1Notify', update),
          traceContext: span ? injectContext(span.ctx) : {},
        });
        span?.span.end();
        metrics.priceUpdatesSent.inc({ pair });
      }
    }
    s.timer = clock.setTimeout(() => sendPrice(pair), intervalMs());
  };

  const startPair = (state: CurrencyStreamStateV1) => {
    const pair = state.currencyPair;
    if (streams.has(pair)) return;
    // Continue from whichever is newer: our own last price or the controller's.
    const own = lastPrices.get(pair);
    const theirsMs = msFromTimestamp(state.latestPriceUpdatedAt);
    let from = own ?? { price: simulator.seedPrice(pair), updatedAtMs: 0 };
    if (state.latestPrice !== undefined && theirsMs !== undefined && theirsMs > from.updatedAtMs) {
      from = { price: state.latestPrice, updatedAtMs: theirsMs };
    }
    streams.set(pair, { price: from.price, updatedAtMs: from.updatedAtMs });
    log.info({ pair, from_price: from.price }, 'streaming started');
    sendPrice(pair); // a first price at once, not after a full interval
  };

  const stopPair = (pair: string) => {
    const s = streams.get(pair);
    if (!s) return;
    if (s.timer) clock.clearTimeout(s.timer);
    streams.delete(pair);
    log.info({ pair }, 'streaming stopped');
  };

  const stopAllPairs = () => {
    clearBatch();
    for (const pair of [...streams.keys()]) stopPair(pair);
    metrics.pairsStreaming.set(0);
  };

  /** NodeStreamModifyStateV1Req is a full desired state: whatever it does not start stops. */
  const applyDesiredState = (states: CurrencyStreamStateV1[]) => {
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
    for (const pair of [...streams.keys()]) if (!wanted.has(pair)) stopPair(pair);
    for (const s of wanted.values()) startPair(s);
    metrics.pairsStreaming.set(streams.size);
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
      const last = lastPrices.get(pair);
      return {
        currencyPair: pair,
        streamState: streams.has(pair) ? StreamState.StreamStart : StreamState.StreamStop,
        latestPrice: last?.price,
        latestPriceUpdatedAt: last ? timestampFromMs(last.updatedAtMs) : undefined,
      };
    });

  const handlers: Handlers<Ctx> = {
    NodeStreamModifyStateV1Req: (m, ctx) => {
      applyDesiredState(m.streamStates);
      reply(ctx, pack('NodeStreamModifyStateV1Reply', {}));
    },
    NodeStatusV1Req: (_m, ctx) =>
      reply(
        ctx,
        pack('NodeStatusV1Reply', {
          appVersion: version,
          connectedControllerServer: conn?.address ?? '',
          connectedAt:
            conn?.connectedAtMs !== undefined ? timestampFromMs(conn.connectedAtMs) : undefined,
          streamStates: statusStates(),
          config: {
            uuid: config.uuid,
            name: config.name,
            verboseLog: config.logLevel === 'debug' || config.logLevel === 'trace',
            controllerServers: config.controllerAddrs.map(formatHostPort),
          },
        }),
      ),
    NodeShutdownV1Req: (_m, ctx) => {
      log.info('shutdown requested by the controller');
      reply(ctx, pack('NodeShutdownV1Reply', { shutdownAt: timestampFromMs(clock.now()) }));
      shutdownRequested = true;
      void stop().then(() => deps.onShutdownRequested?.());
    },
    UnknownCommandV1Notify: (m) =>
      log.warn({ type_url: m.command?.typeUrl }, 'controller did not understand a frame we sent'),
  };

  const onFrame = (c: Connection, frame: Frame<StreamToNode>) => {
    if (c.closed) return;
    if (!c.registered) onRegistered(c);
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

  const write = (msg: Parameters<NodeClientCall['write']>[0]) => {
    if (!conn || conn.closed) return;
    try {
      conn.call.write(msg);
    } catch (err) {
      log.debug({ err }, 'write after stream end');
    }
  };

  const onRegistered = (c: Connection) => {
    c.registered = true;
    c.connectedAtMs = clock.now();
    attempt = 0;
    if (everRegistered) metrics.reconnects.inc();
    everRegistered = true;
    metrics.connected.set(1);
    log.info({ controller: c.address }, 'registered with controller');
  };

  const connect = () => {
    reconnectTimer = undefined;
    if (stopped) return;
    if (attempt > 0 || everRegistered) metrics.reconnectAttempts.inc();
    const target = config.controllerAddrs[Math.floor(random() * config.controllerAddrs.length)]!;
    const address = formatHostPort(target);
    // TLS files and the token file are read on every connect, so rotated ones are used
    // from the next connection on; an unreadable one is retried like an unreachable controller.
    let channel: { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions };
    let token: string | undefined;
    try {
      channel = deps.credentials
        ? { credentials: deps.credentials, options: {} }
        : clientCredentials(config.tls);
      token = config.token ? readClientToken(config.token) : undefined;
    } catch (err) {
      retryLater('error', {
        problem: err instanceof Error ? err.message : String(err),
        msg: 'cannot read the TLS or token files',
      });
      return;
    }
    const client = createNodeClient(address, channel.credentials, {
      ...clientChannelOptions(config.reconnectMaxMs),
      ...channel.options,
    });
    const md = new grpc.Metadata();
    md.set(NODE_NAME_METADATA_KEY, config.name);
    const call = client.nodeCommandStream(withToken(md, token));
    const c: Connection = {
      client,
      call,
      address,
      registered: false,
      closed: false,
      acceptsPriceBatches: false,
    };
    conn = c;
    log.debug({ controller: address, attempt }, 'connecting');
    call.on('metadata', (md: grpc.Metadata) => {
      const accepts = md.get(CONTROLLER_ACCEPTS_METADATA_KEY).join(',').split(',');
      c.acceptsPriceBatches = accepts.some((name) => name.trim() === PRICE_BATCH_MESSAGE);
    });
    call.on('data', (frame: Frame<StreamToNode>) => onFrame(c, frame));
    call.on('error', (err: grpc.ServiceError) => onLost(c, err));
    call.on('end', () => onLost(c));
    call.on('status', (st: grpc.StatusObject) => {
      if (st.code !== grpc.status.OK) onLost(c, st);
    });
    // Announce our pairs right after the stream opens.
    call.write({
      nodeUuid: config.uuid,
      response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: config.pairs }),
      traceContext: {},
    });
  };

  const onLost = (c: Connection, err?: { code?: number; details?: string }) => {
    if (c.closed) return;
    c.closed = true;
    stopAllPairs();
    metrics.connected.set(0);
    if (err?.details && /keepalive/i.test(err.details)) metrics.keepaliveTimeouts.inc();
    try {
      c.call.end();
    } catch {
      // already ended
    }
    c.client.close();
    if (conn === c) conn = undefined;
    if (stopped) return;
    const fields = { controller: c.address, code: err?.code, details: err?.details };
    if (isAuthStatus(err?.code)) {
      // Refused credentials may be a secret being rotated: keep trying, loudly.
      retryLater('error', {
        ...fields,
        msg: `the controller refused this node's credentials (${grpc.status[err!.code!]}); check NODE_TOKEN / NODE_TOKEN_FILE and the client certificate`,
      });
    } else {
      retryLater(c.registered ? 'warn' : 'debug', { ...fields, msg: 'controller stream lost' });
    }
  };

  const retryLater = (
    level: 'error' | 'warn' | 'debug',
    { msg, ...fields }: Record<string, unknown> & { msg: string },
  ) => {
    if (stopped) return;
    const delay = backoffDelayMs(
      attempt,
      { initialMs: config.reconnectInitialMs, maxMs: config.reconnectMaxMs },
      random,
    );
    attempt++;
    log[level]({ ...fields, retry_in_ms: delay }, msg);
    reconnectTimer = clock.setTimeout(connect, delay);
  };

  // ---------------------------------------------------------------- lifecycle

  let http: ObservabilityServer | undefined;
  if (deps.serveHttp ?? true) {
    http = await startObservabilityServer(
      config.metricsAddr,
      registry,
      () => conn?.registered === true,
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
  connect();

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopped = true;
      if (reconnectTimer) clock.clearTimeout(reconnectTimer);
      stopAllPairs();
      const c = conn;
      if (c && !c.closed) {
        // Half-close and give the controller a moment to see the clean end.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          c.call.on('status', () => {
            clearTimeout(t);
            resolve();
          });
          try {
            c.call.end();
          } catch {
            resolve();
          }
        });
        c.closed = true;
        c.call.cancel();
        c.client.close();
      }
      conn = undefined;
      metrics.connected.set(0);
      await http?.close();
      log.info({ reason: shutdownRequested ? 'shutdown command' : 'stop' }, 'node stopped');
    })());

  return {
    uuid: config.uuid,
    httpPort: http?.port,
    registry,
    isConnected: () => conn?.registered === true,
    streamingPairs: () => [...streams.keys()].sort(),
    stop,
  };
}
