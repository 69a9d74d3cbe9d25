/**
 * Router (router.ts): CLI commands in flight to nodes, one request id per target node,
 * so that a reply finds its CLI stream and a node that goes fails its commands at once.
 */
import { INVALID_SPAN_CONTEXT, trace } from '@opentelemetry/api';
import { type RoutedCommand, Router } from './router';

const A = 'node-a';
const B = 'node-b';
const C = 'node-c';

type Cli = { name: string };

function command(cli: Cli, nodes: string[], streamId = 's'): RoutedCommand<Cli> {
  return {
    command: 'NodeStatusV1Req',
    startedAtMs: 0,
    cli,
    streamId,
    span: trace.wrapSpanContext(INVALID_SPAN_CONTEXT),
    outstanding: new Set(nodes),
    answered: 0,
    failed: 0,
  };
}

/** A command from `cli` to `nodes`, routed with request ids `<prefix>-<node>`. */
function route(router: Router<Cli>, cli: Cli, nodes: string[], prefix: string) {
  const routed = command(cli, nodes, prefix);
  for (const n of nodes) router.add(`${prefix}-${n}`, n, routed);
  return routed;
}

describe('a reply finds its command', () => {
  test('a reply from the node a request went to takes it out, and that node is no longer outstanding', () => {
    const router = new Router<Cli>();
    const cli = { name: 'cli' };
    const routed = route(router, cli, [A, B], 'r1');
    expect(router.size()).toBe(2);
    expect(router.oldestFor(A)).toBe('r1-node-a');
    const p = router.take('r1-node-a', A);
    expect(p).toMatchObject({ requestId: 'r1-node-a', nodeUuid: A });
    expect(p !== undefined && p !== 'wrong_node' && p.routed).toBe(routed);
    expect([...routed.outstanding]).toEqual([B]);
    expect(router.oldestFor(A)).toBeUndefined();
    expect(router.size()).toBe(1);
    expect(router.pendingOf(cli)).toBe(1);
  });

  test('a reply naming a request sent to another node is refused as wrong_node, and the request stays', () => {
    const router = new Router<Cli>();
    const routed = route(router, { name: 'cli' }, [A], 'r1');
    expect(router.take('r1-node-a', B)).toBe('wrong_node');
    expect(router.oldestFor(A)).toBe('r1-node-a');
    expect([...routed.outstanding]).toEqual([A]);
    // The right node's reply still finds it.
    expect(router.take('r1-node-a', A)).toMatchObject({ nodeUuid: A });
  });

  test('a second reply to the same request, or a reply to an unknown one, finds nothing', () => {
    const router = new Router<Cli>();
    route(router, { name: 'cli' }, [A], 'r1');
    expect(router.take('r1-node-a', A)).toBeDefined();
    expect(router.take('r1-node-a', A)).toBeUndefined();
    expect(router.take('never-sent', A)).toBeUndefined();
    expect(router.size()).toBe(0);
  });

  test("a node's oldest waiting request is the first sent to it, then the next", () => {
    const router = new Router<Cli>();
    const cli = { name: 'cli' };
    route(router, cli, [A], 'r1');
    route(router, cli, [A, B], 'r2');
    route(router, cli, [A], 'r3');
    expect(router.oldestFor(A)).toBe('r1-node-a');
    expect(router.oldestFor(B)).toBe('r2-node-b');
    router.take('r1-node-a', A);
    expect(router.oldestFor(A)).toBe('r2-node-a');
    router.take('r3-node-a', A);
    expect(router.oldestFor(A)).toBe('r2-node-a');
    router.take('r2-node-a', A);
    expect(router.oldestFor(A)).toBeUndefined();
    expect(router.oldestFor(C)).toBeUndefined();
  });
});

describe('when a node goes', () => {
  test('every command still waiting for it is handed back at once, and only those', () => {
    const router = new Router<Cli>();
    const one = { name: 'one' };
    const two = { name: 'two' };
    const r1 = route(router, one, [A, B], 'r1');
    const r2 = route(router, two, [A], 'r2');
    const r3 = route(router, two, [B], 'r3');
    const gone = router.nodeGone(A);
    expect(gone.map((p) => p.requestId).sort()).toEqual(['r1-node-a', 'r2-node-a']);
    expect(gone.find((p) => p.requestId === 'r1-node-a')!.routed).toBe(r1);
    expect([...r1.outstanding]).toEqual([B]);
    expect([...r2.outstanding]).toEqual([]);
    expect([...r3.outstanding]).toEqual([B]);
    expect(router.size()).toBe(2);
    expect(router.pendingOf(one)).toBe(1);
    expect(router.pendingOf(two)).toBe(1);
    expect(router.oldestFor(A)).toBeUndefined();
  });

  test('a node with nothing pending (or gone twice) hands back nothing', () => {
    const router = new Router<Cli>();
    route(router, { name: 'cli' }, [A], 'r1');
    expect(router.nodeGone(B)).toEqual([]);
    expect(router.nodeGone(A)).toHaveLength(1);
    expect(router.nodeGone(A)).toEqual([]);
  });

  test('a late reply from a node that went finds nothing (its command was already failed)', () => {
    const router = new Router<Cli>();
    route(router, { name: 'cli' }, [A], 'r1');
    router.nodeGone(A);
    expect(router.take('r1-node-a', A)).toBeUndefined();
  });
});

describe('when a CLI stream goes', () => {
  test('its unfinished commands are handed back once each, however many nodes they wait for', () => {
    const router = new Router<Cli>();
    const cli = { name: 'cli' };
    const other = { name: 'other' };
    const r1 = route(router, cli, [A, B, C], 'r1');
    const r2 = route(router, cli, [A], 'r2');
    route(router, other, [A], 'r3');
    router.take('r2-node-a', A); // r2 finished
    const unfinished = router.cliGone(cli);
    expect([...unfinished]).toEqual([r1]);
    expect(unfinished.has(r2)).toBe(false);
    expect(router.pendingOf(cli)).toBe(0);
    expect(router.pendingOf(other)).toBe(1);
    expect(router.size()).toBe(1);
    // Its requests are gone from the nodes' queues too.
    expect(router.oldestFor(A)).toBe('r3-node-a');
    expect(router.oldestFor(B)).toBeUndefined();
    // A reply that arrives after the CLI went finds nothing to deliver to.
    expect(router.take('r1-node-b', B)).toBeUndefined();
  });

  test('a CLI stream with nothing pending hands back an empty set', () => {
    const router = new Router<Cli>();
    expect(router.cliGone({ name: 'cli' }).size).toBe(0);
    expect(router.pendingOf({ name: 'cli' })).toBe(0);
  });
});
