/**
 * A fleet of nodes registered in an in-process controller's core without a gRPC stream
 * each. Why: 20,000 real node streams (an HTTP/2 session, keepalive pings and a client
 * each) take minutes to open and most of the test runner's memory, and what a
 * `controller nodes` listing sends depends only on what the registry and the assignment
 * hold. CLIs still reach the controller over real gRPC.
 *
 * Two ways in. `add`: a stand-in call handed to `core.attachNode`, exactly as the gRPC
 * server hands over a real one, that announces its pairs with NodeKnownCurrenciesV1Notify:
 * everything a registration does happens (registry, assignment, metrics, log lines,
 * desired states). `addDirect`: the node goes straight into the core's registry and
 * assignment, which is all a listing reads; the rest of a registration (the per-pair
 * metrics, the desired states sent to every node whose set changed) is skipped, because
 * at the documented maxima (20,000 nodes x 1,000 pairs) it takes minutes of the suite and
 * is not what the listing test is about. Either kind of node leaves the same way.
 */
import type { StreamFromNode, StreamToNode } from '../../services/gen/protobuf/currency_nodes';
import type { ControllerCore } from '../../services/controller/core/core';
import { ANY_UUID } from '../../services/controller/identity';
import { CLOSE_RULES } from '../../services/controller/core/links/close-reasons';
import { StreamLink } from '../../services/controller/core/links/stream-link';
import type { NodeRegistry, NodeSession } from '../../services/controller/core/node-side/registry';
import { pack, unpack } from '../../services/shared/any';
import { systemScheduler } from '../../services/shared/scheduler';
import { type NodeServerCall, NODE_NAME_METADATA_KEY } from '../../services/shared/wire';
import { FakeCall } from './fake-call';

/** A node's call: what the controller writes is dropped, except that it answers `node status`. */
class FleetCall extends FakeCall<StreamFromNode, StreamToNode> {
  constructor(
    readonly uuid: string,
    readonly name: string,
    peer: string,
  ) {
    super(peer);
    this.metadata.set(NODE_NAME_METADATA_KEY, name);
  }

  override write(msg: StreamToNode): boolean {
    const c = unpack(msg.command);
    if (c.ok && c.value.name === 'NodeStatusV1Req')
      setImmediate(() =>
        this.receive({
          nodeUuid: this.uuid,
          fromUuid: msg.fromUuid,
          traceContext: {},
          response: pack('NodeStatusV1Reply', {
            appVersion: 'fleet',
            connectedControllerServer: 'in-process',
            streamStates: [],
            config: { uuid: this.uuid, name: this.name, verboseLog: false, controllerServers: [] },
          }),
        }),
      );
    return true;
  }
}

export interface FleetNode {
  uuid: string;
  name: string;
  pairs: string[];
}

export class Fleet {
  private readonly calls = new Map<string, FleetCall>();
  constructor(private readonly core: ControllerCore) {}

  /** Attaches and registers one node (synchronously: the core handles the frame at once). */
  add(n: FleetNode): void {
    const call = new FleetCall(n.uuid, n.name, `ipv4:10.${this.calls.size % 256}.0.1:40000`);
    this.calls.set(n.uuid, call);
    this.core.attachNode(call.asCall<NodeServerCall>());
    call.receive({
      nodeUuid: n.uuid,
      traceContext: {},
      response: pack('NodeKnownCurrenciesV1Notify', { knownCurrencyPairs: n.pairs }),
    });
  }

  /** Registers one node in the registry and the assignment only (see above). */
  addDirect(n: FleetNode): void {
    const call = new FleetCall(n.uuid, n.name, `ipv4:10.${this.calls.size % 256}.0.1:40000`);
    this.calls.set(n.uuid, call);
    // The core's registry is private: a test reaches in, as the core itself would register.
    const registry = (this.core as unknown as { registry: NodeRegistry }).registry;
    const { assignment } = this.core;
    const link = new StreamLink<StreamFromNode, StreamToNode, NodeSession>(
      call.asCall<NodeServerCall>(),
      { scheduler: systemScheduler, maxQueuedMessages: 1000 },
      {
        onFrame: () => {},
        // As the core's own node streams: a node the controller ends with every other one
        // (it stops, or stops leading) moves no pair; the core drops them all at once.
        onClosed: (l, reason) => {
          if (registry.remove(l.owner) && !CLOSE_RULES[reason].endsEveryStream)
            assignment.removeNode(n.uuid, 'node_left');
        },
      },
    );
    const session: NodeSession = {
      link,
      peer: link.peer,
      name: n.name,
      connectedAtMs: Date.now(),
      admission: ANY_UUID,
      uuid: n.uuid,
      registered: false,
    };
    link.owner = session;
    link.open();
    registry.add(session);
    registry.register(session);
    assignment.addNode(n.uuid, n.pairs);
  }

  /** The node leaves (its stream drops). */
  remove(uuid: string): void {
    this.calls.get(uuid)?.connectionDrops();
    this.calls.delete(uuid);
  }

  get size(): number {
    return this.calls.size;
  }
}

/** `count` distinct pairs, `C0000_USD`, `C0001_USD`, ... (the names a market would use). */
export function pairPool(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `C${String(i).padStart(4, '0')}_USD`);
}
