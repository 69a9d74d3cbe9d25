/**
 * `controller streams` (controller-streams.ts): every known pair with its streamers, and
 * --check, which fails (exit 1) when a pair has fewer streamers than desired. The session
 * is a fake answering ControllerStreamsV1Req and ControllerListNodesV1Req.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import type { GlobalOptions } from '../command';
import type { ControllerResult } from '../session';
import { controllerStreams } from './controller-streams';
import {
  fakeCliSession,
  namedNodes,
  noPagedNodeList,
} from '../../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

type Pair = MessageOf<'ControllerStreamsV1Reply'>['pairs'][number];
const pair = (
  currencyPair: string,
  nodeUuids: string[],
  desiredStreams = 1,
  capableNodes = 2,
): Pair => ({
  currencyPair,
  nodeUuids,
  capableNodes,
  desiredStreams,
});

async function run(
  reply: ControllerResult<'ControllerStreamsV1Reply'>,
  args: { check?: boolean } = {},
  opts: Partial<GlobalOptions> = {},
) {
  const t = fakeCliSession(
    {
      controllerFrames: noPagedNodeList,
      controllerCommand: (name: string) =>
        Promise.resolve(
          name === 'ControllerListNodesV1Req' ? namedNodes([A, 'alpha'], [B, '']) : reply,
        ),
    },
    { opts },
  );
  const code = await controllerStreams(t.env, { intervalMs: 1000, ...args });
  return { code, out: t.out(), err: t.err() };
}

describe('controller streams', () => {
  test('one row per pair: streamers over desired, capable nodes, and the streamers with their names', async () => {
    const r = await run({
      ok: true,
      reply: { pairs: [pair('BTC_USD', [A, B], 2, 3), pair('EUR_USD', [B])] },
    });
    expect(r.code).toBe(EXIT.OK);
    expect(r.out).toBe(
      [
        'PAIR     STREAMS  CAPABLE  NODES',
        `BTC_USD  2/2      3        ${A} (alpha), ${B}`,
        `EUR_USD  1/1      2        ${B}`,
        '',
      ].join('\n'),
    );
    expect(r.err).toBe('');
  });

  test('a known pair no node streams is shown as (none), and counted on stderr', async () => {
    const r = await run({ ok: true, reply: { pairs: [pair('BTC_USD', [], 1, 0)] } });
    expect(r.out).toContain('BTC_USD  0/1      0        (none)');
    expect(r.err).toBe('1 known pair(s) have no streaming node\n');
    expect(r.code).toBe(EXIT.OK);
  });

  test('--check: exit 1 when a pair has fewer streamers than desired, naming each such pair', async () => {
    const r = await run(
      { ok: true, reply: { pairs: [pair('BTC_USD', [A], 2, 1), pair('EUR_USD', [A, B], 2)] } },
      { check: true },
    );
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe(
      'check failed: 1 pair(s) have fewer streamers than desired: BTC_USD 1/2 (1 capable)\n',
    );
  });

  test('--check passes (exit 0) when every pair has its streamers', async () => {
    const r = await run(
      { ok: true, reply: { pairs: [pair('EUR_USD', [A, B], 2)] } },
      { check: true },
    );
    expect(r.code).toBe(EXIT.OK);
    expect(r.err).toBe('');
  });

  test('--check with --json still says why it failed on stderr', async () => {
    const r = await run(
      { ok: true, reply: { pairs: [pair('BTC_USD', [], 1)] } },
      { check: true },
      { json: true },
    );
    expect(r.code).toBe(EXIT.FAILED);
    expect(JSON.parse(r.out)).toEqual([
      { currencyPair: 'BTC_USD', nodeUuids: [], nodes: [], capableNodes: 2, desiredStreams: 1 },
    ]);
    expect(r.err).toContain('check failed: 1 pair(s)');
  });

  test('--json lists each streamer with its name', async () => {
    const r = await run({ ok: true, reply: { pairs: [pair('BTC_USD', [A])] } }, {}, { json: true });
    expect(JSON.parse(r.out)[0].nodes).toEqual([{ nodeUuid: A, name: 'alpha' }]);
  });

  test('a failed request is exit 1 with the problem on stderr', async () => {
    const r = await run({ ok: false, problem: 'timed out after 1 s' });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe('controller streams: timed out after 1 s\n');
  });
});
