/** Messages between the bench runner and a load-generator process (Node IPC). */
export interface SimNodeSpec {
  uuid: string;
  name: string;
  pairs: string[];
  /** Report every pair this node is told to start (an IPC message per start). */
  report?: boolean;
}

export type PriceMode = 'off' | 'max' | 'paced';

export type ToSim =
  | { type: 'add'; id: number; nodes: SimNodeSpec[]; perSec?: number }
  | { type: 'remove'; id: number; uuids: string[] }
  | {
      type: 'prices';
      id: number;
      mode: PriceMode;
      perSec?: number;
      /**
       * Each write is one NodePriceUpdatesV1Notify with an update for every pair the node
       * streams (when the controller takes it; singles otherwise), as a node sends the
       * updates that fall due together.
       */
      batch?: boolean;
    }
  | { type: 'status'; id: number }
  | { type: 'exit' };

export interface SimStatus {
  nodes: number;
  registered: number;
  streamingPairs: number;
  /** Price updates written since the process started. */
  sent: number;
  /** Frames those updates went in (fewer than `sent` when batched). */
  frames: number;
  /** Updates skipped because the stream was not draining. */
  skipped: number;
  /** NodeStreamModifyStateV1Req received since the process started. */
  modifyStates: number;
  reconnects: number;
  rssBytes: number;
}

export type FromSim =
  | { type: 'reply'; id: number; status?: SimStatus }
  | { type: 'started'; uuid: string; pair: string; atMs: number }
  | { type: 'fatal'; error: string };
