/**
 * End to end with the real controller: a node that leaves before answering a node command
 * fails that command at once (the controller says so on the command's stream), and the
 * CLI names it and exits 1 well before its timeout.
 */
import { randomUUID } from 'node:crypto';
import { runInProcess } from '../support/cli-runner';
import { startTestController } from '../support/in-process';
import { RawNode, as } from '../support/raw-peers';
import { waitFor } from '../support/wait';

jest.setTimeout(30_000);

let ctl: Awaited<ReturnType<typeof startTestController>>;
const peers: RawNode[] = [];

beforeAll(async () => {
  ctl = await startTestController();
});
afterAll(async () => {
  for (const p of peers) p.close();
  await ctl.controller.stop();
});

test('node status to a node that goes before answering: named, exit 1, no waiting', async () => {
  const leaver = new RawNode(ctl.address, randomUUID());
  peers.push(leaver);
  leaver.announce(['USD_HKD']);
  await waitFor(
    'the node registered',
    async () => (await ctl.metric('currency_controller_connected_nodes')) === 1,
  );
  // It goes the moment it is asked, without a reply.
  leaver.call.on('data', () => {
    if (leaver.received.some((f) => as('NodeStatusV1Req', f.command))) leaver.close();
  });
  const started = Date.now();
  const { code, out, err } = await runInProcess([
    '--controller',
    ctl.address,
    '--timeout',
    '20',
    '--json',
    'node',
    'status',
    '--all',
  ]);
  expect(code).toBe(1);
  expect(Date.now() - started).toBeLessThan(10_000); // the timeout is 20 s
  const doc = JSON.parse(out) as {
    failedNodes: { nodeUuid: string; message: string }[];
    missingNodeUuids: string[];
  };
  expect(doc.failedNodes).toHaveLength(1);
  expect(doc.failedNodes[0]!.nodeUuid).toBe(leaver.uuid);
  expect(doc.failedNodes[0]!.message).toContain('disconnected before answering');
  expect(doc.missingNodeUuids).toEqual([]);
  expect(err).toContain(`node ${leaver.uuid} failed: node ${leaver.uuid}`);
});
