/**
 * Which keepalive a node uses towards a controller (see services/shared/grpc-options.ts):
 * fast client pings only to an address whose controller said, in the response headers of
 * a node stream, that it permits them; none to any other, so that a stock grpc-go server
 * (one ping per 5 minutes allowed) never ends our streams for pinging.
 */
import { ChannelCredentials, type Metadata, status } from '@grpc/grpc-js';
import { KEEPALIVE_PERMIT_METADATA_KEY } from '../shared/wire';

/** The permission in a node stream's response headers, in ms; undefined when absent or unusable. */
export function permitFromHeaders(md: Metadata): number | undefined {
  const raw = md.get(KEEPALIVE_PERMIT_METADATA_KEY)[0];
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw.trim())) return undefined;
  const ms = Number(raw.trim());
  return ms > 0 ? ms : undefined;
}

/** What to do when a stream's response headers arrive (or do not, within the wait). */
export type HeaderDecision =
  /** Send the registration on this stream. */
  | 'register'
  /** Close this unregistered stream and dial again at once, now with fast pings. */
  | 'redial_fast';

export class KeepalivePermits {
  private readonly byAddress = new Map<string, number>();

  /** The client ping interval to use towards `address`; undefined: no client pings. */
  forAddress(address: string): number | undefined {
    return this.byAddress.get(address);
  }

  /**
   * Learns from a stream's response headers (`md` undefined: none came in time) and says
   * what the not yet registered stream should do. A controller that stopped permitting
   * pings is forgotten, so the next connection is a quiet one.
   */
  onHeaders(
    address: string,
    channelPermitMs: number | undefined,
    md: Metadata | undefined,
  ): HeaderDecision {
    if (!md) return 'register'; // e.g. a foreign controller, whose headers come with its first message
    const permit = permitFromHeaders(md);
    if (permit === undefined) {
      this.byAddress.delete(address);
      return 'register';
    }
    this.byAddress.set(address, permit);
    return channelPermitMs === undefined ? 'redial_fast' : 'register';
  }

  /** The server complained about our pings (GOAWAY too_many_pings): stop pinging it. */
  forget(address: string): void {
    this.byAddress.delete(address);
  }
}

/**
 * A stream ended the way GOAWAY too_many_pings (HTTP/2 ENHANCE_YOUR_CALM) ends it in
 * grpc-js: RESOURCE_EXHAUSTED "Bandwidth exhausted or memory limit exceeded".
 */
export function isTooManyPings(code: number | undefined, details: string | undefined): boolean {
  return (
    code === status.RESOURCE_EXHAUSTED &&
    details !== undefined &&
    /too_many_pings|too many pings|ENHANCE_YOUR_CALM|Bandwidth exhausted/i.test(details)
  );
}

/**
 * What the node can see of the HTTP/2 connection under one of its streams
 * ({@link ConnectionWatch}; a fake in tests).
 */
export interface ConnectionView {
  /** True while the connection is open and the controller has neither closed nor reset it. */
  heldOpenByPeer(): boolean;
}

type SecureConnector = ReturnType<ChannelCredentials['_createSecureConnector']>;
type Socket = Parameters<SecureConnector['connect']>[0];

/**
 * Watches the connection(s) of one node stream's channel, through channel credentials that
 * wrap the real ones (insecure or TLS) and see each socket grpc-js hands to HTTP/2.
 *
 * Why: grpc-js 1.14 ends every call on a connection with UNAVAILABLE "Connection dropped"
 * both when the controller closed or reset it (killed, restarted, a proxy's reset) and when
 * its own keepalive ping went unanswered (frozen, cut cable): transport.js handleDisconnect()
 * serves both, and says which only in a trace enabled by GRPC_TRACE at startup. The sockets
 * differ: a controller that went away closed the connection (FIN or RST reached us, so the
 * socket is ended or destroyed before the call ends), while after an unanswered ping the
 * socket is still open when the call ends, since grpc-js destroys the session after it.
 *
 * One watch per node, for its whole life: two wrappers are equal when they belong to the
 * same watch and wrap equal credentials, so grpc-js shares a subchannel between a node's
 * dials exactly as it did without the wrapper (a closed client leaves no subchannel of its
 * own behind, backing off), and rotated TLS files still get a subchannel of their own.
 */
export class ConnectionWatch implements ConnectionView {
  private socket: Socket | undefined;
  private peerClosed = false;

  heldOpenByPeer(): boolean {
    const s = this.socket;
    return s !== undefined && !this.peerClosed && !s.destroyed && !s.readableEnded;
  }

  /** `inner`, with every connection it makes watched by this object. */
  credentials(inner: ChannelCredentials): ChannelCredentials {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const watch = this;
    class Watched extends ChannelCredentials {
      readonly watchedBy = watch;
      readonly inner = inner;
      _isSecure(): boolean {
        return inner._isSecure();
      }
      _equals(other: ChannelCredentials): boolean {
        const o = other as Partial<Watched>;
        return (
          other === this ||
          (o.watchedBy === watch && o.inner !== undefined && inner._equals(o.inner))
        );
      }
      _createSecureConnector(
        ...args: Parameters<ChannelCredentials['_createSecureConnector']>
      ): SecureConnector {
        const connector = inner._createSecureConnector(...args);
        return {
          connect: async (raw) => {
            const result = await connector.connect(raw);
            watch.watch(result.socket);
            return result;
          },
          waitForReady: () => connector.waitForReady(),
          getCallCredentials: () => connector.getCallCredentials(),
          destroy: () => connector.destroy(),
        };
      }
    }
    return new Watched();
  }

  private watch(socket: Socket): void {
    this.socket = socket;
    this.peerClosed = false;
    const closed = () => {
      if (this.socket === socket) this.peerClosed = true;
    };
    // 'end': the controller's FIN; 'error': e.g. ECONNRESET. A close we make ourselves
    // comes after the call has ended, so it does not matter here.
    socket.once('end', closed);
    socket.once('error', closed);
  }
}

/**
 * Whether a node stream ended because its keepalive ping went unanswered: grpc-js dropped
 * the connection (UNAVAILABLE "Connection dropped") while the controller held it open, on a
 * channel that sends client pings (`pinging`). A status the controller sent, a connection
 * it closed or reset, or a channel without pings never counts.
 */
export function isKeepaliveTimeout(
  code: number | undefined,
  details: string | undefined,
  pinging: boolean,
  connection: ConnectionView | undefined,
): boolean {
  return (
    pinging &&
    code === status.UNAVAILABLE &&
    /^Connection dropped$/i.test(details ?? '') &&
    connection?.heldOpenByPeer() === true
  );
}
