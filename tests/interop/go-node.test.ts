/**
 * The Go peer playing a node and a CLI of the original implementation (grpc-go, default
 * client settings) against our controller (dist/): assignment, streaming, failover to it
 * when our node dies, and the CLI envelope (`stream_id`) for `controller nodes` and
 * `node status`. Also two quirks a foreign node may have: no name header, and replies
 * without `from_uuid`.
 */
import { randomUUID } from 'node:crypto';
import { prices, streams, nodes } from '../support/harness';
import { ProcessHarness } from '../support/process-harness';
import { killAll, startProgram } from '../support/processes';
import { waitFor } from '../support/wait';
import { killGoPeers, runGoCli, startGoPeer } from './go-peer';

jest.setTimeout(90_000);

let h: ProcessHarness;

beforeEach(async () => {
  h = await ProcessHarness.start();
});

afterEach(async () => {
  await h.close();
  await killGoPeers();
});

afterAll(async () => {
  await killAll();
});

function startGoNode(pairs: string[], extra: string[] = []) {
  const uuid = randomUUID();
  const peer = startGoPeer('node', [
    '--controller',
    h.address,
    '--uuid',
    uuid,
    '--name',
    'go-node',
    '--pairs',
    pairs.join(','),
    ...extra,
  ]);
  return { peer, uuid };
}

async function streamerOf(pair: string): Promise<string | undefined> {
  return (await streams(h)).find((s) => s.currencyPair === pair)?.nodeUuids[0];
}

test('a Go node is registered, assigned its pairs, and its prices reach our controller and CLI', async () => {
  const { peer, uuid } = startGoNode(['EUR_CHF', 'USD_CAD']);
  await waitFor('the Go node assigned both pairs', async () => {
    const s = await streams(h);
    return ['EUR_CHF', 'USD_CAD'].every(
      (p) => s.find((x) => x.currencyPair === p)?.nodeUuids[0] === uuid,
    );
  });
  const modify = await waitFor('the full-state start at the Go node', () =>
    peer.events('modify').find((e) => (e.streaming as string[]).length === 2),
  );
  expect(modify.streaming).toEqual(['EUR_CHF', 'USD_CAD']);
  const listed = (await nodes(h)).find((n) => n.nodeUuid === uuid);
  expect(listed).toMatchObject({ name: 'go-node' });
  expect([...listed!.knownCurrencyPairs].sort()).toEqual(['EUR_CHF', 'USD_CAD']);
  await waitFor('prices from the Go node in `controller prices`', async () => {
    const p = await prices(h);
    return ['EUR_CHF', 'USD_CAD'].every((pair) =>
      p.some((x) => x.currencyPair === pair && x.nodeUuid === uuid && x.price > 0),
    );
  });
  // And live, through our CLI's watch.
  const watch = startProgram('cli', {}, [
    '--controller',
    h.address,
    '--json',
    'watch',
    '--pair',
    'USD_CAD',
  ]);
  const update = await waitFor('a watched price from the Go node', () =>
    watch
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { currencyPair: string; nodeUuid: string })
      .find((u) => u.nodeUuid === uuid),
  );
  expect(update.currencyPair).toBe('USD_CAD');
  watch.signal('SIGINT');
  expect(await watch.exited).toBe(0);
});

test('failover: when our node is killed its pair moves to the Go node, whose prices arrive', async () => {
  const ours = await h.startNode(['GBP_JPY']);
  await waitFor('our node streaming', async () => (await streamerOf('GBP_JPY')) === ours.uuid);
  const { uuid } = startGoNode(['GBP_JPY']);
  await waitFor('the Go node registered', async () =>
    (await nodes(h)).some((n) => n.nodeUuid === uuid),
  );
  expect(await streamerOf('GBP_JPY')).toBe(ours.uuid);

  await ours.kill();
  const killedAt = Date.now();
  await waitFor(
    'the pair moved to the Go node',
    async () => (await streamerOf('GBP_JPY')) === uuid,
  );
  await waitFor('a price from the Go node dated after the kill', async () =>
    (await prices(h)).some(
      (p) =>
        p.currencyPair === 'GBP_JPY' &&
        p.nodeUuid === uuid &&
        Date.parse(p.priceUpdatedAt) > killedAt,
    ),
  );
  console.log(
    `failover to the Go node: streaming its prices ${Date.now() - killedAt} ms after the kill`,
  );
});

test('the Go CLI envelope (stream_id) gets `controller nodes` and `node status` from our controller', async () => {
  const ours = await h.startNode(['USD_SEK']);
  const { uuid } = startGoNode(['USD_NOK']);
  await waitFor('both nodes registered', async () => (await nodes(h)).length === 2);

  const list = await runGoCli(h.address, ['nodes']);
  expect(list.stderr).toBe('');
  expect(list.code).toBe(0);
  const reply = list.events.find((e) => e.event === 'reply');
  expect(reply).toMatchObject({ type: 'protobuf.ControllerListNodesV1Reply' });
  const listed = (reply!.message as { nodeUuids: string[] }).nodeUuids;
  expect([...listed].sort()).toEqual([ours.uuid, uuid].sort());

  const status = await runGoCli(h.address, ['status', ours.uuid, uuid]);
  expect(status.code).toBe(0);
  const replies = status.events.filter((e) => e.event === 'reply');
  expect(replies[0]).toMatchObject({ type: 'protobuf.CliResponseCountV1Notify' });
  const statuses = replies.filter((e) => e.type === 'protobuf.NodeStatusV1Reply');
  expect(statuses.map((e) => e.node_uuid).sort()).toEqual([ours.uuid, uuid].sort());
  for (const s of statuses) {
    const config = (s.message as { config: { uuid: string } }).config;
    expect(config.uuid).toBe(s.node_uuid);
  }
});

test('a foreign node that sends no name header is registered, assigned and streams', async () => {
  const { peer, uuid } = startGoNode(['CHF_JPY'], ['--no-name']);
  await waitFor(
    'the nameless Go node assigned',
    async () => (await streamerOf('CHF_JPY')) === uuid,
  );
  expect(peer.events('modify').length).toBeGreaterThan(0);
  expect((await nodes(h)).find((n) => n.nodeUuid === uuid)).toMatchObject({ name: '' });
  await waitFor('its prices taken', async () =>
    (await prices(h)).some((p) => p.currencyPair === 'CHF_JPY' && p.nodeUuid === uuid),
  );
});

test('a node command completes when the foreign node replies without from_uuid', async () => {
  const { peer, uuid } = startGoNode(['NOK_SEK'], ['--no-from-uuid']);
  await waitFor('the Go node assigned', async () => (await streamerOf('NOK_SEK')) === uuid);
  const status = await runGoCli(h.address, ['status', uuid]);
  expect(peer.events('status_req')).toHaveLength(1);
  expect(status.stderr).toBe('');
  expect(status.code).toBe(0);
  const reply = status.events.find((e) => e.type === 'protobuf.NodeStatusV1Reply');
  expect(reply).toMatchObject({ node_uuid: uuid });
});
