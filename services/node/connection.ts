/**
 * The node's connection loop as explicit states, each with its enter and exit actions
 * (model: connect-es's http2-session-manager):
 *
 *   connecting  -> a stream is open; it registers (announces the pairs) once the response
 *                  headers said which keepalive to use, or after a short wait for them;
 *                  given up if its channel has no connection after connectTimeoutMs
 *   registered  -> the controller answered; frames flow
 *   backing_off -> waiting to dial again (capped exponential backoff; 30 s+ when displaced)
 *   stopped     -> final
 *
 * A stream that learns, before registering, that its controller permits fast keepalive
 * pings is closed and dialled again at once with them: nothing registered, so nothing
 * flaps, and it is not counted as a reconnect.
 */
import * as grpc from '@grpc/grpc-js';
import type { StreamFromNode, StreamToNode } from '../gen/protobuf/currency_nodes';
import { isAuthStatus } from '../shared/auth';
import type { Logger } from '../shared/logger';
import type { Random, Scheduler, TimerHandle } from '../shared/scheduler';
import { closeReasonOf } from '../shared/protocol';
import { CONTROLLER_ACCEPTS_METADATA_KEY, type Frame, PRICE_BATCH_MESSAGE } from '../shared/wire';
import { type BackoffPolicy, backoffDelayMs } from '../shared/backoff';
import { ConnectFailureLog, connectFailureCause } from './connect-failures';
import { ControllerChoice } from './controller-choice';
import { KeepalivePermits, isKeepaliveTimeout, isTooManyPings } from './keepalive';
import {
  type Dialer,
  type Link,
  LiveLink,
  type StatusLike,
  isDisplaced,
  isStandbyRefusal,
} from './link';
import type { NodeMetrics } from './metrics';

export type { Dialer, Link, NodeStream } from './link';

export interface ConnectionOptions {
  /** This node's UUID, named in the duplicate-identity error. */
  uuid: string;
  addresses: string[];
  backoff: BackoffPolicy;
  /** After being displaced by a newer stream with our UUID: wait this plus up to `displacedJitterMs`. */
  displacedWaitMs: number;
  displacedJitterMs: number;
  /** How long a stream waits for response headers before registering without them. */
  headerWaitMs: number;
  /** A dial whose channel has no connection after this long is given up (NODE_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs: number;
  /** How long stop() waits for the controller to see the clean end. */
  stopGraceMs: number;
  /** The registration frame (NodeKnownCurrenciesV1Notify). */
  announce: () => StreamFromNode;
  dial: Dialer;
  scheduler: Scheduler;
  random: Random;
  log: Logger;
  metrics: NodeMetrics;
  onRegistered: (link: Link) => void;
  onFrame: (frame: Frame<StreamToNode>) => void;
  /** The registered stream is gone (or never registered); stop streaming. */
  onLost: () => void;
}

export type ConnectionState =
  | { kind: 'connecting'; link: LiveLink }
  | { kind: 'registered'; link: LiveLink }
  | { kind: 'backing_off'; timer: TimerHandle }
  | { kind: 'stopped' };

export class ControllerConnection {
  private state: ConnectionState = { kind: 'stopped' };
  private attempt = 0;
  private everRegistered = false;
  private readonly permits = new KeepalivePermits();
  private readonly failures: ConnectFailureLog;
  /** Which controller next, and how soon (several controllers: controller-choice.ts). */
  private readonly choice: ControllerChoice;

  constructor(private readonly o: ConnectionOptions) {
    this.failures = new ConnectFailureLog(o.log, () => o.scheduler.now());
    this.choice = new ControllerChoice(o.addresses, o.random);
  }

  kind(): ConnectionState['kind'] {
    return this.state.kind;
  }

  /** The registered stream, if any. */
  link(): Link | undefined {
    return this.state.kind === 'registered' ? this.state.link : undefined;
  }

  start(): void {
    this.transition(this.connecting());
  }

  /** Graceful: half-close the stream and stop reconnecting. */
  async stop(): Promise<void> {
    const s = this.state;
    if (s.kind === 'stopped') return;
    const link = s.kind === 'connecting' || s.kind === 'registered' ? s.link : undefined;
    if (link) link.closed = true; // its end is ours, not a loss
    this.transition({ kind: 'stopped' }, { keepLinkOpen: true });
    await link?.closeGracefully(this.o.scheduler, this.o.stopGraceMs);
  }

  // ------------------------------------------------------------ transitions

  private transition(next: ConnectionState, opts: { keepLinkOpen?: boolean } = {}): void {
    const prev = this.state;
    this.state = next;
    // exit actions
    if (prev.kind === 'backing_off') this.o.scheduler.clearTimeout(prev.timer);
    if (prev.kind === 'connecting') {
      for (const timer of [prev.link.headerTimer, prev.link.connectTimer]) {
        if (timer) this.o.scheduler.clearTimeout(timer);
      }
      prev.link.headerTimer = undefined;
      prev.link.connectTimer = undefined;
    }
    const leavesLink =
      (prev.kind === 'connecting' || prev.kind === 'registered') &&
      !(next.kind === 'registered' && next.link === prev.link);
    if (leavesLink) {
      if (!opts.keepLinkOpen) prev.link.close();
      this.o.onLost();
    }
    // enter actions
    if (next.kind === 'connecting') this.enterConnecting(next.link);
    if (next.kind === 'registered') this.enterRegistered(next.link);
  }

  /** The next `connecting` state: dials and wires a stream (or backs off if it cannot). */
  private connecting(): ConnectionState {
    const o = this.o;
    const address = this.choice.next(o.scheduler.now());
    const permitMs = this.permits.forAddress(address);
    let dialled: ReturnType<Dialer>;
    try {
      dialled = o.dial(address, permitMs);
    } catch (err) {
      // TLS files and the token file are read on every connect, so rotated ones are used
      // from the next connection on; an unreadable one is retried like an unreachable controller.
      return this.backingOff('error', {
        problem: err instanceof Error ? err.message : String(err),
        msg: 'cannot read the TLS or token files',
      });
    }
    const link = new LiveLink(address, permitMs, dialled, o.log);
    o.log.debug(
      { controller: address, attempt: this.attempt, fast_keepalive: !!permitMs },
      'connecting',
    );
    const { call } = link;
    call.on('metadata', (md: grpc.Metadata) => this.onHeaders(link, md));
    call.on('data', (frame: Frame<StreamToNode>) => this.onData(link, frame));
    call.on('error', (err: grpc.ServiceError) => this.onEnded(link, err));
    call.on('status', (st: grpc.StatusObject) => this.onEnded(link, st));
    call.on('end', () => this.onEnded(link));
    return { kind: 'connecting', link };
  }

  /**
   * Enter action of `connecting`: with fast pings already, register at once; else wait a
   * moment for the response headers, which may permit them (see onHeaders).
   */
  private enterConnecting(link: LiveLink): void {
    link.connectTimer = this.o.scheduler.setTimeout(() => {
      link.connectTimer = undefined;
      this.onConnectTimeout(link);
    }, this.o.connectTimeoutMs);
    if (link.permitMs !== undefined) {
      this.announce(link);
      return;
    }
    link.headerTimer = this.o.scheduler.setTimeout(() => {
      link.headerTimer = undefined;
      this.permits.onHeaders(link.address, link.permitMs, undefined);
      this.announce(link);
    }, this.o.headerWaitMs);
  }

  private backingOff(
    level: 'error' | 'warn' | 'debug' | 'none',
    { msg, ...fields }: Record<string, unknown> & { msg: string },
    delayMs?: number,
  ): ConnectionState {
    const delay = delayMs ?? backoffDelayMs(this.attempt++, this.o.backoff, this.o.random);
    if (level !== 'none') this.o.log[level]({ ...fields, retry_in_ms: delay }, msg);
    const timer = this.o.scheduler.setTimeout(() => {
      this.o.metrics.reconnectAttempts.inc();
      this.transition(this.connecting());
    }, delay);
    return { kind: 'backing_off', timer };
  }

  private enterRegistered(link: LiveLink): void {
    link.connectedAtMs = this.o.scheduler.now();
    this.attempt = 0;
    this.failures.reset();
    if (this.everRegistered) this.o.metrics.reconnects.inc();
    this.everRegistered = true;
    this.o.log.info(
      { controller: link.address, fast_keepalive: !!link.permitMs },
      'registered with controller',
    );
    this.o.onRegistered(link);
  }

  // ------------------------------------------------------------ stream events

  private isCurrent(link: LiveLink): boolean {
    const s = this.state;
    return !link.closed && (s.kind === 'connecting' || s.kind === 'registered') && s.link === link;
  }

  private announce(link: LiveLink): void {
    if (link.announced || !this.isCurrent(link)) return;
    link.announced = true;
    if (link.headerTimer) this.o.scheduler.clearTimeout(link.headerTimer);
    link.headerTimer = undefined;
    link.write(this.o.announce());
  }

  private onHeaders(link: LiveLink, md: grpc.Metadata): void {
    if (!this.isCurrent(link)) return;
    const accepts = md.get(CONTROLLER_ACCEPTS_METADATA_KEY).join(',').split(',');
    link.acceptsPriceBatches = accepts.some((name) => name.trim() === PRICE_BATCH_MESSAGE);
    const decision = this.permits.onHeaders(link.address, link.permitMs, md);
    if (link.announced) return; // too late to switch; the next connection uses what was learned
    if (decision === 'redial_fast') {
      this.o.log.debug(
        { controller: link.address },
        'controller permits fast keepalive; dialling again with it',
      );
      this.transition(this.connecting());
    } else {
      this.announce(link);
    }
  }

  private onData(link: LiveLink, frame: Frame<StreamToNode>): void {
    if (!this.isCurrent(link)) return;
    this.announce(link); // a foreign controller may speak before its headers were awaited
    if (this.state.kind === 'connecting') this.transition({ kind: 'registered', link });
    this.o.onFrame(frame);
  }

  /**
   * The dial has had its connectTimeoutMs. Connected (or unable to tell): it goes on as it
   * is. Still connecting: grpc-js would wait on that TCP connect until the kernel gives up
   * (about two minutes when SYNs are dropped, e.g. a Service still pointing at a dead pod),
   * so it is given up like an unreachable controller. Its client is closed before the next
   * dial, which releases the hung subchannel (grpc-js: with no client left it goes idle and
   * drops what it still connects), so the next dial makes a connection of its own.
   */
  private onConnectTimeout(link: LiveLink): void {
    if (!this.isCurrent(link) || this.state.kind !== 'connecting' || !link.stillConnecting()) {
      return;
    }
    const now = this.o.scheduler.now();
    this.choice.ended(link.address, 'unreachable', now);
    const delay = this.retryDelayMs(now);
    this.failures.failed({
      controller: link.address,
      cause: `no connection within ${this.o.connectTimeoutMs} ms (NODE_CONNECT_TIMEOUT_MS)`,
      retry_in_ms: delay,
    });
    this.transition(this.backingOff('none', { msg: '' }, delay));
  }

  /** The next backoff wait, shortened while an election or a handover is on. */
  private retryDelayMs(now: number): number {
    const cap = this.choice.retryCapMs(now);
    const d = backoffDelayMs(this.attempt++, this.o.backoff, this.o.random);
    return cap === undefined ? d : Math.min(d, cap);
  }

  private onEnded(link: LiveLink, st?: StatusLike): void {
    link.ended();
    if (!this.isCurrent(link)) return;
    if (st?.code === grpc.status.OK) st = { ...st, details: st.details || 'stream ended' };
    const wasRegistered = this.state.kind === 'registered';
    const { code, details } = st ?? {};
    const fields = { controller: link.address, code, details };
    // Asked now, before grpc-js closes the connection itself (docs/failure-detection.md).
    const keepalive = isKeepaliveTimeout(
      code,
      details,
      link.permitMs !== undefined,
      link.connection,
    );
    if (keepalive) this.o.metrics.keepaliveTimeouts.inc();
    if (isTooManyPings(code, details)) {
      this.permits.forget(link.address);
      this.o.log.warn(
        fields,
        'the controller refused our keepalive pings; no client pings to it from now on',
      );
    }
    let next: ConnectionState;
    const standby = isStandbyRefusal(st);
    const now = this.o.scheduler.now();
    const displaced = isDisplaced(st);
    const auth = isAuthStatus(code);
    this.choice.ended(
      link.address,
      standby
        ? 'standby'
        : closeReasonOf(st) === 'shutdown'
          ? 'shutdown'
          : !wasRegistered && !displaced && !auth && code === grpc.status.UNAVAILABLE
            ? 'unreachable'
            : 'other',
      now,
    );
    const retryDelay = () => this.retryDelayMs(now);
    if (standby && this.choice.nextAtOnce()) {
      // A standby controller (leader election) points us on: try the next address at
      // once; once every address refused, back off as usual.
      this.o.log.info({ ...fields }, 'controller is a standby; trying the next address');
      next = this.backingOff('none', { msg: '' }, 0);
    } else if (displaced) {
      this.attempt = 0;
      next = this.backingOff(
        'error',
        {
          ...fields,
          node_conflict: true,
          msg: `another process is using this node UUID (${this.o.uuid}): the controller replaced this stream with a newer one claiming the same UUID. Give each node its own NODE_UUID (or leave it unset for a random one); waiting before reconnecting so that the two do not keep displacing each other`,
        },
        this.o.displacedWaitMs + Math.round(this.o.random() * this.o.displacedJitterMs),
      );
    } else if (auth) {
      // Refused credentials may be a secret being rotated: keep trying, loudly.
      next = this.backingOff('error', {
        ...fields,
        msg: `the controller refused this node's credentials (${grpc.status[code!]}); check NODE_TOKEN / NODE_TOKEN_FILE and the client certificate`,
      });
    } else if (standby) {
      next = this.backingOff('none', { msg: '' }, retryDelay());
    } else if (!wasRegistered) {
      const delay = retryDelay();
      const cause = connectFailureCause(code, details);
      this.failures.failed({ ...fields, cause, retry_in_ms: delay });
      next = this.backingOff('none', { msg: '' }, delay);
    } else {
      next = this.backingOff(
        'warn',
        { ...fields, keepalive_timeout: keepalive, msg: 'controller stream lost' },
        retryDelay(),
      );
    }
    this.transition(next);
  }
}
