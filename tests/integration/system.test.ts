/**
 * The real programs as child processes on loopback: registration, failover on kill, on a
 * clean stop and on a frozen (silent) node, controller restart, kick, and the CLI.
 */
import { nodes, streams } from '../support/harness';
import { ProcessHarness, metricValue } from '../support/process-harness';
import { killAll } from '../support/processes';
import {
  controllerRestartScenario,
  failoverScenario,
  kickScenario,
  startOverlappingNodes,
  streamerOf,
  waitAllStreamed,
} from '../support/scenarios';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

let h: ProcessHarness;

beforeEach(async () => {
  h = await ProcessHarness.start();
});

afterEach(async () => {
  await h.close();
});

afterAll(async () => {
  await killAll();
});

test('registered nodes are listed and every known pair is streamed by exactly one capable node', async () => {
  const { handles, pairs } = await startOverlappingNodes(h);
  const s = await waitAllStreamed(h, pairs);
  const list = await nodes(h);
  expect(list.map((n) => n.nodeUuid).sort()).toEqual(handles.map((x) => x.uuid).sort());
  for (const view of s) {
    const streamer = list.find((n) => n.nodeUuid === view.nodeUuids[0])!;
    expect(streamer.knownCurrencyPairs).toContain(view.currencyPair);
    expect(streamer.streamingCurrencyPairs).toContain(view.currencyPair);
    expect(view.desiredStreams).toBe(1);
  }
  // Load is spread: four pairs over three nodes, nobody streams more than two.
  for (const n of list) expect(n.streamingCurrencyPairs.length).toBeLessThanOrEqual(2);
});

test('a pair moves to another capable node at once when its streaming node is killed', async () => {
  const r = await failoverScenario(h, 'kill');
  console.log(`failover after SIGKILL: ${r.ms} ms, first price from the successor ${r.priceMs} ms`);
  expect(r.successor).not.toBe(r.victim);
  expect(r.ms).toBeLessThan(5000);
  const text = await h.metrics();
  expect(
    metricValue(text, 'currency_controller_failovers_total', '{pair="USD_HKD"}'),
  ).toBeGreaterThanOrEqual(1);
  expect(metricValue(text, 'currency_controller_connected_nodes')).toBe(2);
});

test('a pair moves at once when its streaming node stops gracefully', async () => {
  const r = await failoverScenario(h, 'stop');
  console.log(`failover after SIGTERM: ${r.ms} ms, first price from the successor ${r.priceMs} ms`);
  expect(r.ms).toBeLessThan(5000);
});

test('a frozen node (SIGSTOP) is detected by keepalive and its pairs move within the bound', async () => {
  const r = await failoverScenario(h, 'freeze');
  console.log(
    `failover after SIGSTOP: ${r.ms} ms (keepalive bound ~2000 ms), first price from the successor ${r.priceMs} ms`,
  );
  expect(r.ms).toBeLessThan(h.silentPeerBoundMs);
  // Thawed, the node reconnects by itself and is listed again.
  await waitFor(
    'frozen node back',
    async () => (await nodes(h)).some((n) => n.nodeUuid === r.victim),
    {
      timeoutMs: 15_000,
      intervalMs: 200,
    },
  );
});

test('after a controller restart every node re-registers by itself and every pair is streamed again', async () => {
  const r = await controllerRestartScenario(h);
  console.log(
    `controller restart -> ${r.nodes} nodes back and all pairs streamed: ${r.ms} ms, priced by their streamers: ${r.priceMs} ms`,
  );
  expect(r.ms).toBeLessThan(15_000);
  // The new controller's metrics describe exactly the rebuilt state.
  const text = await h.metrics();
  expect(metricValue(text, 'currency_controller_connected_nodes')).toBe(3);
  expect(metricValue(text, 'currency_controller_pairs_known')).toBe(4);
  expect(metricValue(text, 'currency_controller_pairs_streamed')).toBe(4);
  expect(metricValue(text, 'currency_controller_pairs_unstreamed')).toBe(0);
  for (const pair of ['BTC_USD', 'EUR_USD', 'GBP_USD', 'USD_HKD']) {
    expect(metricValue(text, 'currency_controller_pair_streamers', `{pair="${pair}"}`)).toBe(1);
    expect(metricValue(text, 'currency_controller_failovers_total', `{pair="${pair}"}`)).toBe(0);
  }
});

test('a kicked node is disconnected, its pairs move and prices from the successor arrive, and it reconnects by itself', async () => {
  const r = await kickScenario(h);
  console.log(
    `kick: first price from the successor ${r.successor} after ${r.priceMs} ms, kicked node back after ${r.backMs} ms`,
  );
  expect(r.successor).not.toBe(r.victim);
  const text = await h.metrics();
  expect(metricValue(text, 'currency_controller_node_disconnects_total', '{reason="kicked"}')).toBe(
    1,
  );
  expect(
    metricValue(text, 'currency_controller_failovers_total', '{pair="USD_HKD"}'),
  ).toBeGreaterThanOrEqual(1);
  expect(
    metricValue(text, 'currency_controller_stream_reassignments_total', '{reason="kicked"}'),
  ).toBeGreaterThanOrEqual(1);
});

test('kicking an unknown UUID is reported and exits 1', async () => {
  const r = await h.cli(['controller', 'kick', '00000000-0000-4000-8000-000000000001']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('unknown node 00000000-0000-4000-8000-000000000001');
});

test('node status --all waits for exactly the announced replies and exits 0', async () => {
  const { handles, pairs } = await startOverlappingNodes(h);
  await waitAllStreamed(h, pairs);
  const r = await h.cli(['--json', 'node', 'status', '--all']);
  expect(r.code).toBe(0);
  const doc = JSON.parse(r.stdout) as {
    replies: { nodeUuid: string; type: string }[];
    missingNodeUuids: string[];
  };
  expect(doc.replies.map((x) => x.nodeUuid).sort()).toEqual(handles.map((x) => x.uuid).sort());
  expect(doc.replies.every((x) => x.type === 'NodeStatusV1Reply')).toBe(true);
  expect(doc.missingNodeUuids).toEqual([]);
});

test('node status with an unknown UUID reports it and exits 1, while known nodes still answer', async () => {
  const n = await h.startNode(['USD_HKD']);
  const unknown = '00000000-0000-4000-8000-00000000abcd';
  const r = await h.cli(['node', 'status', '--node-uuid', n.uuid, '--node-uuid', unknown]);
  expect(r.code).toBe(1);
  expect(r.stdout).toContain(n.uuid);
  expect(r.stderr).toContain(`unknown node ${unknown}`);
});

test('node shutdown makes the node answer, leave and exit 0; its pairs move', async () => {
  const a = await h.startNode(['USD_HKD'], { name: 'a' });
  await waitAllStreamed(h, ['USD_HKD']);
  const b = await h.startNode(['USD_HKD'], { name: 'b' });
  const first = streamerOf(await streams(h), 'USD_HKD');
  const r = await h.cli(['node', 'shutdown', '--node-uuid', first]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('shutting down');
  const proc = h.nodes[first === a.uuid ? 0 : 1]!;
  await expect(proc.exited).resolves.toBe(0);
  const other = first === a.uuid ? b.uuid : a.uuid;
  await waitFor(
    'USD_HKD on the other node',
    async () => streamerOf(await streams(h), 'USD_HKD') === other,
  );
});

test('controller prices shows the latest price per pair and the node it came from', async () => {
  const n = await h.startNode(['USD_HKD', 'BTC_USD']);
  await waitFor('prices for both pairs', async () => {
    const r = await h.cli(['--json', 'controller', 'prices']);
    const p = JSON.parse(r.stdout) as { currencyPair: string; nodeUuid: string; price: number }[];
    return p.length === 2 && p.every((x) => x.nodeUuid === n.uuid && x.price > 0);
  });
});

test('watch prints live updates for the chosen pair until interrupted, then exits 0', async () => {
  await h.startNode(['USD_HKD', 'BTC_USD']);
  await waitAllStreamed(h, ['USD_HKD', 'BTC_USD']);
  const { startProgram } = await import('../support/processes');
  const w = startProgram('cli', {}, [
    '--controller',
    h.address,
    '--json',
    'watch',
    '--pair',
    'USD_HKD',
  ]);
  await waitFor(
    'three updates',
    () =>
      w
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{')).length >= 3,
    {
      timeoutMs: 10_000,
    },
  );
  w.signal('SIGINT');
  await expect(w.exited).resolves.toBe(0);
  const lines = w
    .stdout()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { currencyPair: string });
  expect(lines.every((l) => l.currencyPair === 'USD_HKD')).toBe(true);
});
