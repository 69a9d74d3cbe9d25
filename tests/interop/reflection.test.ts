/**
 * grpcurl (stock grpc-go client, built by scripts/setup/interop.sh) against our controller
 * (dist/): server reflection lists and describes the services without the .proto files,
 * the standard health check answers, and CONTROLLER_REFLECTION=off turns reflection off.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ProcessHarness } from '../support/process-harness';
import { killAll } from '../support/processes';
import { grpcurl, interopTool } from './go-peer';

jest.setTimeout(60_000);

/** A controller program (dist/) for the enclosing describe block; call the result for it. */
function controllerFor(extraControllerEnv: Record<string, string> = {}): () => ProcessHarness {
  let h: ProcessHarness | undefined;
  beforeAll(async () => {
    h = await ProcessHarness.start({ extraControllerEnv });
  });
  afterAll(async () => {
    await h?.close();
    await killAll();
  });
  return () => h!;
}

describe('reflection on (the default)', () => {
  const h = controllerFor();

  test('grpcurl list shows both services and grpc.health.v1.Health', async () => {
    const r = await grpcurl([h().address, 'list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const services = r.stdout.trim().split('\n');
    expect(services).toEqual(
      expect.arrayContaining([
        'protobuf.NodeCmdStream',
        'protobuf.CliCmdStream',
        'grpc.health.v1.Health',
      ]),
    );
  });

  test('grpcurl describe shows the services and the messages with their field numbers', async () => {
    const svc = await grpcurl([h().address, 'describe', 'protobuf.NodeCmdStream']);
    expect(svc.code).toBe(0);
    expect(svc.stdout).toMatch(
      /rpc NodeCommandStream \( stream \.protobuf\.StreamFromNode \) returns \( stream \.protobuf\.StreamToNode \)/,
    );
    const msg = await grpcurl([h().address, 'describe', 'protobuf.StreamFromCli']);
    expect(msg.code).toBe(0);
    expect(msg.stdout).toContain('string stream_id = 1;');
    expect(msg.stdout).toContain('.google.protobuf.Any command = 4;');
    expect(msg.stdout).toContain('map<string, string> trace_context = 15;');
    const from = await grpcurl([h().address, 'describe', 'protobuf.StreamFromNode']);
    expect(from.stdout).toContain('optional string from_uuid = 2;');
    const state = await grpcurl([h().address, 'describe', 'protobuf.CurrencyStreamStateV1']);
    expect(state.code).toBe(0);
    expect(state.stdout).toContain('StreamStart = 1;');
  });

  test('a health Check through reflection answers SERVING', async () => {
    const whole = await grpcurl(['-d', '{}', h().address, 'grpc.health.v1.Health/Check']);
    expect(whole.code).toBe(0);
    expect(JSON.parse(whole.stdout)).toEqual({ status: 'SERVING' });
    const node = await grpcurl([
      '-d',
      '{"service":"protobuf.NodeCmdStream"}',
      h().address,
      'grpc.health.v1.Health/Check',
    ]);
    expect(node.code).toBe(0);
    expect(JSON.parse(node.stdout)).toEqual({ status: 'SERVING' });
  });

  test('a controller command can be called with grpcurl alone (no .proto)', async () => {
    const frame = JSON.stringify({
      stream_id: 's1',
      cli_uuid: '00000000-0000-4000-8000-000000000001',
      command: { '@type': 'type.googleapis.com/protobuf.ControllerAppVersionV1Req' },
    });
    const r = await grpcurl(['-d', frame, h().address, 'protobuf.CliCmdStream/CliCommandStream']);
    expect(r.code).toBe(0);
    // grpcurl prints the .proto's field names.
    const reply = JSON.parse(r.stdout) as { stream_id: string; response: { '@type': string } };
    expect(reply.stream_id).toBe('s1');
    expect(reply.response['@type']).toBe(
      'type.googleapis.com/protobuf.ControllerAppVersionV1Reply',
    );
  });
});

describe("docs/interop.md's grpcurl commands, as written", () => {
  const h = controllerFor();

  /** The grpcurl commands of the doc's first `sh` block (continuation lines joined). */
  function documented(): string[] {
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'interop.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(doc)![1]!;
    return block
      .replace(/\\\n\s*/g, ' ')
      .replace(/\n(?=\s+")/g, ' ')
      .split('\n')
      .filter((l) => l.startsWith('grpcurl '));
  }

  test('the comment over `grpcurl ... list` names exactly the services it lists', async () => {
    const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'interop.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(doc)![1]!;
    // The comment lines right above the list command.
    const comment = block.slice(0, block.indexOf('grpcurl -plaintext localhost:5160 list'));
    const named = [...comment.matchAll(/\b(?:grpc|protobuf)\.[\w.]+/g)].map((m) => m[0]);
    const r = await grpcurl([h().address, 'list']);
    expect(r.code).toBe(0);
    const listed = r.stdout.trim().split('\n');
    expect(named.sort()).toEqual([...listed].sort());
    // The doc once said the list also shows "the reflection service itself": it does not.
    expect(/and the reflection service/i.test(comment)).toBe(
      listed.some((s) => s.startsWith('grpc.reflection.')),
    );
  });

  test('every one runs against a controller and answers', async () => {
    const commands = documented();
    expect(commands.length).toBeGreaterThanOrEqual(6);
    const bin = dirname(interopTool('grpcurl'));
    for (const command of commands) {
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          'bash',
          ['--norc', '--noprofile', '-c', command.replaceAll('localhost:5160', h().address)],
          { timeout: 20_000, env: { PATH: `${bin}:${process.env.PATH ?? ''}` } },
          (error, stdout, stderr) =>
            resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
        ),
      );
      expect({ command, code: r.code, stderr: r.stderr }).toEqual({ command, code: 0, stderr: '' });
      expect(r.stdout.trim()).not.toBe('');
      if (command.includes('Health/Check'))
        expect(JSON.parse(r.stdout)).toEqual({ status: 'SERVING' });
      if (command.includes('ControllerListNodesV1Req'))
        expect(r.stdout).toContain('type.googleapis.com/protobuf.ControllerListNodesV1Reply');
    }
  });
});

describe('CONTROLLER_REFLECTION=off', () => {
  const h = controllerFor({ CONTROLLER_REFLECTION: 'off' });

  test('grpcurl list fails, saying the server does not support reflection', async () => {
    const r = await grpcurl([h().address, 'list']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not support the reflection API/);
  });

  test('the health check still answers SERVING', async () => {
    const r = await grpcurl([
      '-import-path',
      `${__dirname}/../../proto`,
      '-proto',
      'grpc/health/v1/health.proto',
      '-d',
      '{}',
      h().address,
      'grpc.health.v1.Health/Check',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ status: 'SERVING' });
  });
});
