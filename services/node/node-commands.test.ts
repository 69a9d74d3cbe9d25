/**
 * The node's command handling (node-commands.ts) on fakes: replies echo from_uuid, a
 * NodeStreamModifyStateV1Req is a full desired state, unknown and malformed commands are
 * answered or counted, and shutdown is handed to the node.
 */
import {
  CurrencyStreamStateV1_StreamState as StreamState,
  type StreamFromNode,
  type StreamToNode,
} from '../gen/protobuf/currency_nodes';
import { type MessageName, type MessageOf, pack, unpack } from '../shared/any';
import { silentLogger } from '../shared/logger';
import { fakeScheduler } from '../../tests/support/fake-scheduler';
import type { Frame } from '../shared/wire';
import { type NodeCommandDeps, nodeCommandHandler } from './node-commands';

const UUID = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const CLI = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

function setup(streaming: string[] = []) {
  const scheduler = fakeScheduler();
  const written: StreamFromNode[] = [];
  const counted: { command: string; outcome: string }[] = [];
  const live = new Set(streaming);
  let malformed = 0;
  let shutdowns = 0;
  const deps: NodeCommandDeps = {
    config: {
      uuid: UUID,
      name: 'edge-1',
      pairs: ['USD_HKD', 'EUR_USD'],
      logLevel: 'info',
      controllerAddrs: [{ host: 'ctl', port: 5160 }],
    },
    version: '1.2.3',
    log: silentLogger(),
    metrics: {
      commands: { inc: (l: { command: string; outcome: string }) => counted.push(l) },
      malformedFrames: { inc: () => malformed++ },
      pairsStreaming: { set: () => undefined },
    } as unknown as NodeCommandDeps['metrics'],
    scheduler,
    supply: {
      streamer: {
        pairs: () => [...live],
        isStreaming: (p: string) => live.has(p),
        lastPrices: new Map([['USD_HKD', { price: 7.8, updatedAtMs: 1000 }]]),
      },
      start: (p: string) => (live.add(p), true),
      stop: (p: string) => void live.delete(p),
    } as unknown as NodeCommandDeps['supply'],
    link: () =>
      ({ address: 'ctl:5160', connectedAtMs: 5000 }) as ReturnType<NodeCommandDeps['link']>,
    write: (m) => written.push(m),
    onShutdown: () => shutdowns++,
  };
  const onFrame = nodeCommandHandler(deps);
  const send = <N extends MessageName>(name: N, m: MessageOf<N>) =>
    onFrame({ ok: true, value: { fromUuid: CLI, command: pack(name, m), traceContext: {} } });
  const replies = () =>
    written.map((w) => {
      const u = unpack(w.response);
      if (!u.ok) throw new Error('undecodable reply');
      return { name: u.value.name, message: u.value.message, fromUuid: w.fromUuid };
    });
  return {
    onFrame,
    send,
    replies,
    counted,
    live,
    scheduler,
    malformed: () => malformed,
    shutdowns: () => shutdowns,
  };
}

test('status: the reply echoes from_uuid and names the pairs, the controller and the config', () => {
  const t = setup(['USD_HKD']);
  t.send('NodeStatusV1Req', {});
  const [r] = t.replies();
  expect(r!.name).toBe('NodeStatusV1Reply');
  expect(r!.fromUuid).toBe(CLI);
  const m = r!.message as MessageOf<'NodeStatusV1Reply'>;
  expect(m.appVersion).toBe('1.2.3');
  expect(m.connectedControllerServer).toBe('ctl:5160');
  expect(m.streamStates.map((s) => [s.currencyPair, s.streamState, s.latestPrice])).toEqual([
    ['USD_HKD', StreamState.StreamStart, 7.8],
    ['EUR_USD', StreamState.StreamStop, undefined],
  ]);
  expect(m.config).toMatchObject({ uuid: UUID, name: 'edge-1', controllerServers: ['ctl:5160'] });
  expect(t.counted).toEqual([{ command: 'NodeStatusV1Req', outcome: 'ok' }]);
});

test('a desired state starts what it lists and this node has, and stops everything else', () => {
  const t = setup(['USD_HKD']);
  t.send('NodeStreamModifyStateV1Req', {
    streamStates: [
      { currencyPair: 'EUR_USD', streamState: StreamState.StreamStart },
      { currencyPair: 'BTC_USD', streamState: StreamState.StreamStart },
    ],
  });
  expect([...t.live]).toEqual(['EUR_USD']);
  expect(t.replies().map((r) => [r.name, r.fromUuid])).toEqual([
    ['NodeStreamModifyStateV1Reply', CLI],
  ]);
});

test('a command the node does not take is answered UnknownCommandV1Notify and counted unknown', () => {
  const t = setup();
  t.send('ControllerAppVersionV1Req', {});
  expect(t.replies().map((r) => r.name)).toEqual(['UnknownCommandV1Notify']);
  expect(t.counted).toEqual([{ command: 'ControllerAppVersionV1Req', outcome: 'unknown' }]);
});

test('an undecodable frame, or payload, is counted as malformed and not answered', () => {
  const t = setup();
  t.onFrame({ ok: false, error: 'bad', bytes: 3 } as Frame<StreamToNode>);
  t.onFrame({
    ok: true,
    value: {
      command: {
        typeUrl: 'type.googleapis.com/protobuf.NodeStatusV1Req',
        value: Buffer.from([0xff]),
      },
      traceContext: {},
    },
  });
  expect(t.malformed()).toBe(2);
  expect(t.replies()).toEqual([]);
  expect(t.counted).toEqual([{ command: 'NodeStatusV1Req', outcome: 'malformed' }]);
});

test('shutdown is answered with the time, then handed to the node', () => {
  const t = setup();
  t.send('NodeShutdownV1Req', {});
  const [r] = t.replies();
  expect(r!.name).toBe('NodeShutdownV1Reply');
  const at = (r!.message as MessageOf<'NodeShutdownV1Reply'>).shutdownAt!;
  expect(Number(at.seconds) * 1000).toBe(Math.floor(t.scheduler.now() / 1000) * 1000);
  expect(t.shutdowns()).toBe(1);
});
