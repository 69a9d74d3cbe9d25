/**
 * What a node does with the controller's commands: each frame gets a span, is decoded and
 * dispatched (shared/any.ts `dispatch`) to its handler, and answered with from_uuid echoed
 * so the reply reaches the CLI stream that asked; what the node does not know is answered
 * with UnknownCommandV1Notify. Counted per command and outcome.
 */
import type { Any } from '../gen/google/protobuf/any';
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type CurrencyStreamStateV1,
  type StreamFromNode,
  type StreamToNode,
} from '../gen/protobuf/currency_nodes';
import { type Handlers, commandNameOf, dispatch, pack, unpack } from '../shared/any';
import { formatHostPort } from '../shared/config';
import type { Logger } from '../shared/logger';
import { NODE_SERVICE, PROGRAMS } from '../shared/protocol';
import type { Scheduler } from '../shared/scheduler';
import { msFromTimestamp, timestampFromMs } from '../shared/time';
import {
  SpanKind,
  SpanStatusCode,
  injectContext,
  rpcAttributes,
  runIn,
  startCommandSpan,
} from '../shared/tracing';
import type { Frame } from '../shared/wire';
import type { NodeConfig } from './config';
import type { Link } from './link';
import type { NodeMetrics } from './metrics';
import type { PriceSupply } from './price-supply';

export interface NodeCommandDeps {
  config: Pick<NodeConfig, 'uuid' | 'name' | 'pairs' | 'logLevel' | 'controllerAddrs'>;
  version: string;
  log: Logger;
  metrics: Pick<NodeMetrics, 'commands' | 'malformedFrames' | 'pairsStreaming'>;
  scheduler: Scheduler;
  supply: Pick<PriceSupply, 'start' | 'stop' | 'streamer'>;
  /** The registered stream to the controller, if any. */
  link(): Link | undefined;
  write(msg: StreamFromNode): void;
  /** A NodeShutdownV1Req was answered: the node stops. */
  onShutdown(): void;
}

type Ctx = { fromUuid?: string; command: Any };

/** The handler of every frame from the controller. */
export function nodeCommandHandler(d: NodeCommandDeps): (frame: Frame<StreamToNode>) => void {
  const { config, log, metrics, supply } = d;
  const streamer = supply.streamer;
  const reply = (ctx: Ctx, response: Any) =>
    d.write({
      nodeUuid: config.uuid,
      fromUuid: ctx.fromUuid,
      response,
      traceContext: injectContext(),
    });

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
      const link = d.link();
      reply(
        ctx,
        pack('NodeStatusV1Reply', {
          appVersion: d.version,
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
      reply(ctx, pack('NodeShutdownV1Reply', { shutdownAt: timestampFromMs(d.scheduler.now()) }));
      d.onShutdown();
    },
    UnknownCommandV1Notify: (m) =>
      log.warn({ type_url: m.command?.typeUrl }, 'controller did not understand a frame we sent'),
  };
  // Logged as received before its handler runs (the handler may log what it does).
  const received = Object.fromEntries(
    Object.entries(handlers).map(([name, h]) => [
      name,
      (m: unknown, ctx: Ctx) => {
        log[name === 'NodeStreamModifyStateV1Req' ? 'debug' : 'info'](
          { command: name },
          'command received',
        );
        (h as (m: unknown, c: Ctx) => void)(m, ctx);
      },
    ]),
  ) as Handlers<Ctx>;

  return (frame) => {
    if (!frame.ok) {
      metrics.malformedFrames.inc();
      log.warn({ problem: frame.error, bytes: frame.bytes }, 'malformed frame from controller');
      return;
    }
    const f = frame.value;
    const r = unpack(f.command);
    const name = commandNameOf(f.command);
    const { span, ctx } = startCommandSpan(
      PROGRAMS.node,
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
      if (r.ok && dispatch(received, r.value, hctx)) {
        outcome = 'ok';
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
}
