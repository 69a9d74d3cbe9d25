/**
 * CommandRouting (command-routing.ts) on a fake NodeDirectory, fake CLI streams and the
 * fake scheduler: a routed command reaches its nodes, each reply finds the CLI that asked,
 * and a node or CLI that goes takes its commands in flight with it.
 */
import * as grpc from '@grpc/grpc-js';
import { INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import type { StreamToCli, StreamToNode } from '../../../gen/protobuf/currency_nodes';
import { type MessageName, pack, typeUrlOf, unpack } from '../../../shared/any';
import { fakeScheduler } from '../../../../tests/support/fake-scheduler';
import { ANY_UUID } from '../../identity';
import { type NodeLink, NodeRegistry } from '../node-side/registry';
import { type CommandToRoute, CommandRouting, type NodeDirectory } from './command-routing';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const GONE = 'a1b2c3d4-0000-4000-8000-000000000000';

function setup(maxPendingPerCli = 10) {
  const scheduler = fakeScheduler();
  const sentTo = new Map<string, StreamToNode[]>([
    [A, []],
    [B, []],
  ]);
  const nodes: NodeDirectory = {
    get: (uuid) => {
      const sent = sentTo.get(uuid);
      return sent && { link: { send: (m: StreamToNode) => void sent.push(m) } };
    },
    registered: () => [...sentTo.keys()].map((uuid) => ({ uuid })),
  };
  const finished: { command: string; outcome: string; seconds: number; error?: string }[] = [];
  const malformed: string[] = [];
  let refused = 0;
  let ids = 0;
  const routing = new CommandRouting({
    scheduler,
    newId: () => `req-${++ids}`,
    maxPendingPerCli,
    nodes,
    observer: {
      commandFinished: (command, outcome, seconds, _span, error) =>
        void finished.push({ command, outcome, seconds, ...(error && { error }) }),
      malformed: (_side, _peer, problem) => void malformed.push(problem),
      pendingRefused: () => void refused++,
    },
  });
  const cli = () => {
    const written: StreamToCli[] = [];
    const target = { link: { send: (m: StreamToCli) => void written.push(m) } };
    const got = () =>
      written.map((w) => {
        const r = unpack(w.response);
        return { streamId: w.streamId, nodeUuid: w.nodeUuid, r: r.ok ? r.value : undefined };
      });
    const command = (nodeUuids: string[], streamId = 's1'): CommandToRoute => ({
      cli: target,
      frame: {
        streamId,
        cliUuid: 'cli',
        nodeUuids,
        command: pack('NodeStatusV1Req', {}),
        traceContext: {},
      },
      name: 'NodeStatusV1Req',
      span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
      startedAtMs: scheduler.now(),
    });
    return { target, written, got, command };
  };
  const node = (uuid: string) => ({ uuid, link: { peer: `peer-${uuid}` } });
  const reply = (fromUuid: string, name: MessageName = 'NodeStatusV1Reply') => ({
    nodeUuid: '',
    fromUuid,
    // An empty payload: every field at its default, which is all routing looks at.
    response: { typeUrl: typeUrlOf(name), value: Buffer.alloc(0) },
    traceContext: {},
  });
  return {
    scheduler,
    routing,
    sentTo,
    finished,
    malformed,
    refused: () => refused,
    cli,
    node,
    reply,
  };
}

describe('CLI side -> nodes', () => {
  test('named targets: the CLI is told who answers, each known node gets the command with its own request id', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A.toUpperCase(), A, GONE]));
    const [count] = c.got();
    expect(count!.r).toEqual({
      name: 'CliResponseCountV1Notify',
      message: { expectedResponses: 1, nodeUuids: [A], unknownNodeUuids: [GONE] },
    });
    expect(t.sentTo.get(A)!.map((m) => m.fromUuid)).toEqual(['req-1']);
    expect(unpack(t.sentTo.get(A)![0]!.command).ok).toBe(true);
    expect(t.sentTo.get(B)).toEqual([]);
    expect(t.routing.pendingCount()).toBe(1);
  });

  test('no target named: every registered node', () => {
    const t = setup();
    t.routing.route(t.cli().command([]));
    expect(t.sentTo.get(A)!.length + t.sentTo.get(B)!.length).toBe(2);
    expect(t.routing.pendingCount()).toBe(2);
  });

  test('only unknown targets: finished at once as an error, nothing in flight', () => {
    const t = setup();
    t.routing.route(t.cli().command([GONE]));
    expect(t.finished).toEqual([{ command: 'NodeStatusV1Req', outcome: 'error', seconds: 0 }]);
    expect(t.routing.pendingCount()).toBe(0);
  });

  test('more in flight than the limit: RESOURCE_EXHAUSTED, counted, no node is sent anything', () => {
    const t = setup(1);
    const c = t.cli();
    t.routing.route(c.command([]));
    expect(c.got()[0]!.r).toEqual({
      name: 'CliErrorV1Notify',
      message: {
        code: grpc.status.RESOURCE_EXHAUSTED,
        message: 'too many commands waiting for replies on this stream (limit 1)',
      },
    });
    expect(t.refused()).toBe(1);
    expect(t.sentTo.get(A)).toEqual([]);
    expect(t.finished[0]!.outcome).toBe('error');
  });
});

describe('node side -> the CLI that asked', () => {
  test('a reply echoing from_uuid goes to the CLI, named by its node, and finishes the command', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A], 'st'));
    t.scheduler.advance(250);
    expect(t.routing.takeReply(t.node(A), t.reply('req-1'), 'reply')).toBe(true);
    expect(c.got()[1]).toMatchObject({
      streamId: 'st',
      nodeUuid: A,
      r: { name: 'NodeStatusV1Reply' },
    });
    expect(t.finished).toEqual([{ command: 'NodeStatusV1Req', outcome: 'ok', seconds: 0.25 }]);
    expect(t.routing.pendingCount()).toBe(0);
  });

  test('any reply type is forwarded by from_uuid (a node that did not understand says so)', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A]));
    expect(
      t.routing.takeReply(t.node(A), t.reply('req-1', 'UnknownCommandV1Notify'), 'other'),
    ).toBe(true);
    expect(c.got()[1]!.r!.name).toBe('UnknownCommandV1Notify');
  });

  test('a node that does not echo from_uuid answers its oldest command; other types are not replies', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A], 'first'));
    t.routing.route(c.command([A], 'second'));
    expect(
      t.routing.takeReply(t.node(A), t.reply('', 'NodeKnownCurrenciesV1Notify'), 'other'),
    ).toBe(false);
    expect(t.routing.takeReply(t.node(A), t.reply(''), 'reply')).toBe(true);
    expect(c.got().filter((g) => g.r?.name === 'NodeStatusV1Reply')).toEqual([
      expect.objectContaining({ streamId: 'first', nodeUuid: A }),
    ]);
  });

  test('a request id not in flight is not a reply (the node side takes it)', () => {
    const t = setup();
    expect(t.routing.takeReply(t.node(A), t.reply('req-9'), 'reply')).toBe(false);
    expect(t.routing.takeReply(t.node(A), t.reply(''), 'reply')).toBe(false);
  });

  test('a reply from another node than the one asked is dropped as malformed', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A]));
    expect(t.routing.takeReply(t.node(B), t.reply('req-1'), 'reply')).toBe(true);
    expect(t.malformed).toEqual([`node ${B} answered a command sent to another node`]);
    expect(c.written).toHaveLength(1);
    expect(t.routing.pendingCount()).toBe(1);
  });
});

describe('a stream that goes', () => {
  test('a node that goes: its commands are answered UNAVAILABLE at once, naming it', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A, B]));
    t.routing.takeReply(t.node(B), t.reply('req-2'), 'reply');
    t.routing.nodeGone(A, 'edge-1', 'lost');
    const last = c.got().at(-1)!;
    expect(last.nodeUuid).toBe(A);
    expect(last.r).toMatchObject({
      name: 'CliErrorV1Notify',
      message: { code: grpc.status.UNAVAILABLE },
    });
    expect((last.r!.message as { message: string }).message).toMatch(
      new RegExp(`^node ${A} \\(edge-1\\) disconnected before answering`),
    );
    expect(t.finished).toEqual([
      { command: 'NodeStatusV1Req', outcome: 'partial', seconds: 0, error: `node ${A} went away` },
    ]);
  });

  test('a CLI that goes: its unfinished commands end as timeouts, and late replies are not forwarded', () => {
    const t = setup();
    const c = t.cli();
    t.routing.route(c.command([A]));
    t.routing.cliGone(c.target);
    expect(t.finished).toEqual([
      { command: 'NodeStatusV1Req', outcome: 'timeout', seconds: 0, error: `no reply from ${A}` },
    ]);
    expect(t.routing.takeReply(t.node(A), t.reply('req-1'), 'reply')).toBe(false);
  });
});

test('the NodeRegistry is a NodeDirectory: registered nodes only', () => {
  const registry = new NodeRegistry(4);
  const directory: NodeDirectory = registry;
  const session = {
    link: {} as NodeLink,
    peer: 'p',
    name: '',
    connectedAtMs: 0,
    admission: ANY_UUID,
    uuid: A,
    registered: false,
  };
  registry.add(session);
  expect(directory.get(A)).toBeUndefined();
  registry.register(session);
  expect(directory.get(A)).toBe(session);
  expect(directory.registered().map((s) => s.uuid)).toEqual([A]);
});
