/**
 * `currency-cli watch` asks for batched updates (ControllerWatchPricesV2Req) and still
 * works with a controller that predates them: against a stand-in that knows only V1, it
 * gets UnknownCommandV1Notify, subscribes with V1 and prints the single updates.
 * Against our controller, the same CLI gets its updates batched.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { StreamFromCli } from '../../services/gen/protobuf/currency_nodes';
import { pack, unpack } from '../../services/shared/any';
import { timestampFromMs } from '../../services/shared/time';
import { type CliServerCall, type Frame, cliServerDefinition } from '../../services/shared/wire';
import { startInProcess } from '../support/cli-runner';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { RawNode } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

let leaks: LeakWatch;
beforeAll(() => {
  leaks = new LeakWatch().start();
});
afterAll(async () => {
  await leaks.expectNoLeaks();
});

const NODE = '0b7d4a9e-2c1f-4e8a-9b3d-5f6a7c8d9e0f';

/** A controller of the original design: knows V1 watches only. */
async function startV1OnlyController(): Promise<{
  address: string;
  commands: string[];
  stop(): void;
}> {
  const server = new grpc.Server();
  const commands: string[] = [];
  server.addService(cliServerDefinition, {
    cliCommandStream: (call: CliServerCall) => {
      call.on('data', (frame: Frame<StreamFromCli>) => {
        if (!frame.ok) return;
        const f = frame.value;
        const r = unpack(f.command);
        const name = r.ok ? r.value.name : 'unknown';
        commands.push(name);
        if (name !== 'ControllerWatchPricesV1Req') {
          call.write({
            streamId: f.streamId,
            response: pack('UnknownCommandV1Notify', { command: f.command }),
            traceContext: {},
          });
          return;
        }
        call.write({
          streamId: f.streamId,
          response: pack('ControllerWatchPricesV1Reply', { currencyPairs: ['USD_HKD'] }),
          traceContext: {},
        });
        for (const price of [7.8, 7.81]) {
          call.write({
            streamId: f.streamId,
            nodeUuid: NODE,
            response: pack('NodePriceUpdateV1Notify', {
              currencyPair: 'USD_HKD',
              price,
              priceUpdatedAt: timestampFromMs(Date.now()),
            }),
            traceContext: {},
          });
        }
      });
      call.on('error', () => {});
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, commands, stop: () => server.forceShutdown() };
}

async function watchLines(address: string, count: number) {
  const cli = startInProcess(['--controller', address, '--json', 'watch']);
  const lines = await waitFor('updates printed', () => {
    const l = cli
      .out()
      .split('\n')
      .filter((x) => x.startsWith('{'));
    return l.length >= count ? l : undefined;
  });
  cli.stop();
  await expect(cli.code).resolves.toBe(0);
  return {
    lines: lines.map(
      (l) => JSON.parse(l) as { currencyPair: string; price: number; nodeUuid: string },
    ),
    err: cli.err(),
  };
}

test('watch falls back to V1 with a controller that does not know V2, and prints its updates', async () => {
  const old = await startV1OnlyController();
  try {
    const { lines, err } = await watchLines(old.address, 2);
    expect(old.commands).toEqual(['ControllerWatchPricesV2Req', 'ControllerWatchPricesV1Req']);
    expect(lines.map((l) => [l.currencyPair, l.price, l.nodeUuid])).toEqual([
      ['USD_HKD', 7.8, NODE],
      ['USD_HKD', 7.81, NODE],
    ]);
    expect(err).toContain('watching USD_HKD');
  } finally {
    old.stop();
  }
});

test('watch gets batched updates from our controller and prints each with its node', async () => {
  const ctl = await startTestController();
  const n = new RawNode(ctl.address, randomUUID());
  try {
    n.announce(['USD_HKD', 'BTC_USD']);
    await n.next('both pairs', (f) => {
      const m = unpack(f.command);
      return m.ok && m.value.name === 'NodeStreamModifyStateV1Req' ? true : undefined;
    });
    const printed = watchLines(ctl.address, 2);
    await waitFor(
      'watch subscribed',
      async () =>
        ((await ctl.metric('currency_controller_commands_total', {
          command: 'ControllerWatchPricesV2Req',
          outcome: 'ok',
        })) ?? 0) === 1,
    );
    n.prices([
      { pair: 'USD_HKD', price: 7.8 },
      { pair: 'BTC_USD', price: 60000 },
    ]);
    const { lines } = await printed;
    expect(lines.map((l) => [l.currencyPair, l.price, l.nodeUuid])).toEqual([
      ['USD_HKD', 7.8, n.uuid],
      ['BTC_USD', 60000, n.uuid],
    ]);
  } finally {
    n.close();
    await ctl.controller.stop();
  }
});
