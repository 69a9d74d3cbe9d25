/**
 * NodeRegistry (registry.ts): every open node stream counted against the limit, which
 * stream holds each node UUID, and the cached `controller nodes` reply.
 */
import { ControllerListNodesV1Reply } from '../../../gen/protobuf/currency_nodes';
import { typeUrlOf } from '../../../shared/any';
import { ANY_UUID } from '../../identity';
import type { NodeView } from './node-list';
import { type NodeLink, NodeRegistry, type NodeSession } from './registry';

const A = '3f2b8c1e-8d3a-4b7e-9c2f-1a2b3c4d5e6f';
const B = '0b7e1f52-4c1d-4a8e-8f0e-2d9c6a5b4e31';
const C = 'a1b2c3d4-0000-4000-8000-000000000000';

function session(uuid: string | undefined, name = ''): NodeSession {
  return {
    link: {} as NodeLink,
    peer: 'ipv4:127.0.0.1:40000',
    name,
    connectedAtMs: 0,
    admission: ANY_UUID,
    uuid,
    registered: false,
  };
}

const view = (s: NodeSession): NodeView => ({
  uuid: s.uuid!,
  name: s.name,
  peer: s.peer,
  connectedAtMs: s.connectedAtMs,
  knownPairs: [],
  streamingPairs: [],
});

function decode(reg: NodeRegistry, viewOf = view) {
  const any = reg.listNodesAny(viewOf);
  expect(any.typeUrl).toBe(typeUrlOf('ControllerListNodesV1Reply'));
  return ControllerListNodesV1Reply.decode(any.value);
}

describe('room for node streams', () => {
  test('unregistered streams count against the limit too', () => {
    const reg = new NodeRegistry(2);
    expect(reg.hasRoom()).toBe(true);
    reg.add(session(undefined));
    reg.add(session(undefined));
    expect(reg.hasRoom()).toBe(false);
    expect(reg.openCount()).toBe(2);
    expect(reg.registeredCount()).toBe(0);
  });

  test('a stream that closes frees its room, registered or not', () => {
    const reg = new NodeRegistry(1);
    const s = session(A);
    reg.add(s);
    reg.register(s);
    expect(reg.hasRoom()).toBe(false);
    reg.remove(s);
    expect(reg.hasRoom()).toBe(true);
    expect(reg.all()).toEqual([]);
  });
});

describe('who holds a node UUID', () => {
  test('registering makes a stream the holder, marks it registered and cancels its register timeout', () => {
    const reg = new NodeRegistry(10);
    const s = session(A);
    let cancelled = 0;
    s.cancelRegisterTimeout = () => cancelled++;
    reg.add(s);
    expect(reg.isHolder(s)).toBe(false);
    expect(reg.register(s)).toBeUndefined();
    expect(reg.isHolder(s)).toBe(true);
    expect(s.registered).toBe(true);
    expect(cancelled).toBe(1);
    expect(s.cancelRegisterTimeout).toBeUndefined();
    expect(reg.get(A)).toBe(s);
  });

  test('a newer stream of the same node takes the UUID and hands back the one it displaced', () => {
    const reg = new NodeRegistry(10);
    const old = session(A);
    const newer = session(A);
    reg.add(old);
    reg.register(old);
    reg.add(newer);
    expect(reg.register(newer)).toBe(old);
    expect(reg.isHolder(old)).toBe(false);
    expect(reg.isHolder(newer)).toBe(true);
    expect(reg.registeredCount()).toBe(1);
    expect(reg.openCount()).toBe(2);
  });

  test('registering the holder again displaces nobody', () => {
    const reg = new NodeRegistry(10);
    const s = session(A);
    reg.add(s);
    reg.register(s);
    expect(reg.register(s)).toBeUndefined();
  });

  test('the displaced stream closing later does not take the node away from its replacement', () => {
    const reg = new NodeRegistry(10);
    const old = session(A);
    const newer = session(A);
    reg.add(old);
    reg.register(old);
    reg.add(newer);
    reg.register(newer);
    expect(reg.remove(old)).toBe(false);
    expect(reg.get(A)).toBe(newer);
    expect(reg.registered()).toEqual([newer]);
    expect(reg.remove(newer)).toBe(true);
    expect(reg.get(A)).toBeUndefined();
  });

  test('a stream that never registered is no holder, and its closing is no node leaving', () => {
    const reg = new NodeRegistry(10);
    const s = session(undefined);
    reg.add(s);
    expect(reg.isHolder(s)).toBe(false);
    expect(reg.remove(s)).toBe(false);
    expect(reg.openCount()).toBe(0);
  });
});

describe('the `controller nodes` list', () => {
  test('registered nodes are listed by name, then UUID', () => {
    const reg = new NodeRegistry(10);
    for (const s of [
      session(C, 'b'),
      session(B, 'a'),
      session(A, 'b'),
      session(C.replace('a1', 'ff'), ''),
    ]) {
      reg.add(s);
      reg.register(s);
    }
    reg.add(session(undefined, 'unregistered'));
    expect(reg.registered().map((s) => [s.name, s.uuid])).toEqual([
      ['', C.replace('a1', 'ff')],
      ['a', B],
      ['b', A],
      ['b', C],
    ]);
    expect(decode(reg).nodeUuids).toEqual([C.replace('a1', 'ff'), B, A, C]);
  });

  test('the reply is kept until a node joins, leaves or changes pairs', () => {
    const reg = new NodeRegistry(10);
    const a = session(A, 'a');
    reg.add(a);
    reg.register(a);
    const first = reg.listNodesAny(view);
    expect(reg.listNodesAny(view)).toBe(first);
    const b = session(B, 'b');
    reg.add(b);
    reg.register(b);
    const afterJoin = reg.listNodesAny(view);
    expect(afterJoin).not.toBe(first);
    expect(reg.listNodesAny(view)).toBe(afterJoin);
    reg.entryChanged(A);
    const afterChange = reg.listNodesAny(view);
    expect(afterChange).not.toBe(afterJoin);
    reg.remove(b);
    expect(decode(reg).nodeUuids).toEqual([A]);
  });

  test("each node's entry is built once, and again only when that node's pairs change", () => {
    const reg = new NodeRegistry(10);
    const a = session(A, 'a');
    const b = session(B, 'b');
    for (const s of [a, b]) {
      reg.add(s);
      reg.register(s);
    }
    const built: string[] = [];
    let pairs = ['BTC_USD'];
    const viewOf = (s: NodeSession) => {
      built.push(s.uuid!);
      return { ...view(s), knownPairs: s === a ? pairs : [] };
    };
    reg.listNodesAny(viewOf);
    expect(built.sort()).toEqual([A, B].sort());
    built.length = 0;
    // A third node joins: only its entry is new.
    const c = session(C, 'c');
    reg.add(c);
    reg.register(c);
    reg.listNodesAny(viewOf);
    expect(built).toEqual([C]);
    built.length = 0;
    pairs = ['BTC_USD', 'EUR_USD'];
    reg.entryChanged(A);
    const reply = decode(reg, viewOf);
    expect(built).toEqual([A]);
    expect(reply.nodes.find((n) => n.nodeUuid === A)?.knownCurrencyPairs).toEqual([
      'BTC_USD',
      'EUR_USD',
    ]);
  });

  test('a change for a node that is not registered only drops the cached reply', () => {
    const reg = new NodeRegistry(10);
    const a = session(A, 'a');
    reg.add(a);
    reg.register(a);
    const first = reg.listNodesAny(view);
    reg.entryChanged(B);
    expect(reg.listNodesAny(view)).not.toBe(first);
    expect(decode(reg).nodeUuids).toEqual([A]);
  });
});
