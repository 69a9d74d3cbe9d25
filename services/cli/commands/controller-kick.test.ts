/**
 * `controller kick UUID...` (controller-kick.ts): the nodes the controller disconnected,
 * and exit 1 naming any UUID that was not connected. The session is a fake.
 */
import type { MessageOf } from '../../shared/any';
import { EXIT } from '../../shared/program';
import type { ControllerResult } from '../session';
import { controllerKick } from './controller-kick';
import { fakeCliSession } from '../../../tests/support/fake-cli-session';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const GONE = 'a1b2c3d4-0000-4000-8000-000000000000';

async function run(result: ControllerResult<'ControllerKickNodesV1Reply'>, json = false) {
  const asked: { name: string; message: MessageOf<'ControllerKickNodesV1Req'> }[] = [];
  const t = fakeCliSession(
    {
      controllerCommand: (name: string, message: MessageOf<'ControllerKickNodesV1Req'>) => {
        asked.push({ name, message });
        return Promise.resolve(result);
      },
    },
    { opts: { json } },
  );
  const code = await controllerKick(t.env, { nodeUuids: [A, GONE] });
  return { code, out: t.out(), err: t.err(), asked };
}

describe('controller kick', () => {
  test('asks the controller to kick exactly the UUIDs given, and lists those kicked', async () => {
    const r = await run({ ok: true, reply: { kickedNodeUuids: [A], unknownNodeUuids: [] } });
    expect(r.asked).toEqual([
      { name: 'ControllerKickNodesV1Req', message: { nodeUuids: [A, GONE] } },
    ]);
    expect(r.out).toBe(`kicked ${A}\n`);
    expect(r.code).toBe(EXIT.OK);
  });

  test('a UUID that was not connected fails the command (exit 1), named on stderr', async () => {
    const r = await run({ ok: true, reply: { kickedNodeUuids: [A], unknownNodeUuids: [GONE] } });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.out).toBe(`kicked ${A}\n`);
    expect(r.err).toBe(`unknown node ${GONE}: not connected\n`);
  });

  test('--json: both lists in one document; unknown nodes still named on stderr', async () => {
    const r = await run(
      { ok: true, reply: { kickedNodeUuids: [], unknownNodeUuids: [GONE] } },
      true,
    );
    expect(JSON.parse(r.out)).toEqual({ kickedNodeUuids: [], unknownNodeUuids: [GONE] });
    expect(r.err).toBe(`unknown node ${GONE}: not connected\n`);
    expect(r.code).toBe(EXIT.FAILED);
  });

  test('a UUID from the wire with control characters is shown escaped', async () => {
    const r = await run({
      ok: true,
      reply: { kickedNodeUuids: ['x\x1b[2Jy'], unknownNodeUuids: [] },
    });
    expect(r.out).toBe('kicked x\\x1b[2Jy\n');
  });

  test('a failed request is exit 1 with the problem', async () => {
    const r = await run({ ok: false, problem: 'the controller rejected the command: nope' });
    expect(r.code).toBe(EXIT.FAILED);
    expect(r.err).toBe('controller kick: the controller rejected the command: nope\n');
  });
});
