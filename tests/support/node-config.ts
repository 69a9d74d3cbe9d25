/**
 * The configuration of an in-process test node (`startNode`), built by hand rather than
 * from the environment: one pair, a price a minute (so only first prices show up), quick
 * reconnects, no sampled price spans, metrics on an ephemeral loopback port, silent logs.
 * A test sets what it is about in `over`; the timings it leaves out are the defaults.
 */
import { randomUUID } from 'node:crypto';
import { type NodeConfig, withNodeTimingDefaults } from '../../services/node/config';

export function testNodeConfig(
  over: Partial<NodeConfig> & Pick<NodeConfig, 'controllerAddrs'>,
): NodeConfig {
  return withNodeTimingDefaults({
    pairs: ['USD_HKD'],
    uuid: randomUUID(),
    name: 'test-node',
    priceIntervalMs: { minMs: 60_000, maxMs: 60_000 },
    metricsAddr: { host: '127.0.0.1', port: 0 },
    logLevel: 'silent',
    reconnectInitialMs: 50,
    reconnectMaxMs: 100,
    priceSpanSampleRatio: 0,
    ...over,
  });
}

/** One controller on loopback, as `controllerAddrs`. */
export const loopback = (port: number): NodeConfig['controllerAddrs'] => [
  { host: '127.0.0.1', port },
];
