/**
 * What the CLI side may ask of the core, and nothing more. ControllerCore implements it
 * and hands itself to CliService: the CLI side reads the node side only through this, and
 * reaches nodes only through the routing (routing/command-routing.ts).
 */
import type { NodeView } from './node-side/node-list';
import type { NodeSession } from './node-side/registry';

export interface CoreView {
  /** Undefined while this controller leads; else why it cannot serve (it is a standby). */
  standbyReason(): string | undefined;
  /** Disconnects the node holding `uuid` (`controller kick`); false if no node does. */
  kick(uuid: string): boolean;
  /**
   * A registered node as `controller nodes` shows it; `withPairs: false`: with no pairs (a
   * listing asked with without_pairs), which skips looking them up.
   */
  viewOf(s: NodeSession, opts?: { withPairs?: boolean }): NodeView;
  /** The number of open CLI streams changed: the connections gauge is set again. */
  clisChanged(): void;
}
