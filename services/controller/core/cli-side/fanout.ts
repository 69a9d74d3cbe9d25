/**
 * `watch`: every accepted price goes to the CLI streams watching its pair. V1 watches get
 * one frame per update; V2 (batched) watches get the updates of one event-loop turn in one
 * frame at its end. A watcher that does not keep up loses updates rather than growing our
 * memory; one that takes nothing for CONTROLLER_SLOW_WATCHER_MS is disconnected.
 */
import type { MessageOf } from '../../../shared/any';
import { pack } from '../../../shared/any';
import type { Scheduler, TimerHandle } from '../../../shared/scheduler';
import { timestampFromMs } from '../../../shared/time';
import type { StreamFromCli, StreamToCli } from '../../../gen/protobuf/currency_nodes';
import type { StreamLink } from '../links/stream-link';

export type PairPrice = MessageOf<'ControllerPriceUpdatesV1Notify'>['prices'][number];

export interface Watch {
  /** Pairs watched (null: all pairs). */
  readonly pairs: Set<string> | null;
  /** V2: updates go out as ControllerPriceUpdatesV1Notify, one frame per event-loop turn. */
  readonly batched: boolean;
}

/**
 * A CLI stream as the fan-out sees it (a CliSession is one): the fan-out keeps only the
 * set of watchers; each one's watches and waiting batches are its own state.
 */
export interface Watcher {
  readonly link: Pick<StreamLink<StreamFromCli, StreamToCli>, 'queued' | 'send' | 'close'>;
  /** stream_id -> the watch on it. */
  readonly watches: Map<string, Watch>;
  /** stream_id -> updates of batched watches waiting for the end of this event-loop turn. */
  readonly batches: Map<string, PairPrice[]>;
  /** When a watch update was last written (or the stream opened), for the slow-watcher rule. */
  lastWatchWriteMs: number;
}

/** Most updates in one ControllerPriceUpdatesV1Notify (about 80 bytes each). */
const MAX_WATCH_BATCH = 1000;
/** Batches a watch stream may have queued before its watches lose updates. */
const WATCH_BATCH_QUEUE_LIMIT = 16;

export interface FanoutOptions {
  scheduler: Scheduler;
  maxQueuedMessages: number;
  slowWatcherMs: number;
  onDropped(): void;
}

export class WatchFanout {
  private readonly watchers = new Set<Watcher>();
  private readonly due = new Set<Watcher>();
  private flushHandle?: TimerHandle;
  /** Half the disconnect limit, so a burst is queued rather than dropped and a watch stream is never disconnected by its own updates. */
  private readonly queueLimit: number;

  constructor(private readonly opts: FanoutOptions) {
    this.queueLimit = Math.max(16, Math.floor(opts.maxQueuedMessages / 2));
  }

  watch(cli: Watcher, streamId: string, pairs: Set<string> | null, batched: boolean): void {
    cli.watches.set(streamId, { pairs, batched });
    this.watchers.add(cli);
  }

  /** A CLI stream closed: its watches and queued batches go with it. */
  forget(cli: Watcher): void {
    this.watchers.delete(cli);
    this.due.delete(cli);
    cli.watches.clear();
    cli.batches.clear();
  }

  deliver(nodeUuid: string, pair: string, price: number, updatedAtMs: number): void {
    if (this.watchers.size === 0) return;
    const now = this.opts.scheduler.now();
    let entry: PairPrice | undefined;
    let single: ReturnType<typeof pack> | undefined;
    for (const cli of this.watchers) {
      for (const [streamId, watch] of cli.watches) {
        if (watch.pairs && !watch.pairs.has(pair)) continue;
        const queued = cli.link.queued();
        if (queued >= (watch.batched ? WATCH_BATCH_QUEUE_LIMIT : this.queueLimit)) {
          this.opts.onDropped();
          if (now - cli.lastWatchWriteMs > this.opts.slowWatcherMs)
            cli.link.close('slow_consumer', 'not reading its watch');
          continue;
        }
        cli.lastWatchWriteMs = now;
        entry ??= {
          currencyPair: pair,
          price,
          priceUpdatedAt: timestampFromMs(updatedAtMs),
          nodeUuid,
        };
        if (watch.batched) {
          this.queueBatch(cli, streamId, entry);
          continue;
        }
        single ??= pack('NodePriceUpdateV1Notify', {
          currencyPair: pair,
          price,
          priceUpdatedAt: entry.priceUpdatedAt,
        });
        cli.link.send({ streamId, nodeUuid, response: single, traceContext: {} });
      }
    }
  }

  /** Sends every queued batch now (a shutdown, or the end of the event-loop turn). */
  flush(): void {
    if (this.flushHandle) this.opts.scheduler.clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    for (const cli of this.due) {
      for (const [streamId, batch] of cli.batches) this.sendBatch(cli, streamId, batch);
      cli.batches.clear();
    }
    this.due.clear();
  }

  private queueBatch(cli: Watcher, streamId: string, entry: PairPrice): void {
    let batch = cli.batches.get(streamId);
    if (!batch) cli.batches.set(streamId, (batch = []));
    batch.push(entry);
    if (batch.length >= MAX_WATCH_BATCH) {
      cli.batches.delete(streamId);
      this.sendBatch(cli, streamId, batch);
      return;
    }
    this.due.add(cli);
    this.flushHandle ??= this.opts.scheduler.setImmediate(() => this.flush());
  }

  private sendBatch(cli: Watcher, streamId: string, prices: PairPrice[]): void {
    cli.link.send({
      streamId,
      response: pack('ControllerPriceUpdatesV1Notify', { prices }),
      traceContext: {},
    });
  }
}
