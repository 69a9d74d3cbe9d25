/**
 * Hostile and careless input on every inbound path, from a seeded generator: raw bytes,
 * envelopes with unknown, truncated or oversized Any payloads, invalid UUIDs, pairs that
 * break the format, and floods of commands. The controller stays up, answers or rejects,
 * counts what it rejected, and keeps serving a well-behaved node and CLI throughout.
 * The seed is printed; FUZZ_SEED=<n> replays a run.
 */
import { randomUUID } from 'node:crypto';
import { type MessageName, pack } from '../../services/shared/any';
import { seededRandom } from '../../services/shared/scheduler';
import { timestampFromMs } from '../../services/shared/time';
import { HealthStatus } from '../../services/controller/health';
import { runInProcess } from '../support/cli-runner';
import { type PriceView, priceMs } from '../support/harness';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { PriceModel, isoOfTs, msOfTs } from '../support/price-fuzz';
import { startWatch } from '../support/process-harness';
import { killAll, runProgram } from '../support/processes';
import { RawCli, RawNode, as, rawBytesStream } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 3000);
const NAMES: MessageName[] = [
  'NodeKnownCurrenciesV1Notify',
  'NodePriceUpdateV1Notify',
  'NodePriceUpdatesV1Notify',
  'NodeStatusV1Reply',
  'ControllerListNodesV1Req',
  'ControllerListNodesV2Req',
  'ControllerKickNodesV1Req',
  'ControllerStreamsV1Req',
  'ControllerPricesV1Req',
  'ControllerWatchPricesV1Req',
  'ControllerWatchPricesV2Req',
  'NodeStatusV1Req',
  'NodeShutdownV1Req',
];

let leaks: LeakWatch;
beforeAll(() => {
  leaks = new LeakWatch().start();
});
afterAll(async () => {
  await killAll();
  await leaks.expectNoLeaks();
});

test(`the controller survives ${FRAMES} hostile frames and keeps serving everyone else`, async () => {
  console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${FRAMES} frames`);
  const rnd = seededRandom(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const junkString = () =>
    pick([
      '',
      'usd-hkd',
      'USD_HKD'.repeat(40),
      '💥',
      'not-a-uuid',
      bytes(12).toString('latin1'),
      randomUUID(),
    ]);

  const ctl = await startTestController({
    maxMessageBytes: 64 * 1024,
    limits: { maxPairsPerNode: 50 },
  });
  const peers: { close(): void }[] = [];
  try {
    // The well-behaved: a node streaming USD_HKD and, later, a CLI.
    const good = new RawNode(ctl.address, randomUUID());
    peers.push(good);
    good.announce(['USD_HKD']);
    await good.next('assigned', (f) => as('NodeStreamModifyStateV1Req', f.command));

    const hostileNodes = Array.from({ length: 4 }, () => new RawNode(ctl.address, randomUUID()));
    const hostileClis = Array.from({ length: 3 }, () => new RawCli(ctl.address));
    peers.push(...hostileNodes, ...hostileClis);
    let rawStreams = 0;
    for (let i = 0; i < FRAMES; i++) {
      const kind = int(10);
      if (kind === 0 && rawStreams < 20) {
        // Undecodable bytes on a fresh raw stream to either service.
        const path = pick([
          '/protobuf.NodeCmdStream/NodeCommandStream',
          '/protobuf.CliCmdStream/CliCommandStream',
        ]);
        const raw = rawBytesStream(ctl.address, path);
        peers.push(raw);
        raw.write(Buffer.concat([Buffer.from([0x0a, 0xff, 0xff, 0xff]), bytes(int(64))]));
        rawStreams++;
      } else if (kind <= 4) {
        // Node envelopes: garbage UUIDs, unknown and truncated Anys, pairs that break the format.
        const n = pick(hostileNodes);
        const variant = int(6);
        if (variant === 0) n.send({ nodeUuid: junkString() });
        else if (variant === 1)
          n.send({
            response: {
              typeUrl: `type.googleapis.com/protobuf.${junkString()}`,
              value: bytes(int(32)),
            },
          });
        else if (variant === 2)
          n.send({
            response: {
              typeUrl: `type.googleapis.com/protobuf.${pick(NAMES)}`,
              value: bytes(1 + int(48)),
            },
          });
        else if (variant === 3)
          n.announce(
            Array.from({ length: int(80) }, () =>
              rnd() < 0.5 ? junkString() : `P${int(1000)}_USD`,
            ),
          );
        else if (variant === 4)
          n.price(pick(['USD_HKD', 'usd', junkString()]), pick([NaN, Infinity, -1, 1e308, 7.8]));
        else
          n.send({
            fromUuid: randomUUID(),
            response: pack('NodeStatusV1Reply', {
              appVersion: junkString(),
              connectedControllerServer: '',
              streamStates: [],
            }),
          });
      } else {
        // CLI envelopes: bad ids, unknown and truncated commands, floods of real commands.
        const c = pick(hostileClis);
        const variant = int(5);
        const streamId = rnd() < 0.1 ? '' : `s${i}`;
        if (variant === 0)
          c.send({
            streamId,
            cliUuid: junkString(),
            command: pack('ControllerAppVersionV1Req', {}),
          });
        else if (variant === 1)
          c.send({ streamId, nodeUuids: [junkString()], command: pack('NodeStatusV1Req', {}) });
        else if (variant === 2)
          c.send({
            streamId,
            command: {
              typeUrl: `type.googleapis.com/protobuf.${junkString()}`,
              value: bytes(int(16)),
            },
          });
        else if (variant === 3)
          c.send({
            streamId,
            command: {
              typeUrl: `type.googleapis.com/protobuf.${pick(NAMES)}`,
              value: bytes(1 + int(32)),
            },
          });
        else
          c.send({
            streamId,
            command: pack(
              pick([
                'ControllerListNodesV1Req',
                'ControllerStreamsV1Req',
                'ControllerPricesV1Req',
              ] as const),
              {},
            ),
          });
      }
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }

    // Still serving: the good node's prices land, and a CLI gets correct answers.
    good.price('USD_HKD', 7.7777);
    await waitFor(
      'good price after the storm',
      () => ctl.controller.core.prices.get('USD_HKD')?.price === 7.7777,
      { timeoutMs: 15_000 },
    );
    const { code, out } = await runInProcess([
      '--controller',
      ctl.address,
      '--json',
      'controller',
      'streams',
    ]);
    expect(code).toBe(0);
    const streams = JSON.parse(out) as { currencyPair: string; nodeUuids: string[] }[];
    expect(streams.find((s) => s.currencyPair === 'USD_HKD')?.nodeUuids).toEqual([good.uuid]);
    // No invalid pair made it into the controller's state.
    expect(streams.every((s) => /^[A-Z0-9]+_[A-Z0-9]+$/.test(s.currencyPair))).toBe(true);

    const malformedNode =
      (await ctl.metric('currency_controller_malformed_frames_total', { peer: 'node' })) ?? 0;
    const malformedCli =
      (await ctl.metric('currency_controller_malformed_frames_total', { peer: 'cli' })) ?? 0;
    const unknownNode =
      (await ctl.metric('currency_controller_unknown_commands_total', { peer: 'node' })) ?? 0;
    const unknownCli =
      (await ctl.metric('currency_controller_unknown_commands_total', { peer: 'cli' })) ?? 0;
    const rejectedPairs =
      (await ctl.metric('currency_controller_rejected_total', { reason: 'max_pairs' })) ?? 0;
    console.log(
      `rejected: malformed node=${malformedNode} cli=${malformedCli}, unknown node=${unknownNode} cli=${unknownCli}, over pair limit=${rejectedPairs}, raw streams=${rawStreams}`,
    );
    expect(malformedNode).toBeGreaterThan(0);
    expect(malformedCli).toBeGreaterThan(0);
    expect(unknownNode + unknownCli).toBeGreaterThan(0);
  } finally {
    for (const p of peers) p.close();
    await ctl.controller.stop();
  }
});

test(`seeded prices and timestamps: nothing refused is stored, nothing breaks a CLI, and every count adds up`, async () => {
  const seed = SEED + 1;
  const updates = Number(process.env.FUZZ_PRICES ?? 3000);
  console.log(`price fuzz seed ${seed} (replay with FUZZ_SEED=${SEED}), ${updates} updates`);
  const rnd = seededRandom(seed);
  const skew = 5000;
  const ctl = await startTestController({ limits: { maxPriceSkewMs: skew } });
  const pairs = ['USD_HKD', 'EUR_USD'];
  const model = new PriceModel(rnd, pairs, skew);
  const fuzzer = new RawNode(ctl.address, randomUUID());
  let watch: Awaited<ReturnType<typeof startWatch>> | undefined;
  try {
    fuzzer.announce(pairs);
    await fuzzer.next('both pairs assigned', () => {
      const s = fuzzer.latestDesiredState()?.streamStates ?? [];
      return s.filter((x) => x.streamState === 1).length === 2 ? true : undefined;
    });
    watch = await startWatch(ctl.address, pairs);
    const counted = async () => {
      const m = (name: string, labels?: Record<string, string>) =>
        ctl.metric(name, labels).then((v) => v ?? 0);
      const byReason = {
        not_positive: await m('currency_controller_prices_refused_total', {
          reason: 'not_positive',
        }),
        bad_timestamp: await m('currency_controller_prices_refused_total', {
          reason: 'bad_timestamp',
        }),
        future: await m('currency_controller_prices_refused_total', { reason: 'future' }),
      };
      let stored = 0;
      for (const pair of pairs)
        stored += await m('currency_controller_price_updates_total', { pair });
      return {
        stored,
        superseded: await m('currency_controller_prices_superseded_total'),
        refused: byReason.not_positive + byReason.bad_timestamp + byReason.future,
        malformed: await m('currency_controller_malformed_frames_total', { peer: 'node' }),
        byReason,
      };
    };
    // What the store holds must always be an update the rules accept, and never step back.
    const lastSeen = new Map<string, number>();
    const checkStore = () => {
      for (const pair of pairs) {
        const p = ctl.controller.core.prices.get(pair);
        if (!p) continue;
        expect(Number.isFinite(p.price) && p.price > 0).toBe(true);
        expect(p.updatedAtMs).toBeLessThanOrEqual(Date.now() + skew);
        expect(p.updatedAtMs).toBeGreaterThanOrEqual(lastSeen.get(pair) ?? 0);
        lastSeen.set(pair, p.updatedAtMs);
        expect(model.acceptableMs.has(`${pair}|${p.updatedAtMs}|${p.price}`)).toBe(true);
      }
    };
    const phases = 6;
    let sent = 0;
    for (let phase = 0; phase < phases; phase++) {
      while (sent < ((phase + 1) * updates) / phases) {
        const now = Date.now();
        // A few for a pair the fuzzer does not stream: ignored, counted nowhere.
        const batch = Array.from({ length: rnd() < 0.7 ? 1 : 2 + Math.floor(rnd() * 4) }, () =>
          model.update(now, rnd() < 0.03 ? ['GBP_USD'] : pairs),
        );
        model.apply(batch, now);
        fuzzer.send({
          response:
            batch.length === 1
              ? pack('NodePriceUpdateV1Notify', batch[0]!)
              : pack('NodePriceUpdatesV1Notify', { updates: batch }),
        });
        sent += batch.length;
        if (sent % 25 < batch.length) {
          await new Promise((r) => setImmediate(r));
          checkStore();
        }
      }
      // Every frame so far taken (intake is in order on one stream), and counted as modelled.
      const c = model.counts;
      let got = await counted();
      await waitFor(
        `phase ${phase}: every update counted`,
        async () => {
          got = await counted();
          return (
            got.stored === c.stored &&
            got.superseded === c.superseded &&
            got.refused === c.refused &&
            got.malformed === c.malformedFrames
          );
        },
        { timeoutMs: 15_000 },
      ).catch((err: unknown) => {
        throw new Error(
          `${String(err)}: counted ${JSON.stringify(got)}, model ${JSON.stringify(c)}`,
        );
      });
      for (const r of ['not_positive', 'bad_timestamp', 'future'] as const)
        expect(got.byReason[r]).toBeGreaterThanOrEqual(c.refusedOnly[r]);
      checkStore();
      // The store holds exactly the newest update the rules accept.
      for (const pair of pairs) {
        const want = model.latest.get(pair);
        const have = ctl.controller.core.prices.get(pair);
        expect(have && { price: have.price, at: have.updatedAtMs }).toEqual(
          want && { price: want.price, at: msOfTs(want.priceUpdatedAt) },
        );
      }
      // The real CLI shows it, whole, and exits 0.
      const r = await runProgram('cli', [
        '--controller',
        ctl.address,
        '--json',
        'controller',
        'prices',
      ]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      const shown = JSON.parse(r.stdout) as PriceView[];
      for (const pair of pairs) {
        const want = model.latest.get(pair);
        expect(shown.find((x) => x.currencyPair === pair)).toEqual(
          want &&
            expect.objectContaining({
              price: want.price,
              priceUpdatedAt: isoOfTs(want.priceUpdatedAt),
              nodeUuid: fuzzer.uuid,
            }),
        );
      }
    }

    // The watch saw only acceptable prices, in time order per pair, and ends cleanly.
    const markerAt = Math.max(
      Date.now(),
      ...[...model.latest.values()].map((u) => msOfTs(u.priceUpdatedAt)),
    );
    const marker = {
      currencyPair: 'USD_HKD',
      price: 7.7,
      priceUpdatedAt: timestampFromMs(markerAt + 1),
    };
    model.accept(marker);
    fuzzer.send({ response: pack('NodePriceUpdateV1Notify', marker) });
    const w = watch;
    await waitFor('the marker price on the watch', () =>
      w
        .updates()
        .some(
          (u) =>
            u.currencyPair === 'USD_HKD' &&
            u.price === 7.7 &&
            u.priceUpdatedAt === isoOfTs(marker.priceUpdatedAt),
        ),
    );
    await watch.stop();
    expect(await watch.program.exited).toBe(0);
    const seen = watch.updates();
    const prev = new Map<string, number>();
    for (const u of seen) {
      expect(typeof u.price === 'number' && u.price > 0 && Number.isFinite(u.price)).toBe(true);
      expect(model.acceptable.has(`${u.currencyPair}|${u.priceUpdatedAt}|${u.price}`)).toBe(true);
      expect(priceMs(u)).toBeGreaterThanOrEqual(prev.get(u.currencyPair) ?? 0);
      prev.set(u.currencyPair, priceMs(u));
    }
    const c = model.counts;
    console.log(
      `price fuzz: stored ${c.stored}, superseded ${c.superseded}, refused ${c.refused} (${JSON.stringify(c.refusedOnly)} with one fault), malformed frames ${c.malformedFrames}, ignored ${c.ignored}; watch saw ${seen.length}`,
    );
    expect(c.stored).toBeGreaterThan(0);
    expect(c.superseded).toBeGreaterThan(0);
    expect(Object.values(c.refusedOnly).every((n) => n > 0)).toBe(true);
    expect(ctl.controller.health.status()).toBe(HealthStatus.SERVING);
  } finally {
    await watch?.stop();
    fuzzer.close();
    await ctl.controller.stop();
  }
});
