/** The one place that picks an upstream by NODE_UPSTREAM. */
import type { Logger } from '../../shared/logger';
import type { Random, Scheduler } from '../../shared/scheduler';
import type { MarketFeed } from '../prices';
import type { UpstreamConfig } from './config';
import { createHttpUpstream } from './http';
import { createSimulatedUpstream } from './simulated';
import type { Upstream, UpstreamEvents } from './types';
import { createWebSocketUpstream } from './websocket';

export function createUpstream(
  config: UpstreamConfig,
  events: UpstreamEvents,
  deps: { scheduler: Scheduler; random: Random; log: Logger; market: MarketFeed },
): Upstream {
  switch (config.kind) {
    case 'simulated':
      return createSimulatedUpstream(deps.market, events, deps.scheduler);
    case 'http':
      return createHttpUpstream(config, events, deps);
    case 'websocket':
      return createWebSocketUpstream(config, events, deps);
  }
}
