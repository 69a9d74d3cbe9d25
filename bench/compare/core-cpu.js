#!/usr/bin/env node
/**
 * The controller core alone, in-process, CPU time per operation: the same fake streams
 * (EventEmitters standing in for grpc-js calls, frames already decoded) drive either the
 * core of this tree (`dist/services/controller/core/core.js`) or the hub of a tree before the
 * redesign (`dist/services/controller/hub.js`, e.g. 36a9e37), so that two builds can be
 * compared without gRPC, protobuf decoding or load generators in the figure: those are the
 * same code in both and dominate the end-to-end `ingest` figure, which swings 2-3x with
 * the machine's load (BENCHMARKS.md "Controller core redesign: before and after").
 *
 *   node --expose-gc bench/compare/core-cpu.js DIST_ROOT [DIST_ROOT...] [--rounds N]
 *
 * DIST_ROOT is a tree's build output root (the directory holding services/; its
 * node_modules must resolve, e.g. a symlink to this tree's). The trees are loaded into one
 * process and interleaved round by round, so that they share the machine's state. Prints
 * one JSON line per tree and round: CPU microseconds per price update (singles, batches of
 * 10), per node registration (10,000 nodes announcing 3 pairs each), per node when the
 * controller stops with those nodes connected (every stream ended at once), the heap growth
 * per registered node, and the fraction of updates the core stored (1: the run is valid).
 */
'use strict';
const { join, resolve } = require('node:path');
const { randomUUID } = require('node:crypto');
const { FakeCall } = require('./fake-call');

const args = process.argv.slice(2);
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 3;
const roots = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--rounds');
if (roots.length === 0) {
  console.error('usage: node bench/compare/core-cpu.js DIST_ROOT [DIST_ROOT...] [--rounds N]');
  process.exit(2);
}
const { Registry } = require('prom-client');

/** The core's module: core/core.js, or core.js in a tree from before the core/ folder. */
function loadCore(req) {
  try {
    return req('controller/core/core.js');
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    return req('controller/core.js');
  }
}

/** One tree's core: its own modules, loaded from its own build. */
function loadTree(dir) {
  const root = resolve(dir);
  const req = (p) => require(join(root, 'services', p));
  const { pack } = req('shared/any.js');
  const { silentLogger } = req('shared/logger.js');
  const { createControllerMetrics } = req('controller/metrics.js');
  let kind;
  let makeCore;
  try {
    const { ControllerCore } = loadCore(req);
    const { loadControllerConfig } = req('controller/config.js');
    const { systemScheduler } = req('shared/scheduler.js');
    kind = 'core';
    makeCore = (metrics, random) =>
      new ControllerCore({
        scheduler: systemScheduler,
        random,
        logger: silentLogger(),
        metrics,
        appVersion: 'bench',
        streamsPerPair: 1,
        newId: randomUUID,
        limits: { ...loadControllerConfig({}).limits, maxNodes: 1e6, staleStreamMs: 3.6e6 },
      });
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    const { Hub } = req('controller/hub.js');
    const { systemClock } = req('shared/clock.js');
    kind = 'hub';
    makeCore = (metrics, random) =>
      new Hub({
        clock: systemClock,
        random,
        logger: silentLogger(),
        metrics,
        appVersion: 'bench',
        streamsPerPair: 1,
        newId: randomUUID,
        limits: {
          maxNodes: 1e6,
          maxPairsPerNode: 1000,
          maxCliStreams: 1000,
          maxPendingPerCli: 1000,
          maxQueuedMessages: 1000,
          slowWatcherMs: 10_000,
        },
      });
  }
  return { dir, kind, pack, createControllerMetrics, makeCore };
}

function seeded(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

let lastRegistry;
function setup(tree) {
  const registry = new Registry();
  lastRegistry = registry;
  const metrics = tree.createControllerMetrics(registry, { defaultMetrics: false });
  return tree.makeCore(metrics, seeded(7));
}

/** Updates the core stored (currency_controller_price_updates_total), to check the run. */
async function stored(registry) {
  const m = await registry.getSingleMetric('currency_controller_price_updates_total').get();
  if (process.env.CORE_CPU_DEBUG) {
    for (const name of [
      'currency_controller_prices_refused_total',
      'currency_controller_prices_superseded_total',
      'currency_controller_malformed_frames_total',
    ]) {
      const x = registry.getSingleMetric(name);
      if (x) console.error(name, JSON.stringify((await x.get()).values));
    }
  }
  return m.values.reduce((a, v) => a + v.value, 0);
}

function attach(tree, core, i, pairs) {
  const { pack } = tree;
  const call = new FakeCall(i);
  core.attachNode(call);
  const uuid = randomUUID();
  call.emit('data', {
    ok: true,
    value: {
      nodeUuid: uuid,
      fromUuid: '',
      response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: pairs }),
      traceContext: {},
    },
  });
  return { call, uuid };
}

/** 100 nodes, 200 pairs (each streamed by one node), then `updates` price frames. */
function ingest(tree, batch, updates) {
  const { pack } = tree;
  const core = setup(tree);
  const nodes = [];
  for (let i = 0; i < 100; i++)
    nodes.push({
      ...attach(tree, core, i, [`P${2 * i}_X`, `P${2 * i + 1}_X`]),
      pairs: [`P${2 * i}_X`, `P${2 * i + 1}_X`],
    });
  // Each pair's updates a millisecond apart (prices are compared by their millisecond), all
  // within the last 30 s: each update is newer than the pair's latest (so the new core
  // stores it, as the old one did) and none is dated ahead of the clock.
  const baseMs = Date.now() - 30_000;
  const count = new Map();
  const stamp = (pair) => {
    const ms = baseMs + (count.get(pair) ?? 0);
    count.set(pair, ms - baseMs + 1);
    return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
  };
  const frames = [];
  for (let f = 0; f < updates / batch; f++) {
    const n = nodes[f % nodes.length];
    const pairOf = (k) => n.pairs[(Math.floor(f / nodes.length) + k) & 1];
    const response =
      batch === 1
        ? pack('NodePriceUpdateV1Notify', {
            currencyPair: pairOf(0),
            price: 7.8 + (f % 100) / 1e4,
            priceUpdatedAt: stamp(pairOf(0)),
          })
        : pack('NodePriceUpdatesV1Notify', {
            updates: Array.from({ length: batch }, (_, k) => ({
              currencyPair: pairOf(k),
              price: 7.8 + (f % 100) / 1e4,
              priceUpdatedAt: stamp(pairOf(k)),
            })),
          });
    frames.push([
      n.call,
      { ok: true, value: { nodeUuid: n.uuid, fromUuid: '', response, traceContext: {} } },
    ]);
  }
  // Timed: only the core taking the frames (encoding them above is the bench's own work).
  const start = cpuUs();
  for (const [call, frame] of frames) call.emit('data', frame);
  const us = cpuUs() - start;
  core.closeAll();
  return { us: us / updates, registry: lastRegistry, updates };
}

function register(tree, count) {
  const core = setup(tree);
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const start = cpuUs();
  for (let i = 0; i < count; i++)
    attach(tree, core, i, [`A${i % 500}_X`, `B${i % 700}_X`, `C${i % 300}_X`]);
  const us = cpuUs() - start;
  global.gc?.();
  const heap = process.memoryUsage().heapUsed - heap0;
  // A graceful stop with the fleet connected: every node stream ended at once.
  const stopStart = cpuUs();
  core.closeAll();
  const stopUs = cpuUs() - stopStart;
  return { usPerNode: us / count, heapBytesPerNode: heap / count, stopUsPerNode: stopUs / count };
}

async function main() {
  const trees = roots.map(loadTree);
  // Warm-up (JIT) of each tree, then the rounds, the trees interleaved within each round.
  for (const t of trees) {
    ingest(t, 1, 50_000);
    ingest(t, 10, 50_000);
    register(t, 1000);
  }
  for (let r = 0; r < rounds; r++) {
    for (const t of trees) {
      const single = ingest(t, 1, 400_000);
      const singleStored = (await stored(single.registry)) / single.updates;
      const batches = ingest(t, 10, 2_000_000);
      const batchStored = (await stored(batches.registry)) / batches.updates;
      const reg = register(t, 10_000);
      console.log(
        JSON.stringify({
          tree: t.dir,
          kind: t.kind,
          round: r + 1,
          usPerUpdateSingle: +single.us.toFixed(3),
          usPerUpdateBatched: +batches.us.toFixed(3),
          usPerRegistration: +reg.usPerNode.toFixed(1),
          usPerNodeAtStop: +reg.stopUsPerNode.toFixed(1),
          heapBytesPerNode: Math.round(reg.heapBytesPerNode),
          storedFraction: +Math.min(singleStored, batchStored).toFixed(4),
        }),
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
