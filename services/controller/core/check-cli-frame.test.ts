import type { StreamFromCli } from '../../gen/protobuf/currency_nodes';
import { pack } from '../../shared/any';
import { checkCliFrame } from './intake';

const CLI = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const NODE = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';

function frame(overrides: Partial<StreamFromCli> = {}): StreamFromCli {
  return {
    streamId: 's-1',
    cliUuid: CLI,
    nodeUuids: [],
    command: pack('ControllerListNodesV1Req', {}),
    traceContext: {},
    ...overrides,
  };
}

describe('checkCliFrame', () => {
  test('accepts a frame with a stream id, a UUID cli_uuid and no target nodes', () => {
    expect(checkCliFrame(frame())).toBeUndefined();
  });

  test('accepts upper-case UUIDs and a list of target node UUIDs', () => {
    expect(
      checkCliFrame(frame({ cliUuid: CLI.toUpperCase(), nodeUuids: [NODE, NODE.toUpperCase()] })),
    ).toBeUndefined();
  });

  test('accepts a stream id of exactly 128 characters', () => {
    expect(checkCliFrame(frame({ streamId: 'x'.repeat(128) }))).toBeUndefined();
  });

  test('rejects an empty stream id', () => {
    expect(checkCliFrame(frame({ streamId: '' }))).toBe('stream_id must be 1-128 characters');
  });

  test('rejects a stream id longer than 128 characters', () => {
    expect(checkCliFrame(frame({ streamId: 'x'.repeat(129) }))).toBe(
      'stream_id must be 1-128 characters',
    );
  });

  test.each(['', 'not-a-uuid', CLI.slice(0, -1), `${CLI}0`, ` ${CLI}`, CLI.replace(/-/g, '')])(
    'rejects cli_uuid %p and quotes it',
    (cliUuid) => {
      const problem = checkCliFrame(frame({ cliUuid }));
      expect(problem).toBe(`cli_uuid "${cliUuid}" is not a UUID`);
    },
  );

  test('quotes at most 64 characters of a huge bad cli_uuid', () => {
    const problem = checkCliFrame(frame({ cliUuid: 'z'.repeat(10_000) }));
    expect(problem).toBe(`cli_uuid "${'z'.repeat(64)}" is not a UUID`);
  });

  test('rejects the first target node id that is not a UUID and names it', () => {
    const problem = checkCliFrame(frame({ nodeUuids: [NODE, 'node-7', 'also-bad'] }));
    expect(problem).toBe('node_uuids: "node-7" is not a UUID');
  });

  test('reports the stream id before the uuids when several things are wrong', () => {
    expect(checkCliFrame(frame({ streamId: '', cliUuid: 'x', nodeUuids: ['y'] }))).toMatch(
      /^stream_id/,
    );
    expect(checkCliFrame(frame({ cliUuid: 'x', nodeUuids: ['y'] }))).toMatch(/^cli_uuid/);
  });

  test('does not judge the command itself: a missing command passes this check', () => {
    expect(checkCliFrame(frame({ command: undefined }))).toBeUndefined();
  });
});
