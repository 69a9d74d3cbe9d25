/** NODE_UPSTREAM=simulated (the default): the built-in market, read at the node's own clock. */
import type { Scheduler } from '../../shared/scheduler';
import type { MarketFeed } from '../prices';
import type { Upstream, UpstreamEvents } from './types';

export function createSimulatedUpstream(
  market: MarketFeed,
  events: UpstreamEvents,
  scheduler: Scheduler,
): Upstream {
  return {
    kind: 'simulated',
    read: (pair) => {
      const atMs = scheduler.now();
      const price = market.latest(pair, atMs);
      if (price !== undefined) events.quote(pair, { price, atMs, ownClock: true });
    },
    follow: () => {},
    unfollow: () => {},
    close: () => Promise.resolve(),
  };
}
