/**
 * The CLI as the README and docs tell people to run it from a checkout, run exactly that
 * way through a shell: its `--json` output piped into a JSON parser must parse (npm's
 * banner on stdout used to break it), and a reader that stops early (`| head -1`) must
 * not turn into a stack trace.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from '../../services/shared/any';
import { FakeController } from '../support/fake-controller';

jest.setTimeout(60_000);

const ROOT = join(__dirname, '..', '..');
const PAIRS = Array.from({ length: 2000 }, (_, i) => `P${i}_USD`);
const NODE = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const PARSE_STDIN =
  'node -e \'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).length))\'';

let fake: FakeController;

beforeAll(async () => {
  fake = await FakeController.start(0, {
    cli: (frame, reply) => {
      const cmd = unpack(frame.command);
      const send = (response: ReturnType<typeof pack>) =>
        reply({ streamId: frame.streamId, traceContext: {}, response });
      if (!cmd.ok) return;
      // A controller that lists nodes in one reply only (no ControllerListNodesV2Req).
      if (cmd.value.name === 'ControllerListNodesV2Req')
        send(pack('UnknownCommandV1Notify', { command: frame.command }));
      if (cmd.value.name === 'ControllerListNodesV1Req')
        send(pack('ControllerListNodesV1Reply', { nodeUuids: [], nodes: [] }));
      if (cmd.value.name === 'ControllerStreamsV1Req')
        send(
          pack('ControllerStreamsV1Reply', {
            pairs: PAIRS.slice(0, 3).map((p) => ({
              currencyPair: p,
              nodeUuids: [NODE],
              capableNodes: 1,
              desiredStreams: 1,
            })),
          }),
        );
      if (cmd.value.name === 'ControllerWatchPricesV2Req') {
        send(pack('ControllerWatchPricesV1Reply', { currencyPairs: [] }));
        // More than a pipe holds: the CLI is still writing when `head` has gone.
        send(
          pack('ControllerPriceUpdatesV1Notify', {
            prices: PAIRS.map((p, i) => ({
              currencyPair: p,
              price: 1 + i,
              priceUpdatedAt: { seconds: 1_700_000_000, nanos: 0 },
              nodeUuid: NODE,
            })),
          }),
        );
      }
    },
  });
});

afterAll(() => fake.stop());

/** Every way the README and docs/*.md run the CLI from a checkout through npm. */
function documentedInvocations(): string[] {
  const files = [
    join(ROOT, 'README.md'),
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(ROOT, 'docs', f)),
  ];
  const found = new Set<string>();
  for (const f of files)
    for (const m of readFileSync(f, 'utf8').matchAll(/npm run((?: +-[a-z-]+)*) +cli --/g))
      found.add(m[0]);
  return [...found];
}

function shell(command: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], {
      cwd: ROOT,
      env: { ...process.env, CLI_CONTROLLER_ADDR: fake.address, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

test('the docs run the CLI from a checkout one way, and it is pipe-safe', () => {
  expect(documentedInvocations()).toEqual(['npm run -s cli --']);
});

test.each(documentedInvocations())(
  '`%s --json controller streams | <JSON parser>` parses',
  async (invocation) => {
    const r = await shell(
      `set -o pipefail; ${invocation} --json controller streams | ${PARSE_STDIN}`,
    );
    expect(r.err).toBe('');
    expect(r.out).toBe('3\n');
    expect(r.code).toBe(0);
  },
);

test.each(documentedInvocations())(
  '`%s --json watch | head -1` ends without a stack trace',
  async (invocation) => {
    const r = await shell(`${invocation} --json watch | head -1`);
    expect(JSON.parse(r.out)).toMatchObject({ currencyPair: PAIRS[0] });
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.err).not.toMatch(/npm (error|ERR)/);
  },
);
