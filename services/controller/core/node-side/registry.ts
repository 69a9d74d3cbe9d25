/**
 * The node streams the controller holds: every open one (registered or not, all counted
 * against CONTROLLER_MAX_NODES), which one holds each node UUID, and the cached
 * `controller nodes` reply. No I/O and no rules about pairs: the core decides, this keeps.
 */
import type { Any } from '../../../gen/google/protobuf/any';
import type { StreamFromNode, StreamToNode } from '../../../gen/protobuf/currency_nodes';
import { typeUrlOf } from '../../../shared/any';
import { bufferOf } from '../../../shared/wire';
import type { NodeAdmission } from '../../identity';
import type { StreamLink } from '../links/stream-link';
import {
  type NodeView,
  compareNodes,
  encodeListNodesReply,
  encodeNodeInfo,
  listNodesReplyBytes,
} from './node-list';

export type NodeLink = StreamLink<StreamFromNode, StreamToNode, NodeSession>;

export interface NodeSession {
  readonly link: NodeLink;
  readonly peer: string;
  /** From the x-currency-node-name header; a node may send none. */
  readonly name: string;
  readonly connectedAtMs: number;
  readonly admission: NodeAdmission;
  /** Claimed by the first frame; the same on every later frame. */
  uuid?: string;
  registered: boolean;
  /** Cancels the register timeout (CONTROLLER_REGISTER_TIMEOUT_MS) once the node registers. */
  cancelRegisterTimeout?: () => void;
  /** This node's encoded `controller nodes` entry; dropped whenever its pairs change. */
  listEntry?: Uint8Array;
}

export class NodeRegistry {
  private readonly open = new Set<NodeSession>();
  private readonly byUuid = new Map<string, NodeSession>();
  /** Registered nodes in `controller nodes` order; rebuilt after a join or a leave. */
  private sorted?: NodeSession[];
  private listReply?: Any;
  private listReplyBytes?: number;

  constructor(private readonly maxNodes: number) {}

  /** Whether one more stream may open (unregistered streams count too). */
  hasRoom(): boolean {
    return this.open.size < this.maxNodes;
  }

  add(s: NodeSession): void {
    this.open.add(s);
  }

  openCount(): number {
    return this.open.size;
  }

  registeredCount(): number {
    return this.byUuid.size;
  }

  get(uuid: string): NodeSession | undefined {
    return this.byUuid.get(uuid);
  }

  isHolder(s: NodeSession): boolean {
    return s.uuid !== undefined && this.byUuid.get(s.uuid) === s;
  }

  /** `s` now holds its UUID; returns the stream it displaced, if another held it. */
  register(s: NodeSession): NodeSession | undefined {
    const previous = this.byUuid.get(s.uuid!);
    this.byUuid.set(s.uuid!, s);
    s.registered = true;
    s.cancelRegisterTimeout?.();
    s.cancelRegisterTimeout = undefined;
    this.changed();
    return previous !== s ? previous : undefined;
  }

  /** Forgets a closed stream; true when it held its UUID (its node has left). */
  remove(s: NodeSession): boolean {
    this.open.delete(s);
    if (!this.isHolder(s)) return false;
    this.byUuid.delete(s.uuid!);
    this.changed();
    return true;
  }

  /** Every open stream, registered or not (for a shutdown). */
  all(): NodeSession[] {
    return [...this.open];
  }

  /**
   * Registered nodes, by name then UUID. A join or a leave makes a new array and leaves
   * this one as it is, so a caller may keep it as a snapshot (a paged listing does).
   */
  registered(): NodeSession[] {
    this.sorted ??= [...this.byUuid.values()].sort((a, b) =>
      compareNodes({ name: a.name, uuid: a.uuid! }, { name: b.name, uuid: b.uuid! }),
    );
    return this.sorted;
  }

  /** A node's pairs changed: its entry and the reply are rebuilt on demand. */
  entryChanged(uuid: string): void {
    const s = this.byUuid.get(uuid);
    if (s) s.listEntry = undefined;
    this.listReply = undefined;
    this.listReplyBytes = undefined;
  }

  /** A node's encoded `controller nodes` entry, built once until its pairs change. */
  entryOf(s: NodeSession, viewOf: (s: NodeSession) => NodeView): Uint8Array {
    return (s.listEntry ??= encodeNodeInfo(viewOf(s)));
  }

  /** The size of the ControllerListNodesV1Reply `listNodesAny` gives, without building it. */
  listNodesBytes(viewOf: (s: NodeSession) => NodeView): number {
    this.listReplyBytes ??= listNodesReplyBytes(
      this.registered().map((s) => ({ uuid: s.uuid!, info: this.entryOf(s, viewOf) })),
    );
    return this.listReplyBytes;
  }

  /**
   * The packed ControllerListNodesV1Reply, kept until a node joins, leaves or changes
   * pairs, and rebuilt from per-node entries that are kept too, so that listing 10,000
   * nodes costs little on a controller that is busy with them.
   */
  listNodesAny(viewOf: (s: NodeSession) => NodeView): Any {
    this.listReply ??= {
      typeUrl: typeUrlOf('ControllerListNodesV1Reply'),
      value: bufferOf(
        encodeListNodesReply(
          this.registered().map((s) => ({ uuid: s.uuid!, info: this.entryOf(s, viewOf) })),
        ),
      ),
    };
    return this.listReply;
  }

  private changed(): void {
    this.sorted = undefined;
    this.listReply = undefined;
    this.listReplyBytes = undefined;
  }
}
