#!/usr/bin/env node
/**
 * A graceful stop of the controller core with a fleet connected, in-process: NODES fake node
 * streams (EventEmitters standing in for grpc-js calls) in GROUPS groups, each group
 * announcing the same PAIRS pairs, then `core.closeNodes()`, as the controller does on
 * SIGTERM before it releases its Lease (leadership lost ends the node streams the same way).
 * Prints one JSON line: the milliseconds the stop took (the event loop is blocked for all
 * of it), and what it counted, logged and wrote while nodes were going: failovers and
 * reassignments, warnings, frames written to nodes.
 *
 *   node --max-old-space-size=8000 bench/compare/core-stop.js DIST_ROOT [NODES PAIRS GROUPS]
 *
 * DIST_ROOT is a tree's build output root (the directory holding services/), as for
 * core-cpu.js; defaults 20000 1000 20 (the documented maxima: about 2 minutes to register,
 * and 10 GB of heap).
 */
'use strict';
const { join, resolve } = require('node:path');
const { randomUUID } = require('node:crypto');
const { FakeCall } = require('./fake-call');

const [dir, ...rest] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node bench/compare/core-stop.js DIST_ROOT [NODES PAIRS GROUPS]');
  process.exit(2);
}
const [NODES, PAIRS, GROUPS] = [0, 1, 2].map((i, _, d = [20000, 1000, 20]) =>
  rest[i] === undefined ? d[i] : Number(rest[i]),
);
const { Registry } = require('prom-client');
const req = (p) => require(join(resolve(dir), 'services', p));
const { pack } = req('shared/any.js');
const { silentLogger } = req('shared/logger.js');
const { createControllerMetrics } = req('controller/metrics.js');
const { ControllerCore } = req('controller/core/core.js');
const { loadControllerConfig } = req('controller/config.js');
const { systemScheduler } = req('shared/scheduler.js');

async function main() {
  const registry = new Registry();
  const metrics = createControllerMetrics(registry, { defaultMetrics: false });
  const logger = silentLogger();
  let warnings = 0;
  const warn = logger.warn.bind(logger);
  logger.warn = (...a) => {
    warnings++;
    return warn(...a);
  };
  const core = new ControllerCore({
    scheduler: systemScheduler,
    random: Math.random,
    logger,
    metrics,
    appVersion: 'bench',
    streamsPerPair: 1,
    newId: randomUUID,
    limits: {
      ...loadControllerConfig({}).limits,
      maxNodes: 1e6,
      maxKnownPairs: 1e7,
      staleStreamMs: 3.6e6,
    },
  });
  const calls = [];
  for (let i = 0; i < NODES; i++) {
    const call = new FakeCall(i);
    core.attachNode(call);
    const pairs = Array.from({ length: PAIRS }, (_, k) => `G${i % GROUPS}K${k}_USD`);
    call.emit('data', {
      ok: true,
      value: {
        nodeUuid: randomUUID(),
        fromUuid: '',
        response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }),
        traceContext: {},
      },
    });
    calls.push(call);
  }
  const sum = async (name) =>
    (await registry.getSingleMetric(name).get()).values.reduce((a, v) => a + v.value, 0);
  const writes = () => calls.reduce((a, c) => a + c.writes, 0);
  const before = {
    failovers: await sum('currency_controller_failovers_total'),
    reassignments: await sum('currency_controller_stream_reassignments_total'),
    writes: writes(),
  };
  warnings = 0;
  const t0 = process.hrtime.bigint();
  core.closeNodes();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(
    JSON.stringify({
      tree: dir,
      nodes: NODES,
      pairsPerNode: PAIRS,
      groups: GROUPS,
      stopMs: +ms.toFixed(1),
      failoversCounted: (await sum('currency_controller_failovers_total')) - before.failovers,
      reassignmentsCounted:
        (await sum('currency_controller_stream_reassignments_total')) - before.reassignments,
      framesWrittenToNodes: writes() - before.writes,
      warnings,
      connectedAfter: await sum('currency_controller_connected_nodes'),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
