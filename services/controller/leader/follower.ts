/**
 * Warm standby: while this controller does not lead, it watches the leader's prices
 * through the leader's own CLI service (`ControllerWatchPricesV2Req` at
 * CONTROLLER_FOLLOW_ADDR: in Kubernetes the controller Service, which routes to the ready
 * controller, the leader) and keeps them in its own price store. So after a takeover the
 * first StreamStart carries the newest price and no pair goes back in time or starts from
 * a seed price. It stops the moment this controller leads, and follows again when it no
 * longer does; a lost watch, or one refused because the controller there does not lead
 * (yet), is re-opened with capped backoff.
 */
import { randomUUID } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { StreamToCli } from '../../gen/protobuf/currency_nodes';
import { pack, unpack } from '../../shared/any';
import type { ClientTokenConfig } from '../../shared/auth';
import { backoffStepMs } from '../../shared/backoff';
import { type Dialled, dialController } from '../../shared/client';
import { cliChannelOptions } from '../../shared/grpc-options';
import type { Logger } from '../../shared/logger';
import type { Scheduler, TimerHandle } from '../../shared/scheduler';
import { msFromTimestamp } from '../../shared/time';
import type { ClientTlsConfig } from '../../shared/tls-client';
import { closeReasonOf } from '../../shared/protocol';
import type { CliClientCall, Frame, createCliClient } from '../../shared/wire';

export interface FollowConfig {
  /** Where the leader answers CLI commands; undefined: no warm standby. */
  address?: string;
  tls?: ClientTlsConfig;
  token?: ClientTokenConfig;
}

export interface FollowedPrice {
  pair: string;
  price: number;
  updatedAtMs: number;
  nodeUuid: string;
}

/**
 * Re-follow quickly: a standby that takes over while its watch is down would lead with
 * stale prices, so the wait stays near the Lease's retry period.
 */
const RETRY = { initialMs: 100, maxMs: 500 };

export class Follower {
  private client?: Dialled<ReturnType<typeof createCliClient>>;
  private call?: CliClientCall;
  private retry?: TimerHandle;
  private failures = 0;
  private active = false;
  /** The open watch has brought a price (logged once per watch: the standby is warm). */
  private warm = false;

  constructor(
    private readonly config: FollowConfig,
    private readonly deps: {
      scheduler: Scheduler;
      logger: Logger;
      /** Each followed price; the store keeps it only if newer than what it holds. */
      onPrice(p: FollowedPrice): void;
      /**
       * The leader ended the watch because it is stopping (close reason `shutdown`): it
       * has already given the Lease back, so this standby may take it now.
       */
      onLeaderStopping?(): void;
    },
  ) {}

  /** Follows while `following` is true (this controller is a standby). */
  set(following: boolean): void {
    if (!this.config.address || following === this.active) return;
    this.active = following;
    if (following) this.open();
    else this.close();
  }

  stop(): void {
    this.active = false;
    this.close();
  }

  /** Another controller now leads: watch it at once (the old watch ended with its leader). */
  leaderChanged(): void {
    if (!this.active) return;
    this.close();
    this.failures = 0;
    this.open();
  }

  private open(): void {
    const address = this.config.address!;
    let client: Dialled<ReturnType<typeof createCliClient>> | undefined;
    let metadata: grpc.Metadata;
    try {
      client = dialController({
        address,
        options: cliChannelOptions(),
        tls: this.config.tls,
        token: this.config.token,
      });
      metadata = client.metadata();
    } catch (err) {
      client?.close();
      this.deps.logger.warn({ err, follow: address }, 'cannot read the follow credentials');
      return this.retryLater();
    }
    this.client = client;
    const call = client.client.cliCommandStream(metadata);
    this.call = call;
    this.warm = false;
    call.on('data', (f: Frame<StreamToCli>) => {
      if (f.ok) this.onFrame(f.value);
    });
    call.on('error', () => {});
    call.on('status', (st: grpc.StatusObject) => {
      if (this.call !== call) return;
      const reason = closeReasonOf(st);
      this.deps.logger.info(
        { follow: address, code: st.code, details: st.details, reason },
        'stopped following the leader; retrying',
      );
      this.close();
      this.retryLater();
      if (reason === 'shutdown') this.deps.onLeaderStopping?.();
    });
    call.write({
      streamId: 'follow',
      cliUuid: randomUUID(),
      nodeUuids: [],
      command: pack('ControllerWatchPricesV2Req', { currencyPairs: [] }),
      traceContext: {},
    });
  }

  private onFrame(f: StreamToCli): void {
    const r = unpack(f.response);
    if (!r.ok) return;
    if (r.value.name === 'CliErrorV1Notify') {
      // Refused: the controller there is a standby too (the leader is changing), or it
      // stopped leading and ended our watch. Follow again, with backoff.
      this.deps.logger.debug(
        { follow: this.config.address, details: r.value.message.message },
        'the followed controller does not lead; retrying',
      );
      this.close();
      this.retryLater();
      return;
    }
    this.failures = 0;
    if (r.value.name === 'ControllerWatchPricesV1Reply')
      // Said once the leader took the watch (not when asked): from here its stop is a cue.
      this.deps.logger.info({ follow: this.config.address }, 'following the leader');
    if (r.value.name !== 'ControllerPriceUpdatesV1Notify') return;
    for (const p of r.value.message.prices) {
      const updatedAtMs = msFromTimestamp(p.priceUpdatedAt);
      if (updatedAtMs === undefined) continue;
      if (!this.warm) {
        // The leader's prices arrive: this standby is warm (a CLI cannot ask a standby).
        this.warm = true;
        this.deps.logger.info(
          {
            follow: this.config.address,
            pair: p.currencyPair,
            price_updated_at: new Date(updatedAtMs).toISOString(),
          },
          "the leader's prices arrive",
        );
      }
      this.deps.onPrice({
        pair: p.currencyPair,
        price: p.price,
        updatedAtMs,
        nodeUuid: p.nodeUuid,
      });
    }
  }

  private retryLater(): void {
    if (!this.active) return;
    const delay = backoffStepMs(this.failures++, RETRY);
    this.retry = this.deps.scheduler.setTimeout(() => {
      this.retry = undefined;
      if (this.active && !this.call) this.open();
    }, delay);
  }

  private close(): void {
    if (this.retry) this.deps.scheduler.clearTimeout(this.retry);
    this.retry = undefined;
    const call = this.call;
    this.call = undefined;
    try {
      call?.cancel();
    } catch {
      // already gone
    }
    this.client?.close();
    this.client = undefined;
  }
}
