/**
 * grpcurl (stock grpc-go client, built by scripts/setup/interop.sh) against our controller
 * (dist/): server reflection lists and describes the services without the .proto files,
 * the standard health check answers, and CONTROLLER_REFLECTION=off turns reflection off.
 */
import { ProcessHarness } from '../support/process-harness';
import { killAll } from '../support/processes';
import { grpcurl } from './go-peer';

jest.setTimeout(60_000);

describe('reflection on (the default)', () => {
  let h: ProcessHarness;
  beforeAll(async () => {
    h = await ProcessHarness.start();
  });
  afterAll(async () => {
    await h.close();
    await killAll();
  });

  test('grpcurl list shows both services and grpc.health.v1.Health', async () => {
    const r = await grpcurl([h.address, 'list']);
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
    const svc = await grpcurl([h.address, 'describe', 'protobuf.NodeCmdStream']);
    expect(svc.code).toBe(0);
    expect(svc.stdout).toMatch(
      /rpc NodeCommandStream \( stream \.protobuf\.StreamFromNode \) returns \( stream \.protobuf\.StreamToNode \)/,
    );
    const msg = await grpcurl([h.address, 'describe', 'protobuf.StreamFromCli']);
    expect(msg.code).toBe(0);
    expect(msg.stdout).toContain('string stream_id = 1;');
    expect(msg.stdout).toContain('.google.protobuf.Any command = 4;');
    expect(msg.stdout).toContain('map<string, string> trace_context = 15;');
    const from = await grpcurl([h.address, 'describe', 'protobuf.StreamFromNode']);
    expect(from.stdout).toContain('optional string from_uuid = 2;');
    const state = await grpcurl([h.address, 'describe', 'protobuf.CurrencyStreamStateV1']);
    expect(state.code).toBe(0);
    expect(state.stdout).toContain('StreamStart = 1;');
  });

  test('a health Check through reflection answers SERVING', async () => {
    const whole = await grpcurl(['-d', '{}', h.address, 'grpc.health.v1.Health/Check']);
    expect(whole.code).toBe(0);
    expect(JSON.parse(whole.stdout)).toEqual({ status: 'SERVING' });
    const node = await grpcurl([
      '-d',
      '{"service":"protobuf.NodeCmdStream"}',
      h.address,
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
    const r = await grpcurl(['-d', frame, h.address, 'protobuf.CliCmdStream/CliCommandStream']);
    expect(r.code).toBe(0);
    // grpcurl prints the .proto's field names.
    const reply = JSON.parse(r.stdout) as { stream_id: string; response: { '@type': string } };
    expect(reply.stream_id).toBe('s1');
    expect(reply.response['@type']).toBe(
      'type.googleapis.com/protobuf.ControllerAppVersionV1Reply',
    );
  });
});

describe('CONTROLLER_REFLECTION=off', () => {
  let h: ProcessHarness;
  beforeAll(async () => {
    h = await ProcessHarness.start({ extraControllerEnv: { CONTROLLER_REFLECTION: 'off' } });
  });
  afterAll(async () => {
    await h.close();
    await killAll();
  });

  test('grpcurl list fails, saying the server does not support reflection', async () => {
    const r = await grpcurl([h.address, 'list']);
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
      h.address,
      'grpc.health.v1.Health/Check',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ status: 'SERVING' });
  });
});
