/**
 * Which keepalive a node uses towards a controller (see services/shared/grpc-options.ts):
 * fast client pings only to an address whose controller said, in the response headers of
 * a node stream, that it permits them; none to any other, so that a stock grpc-go server
 * (one ping per 5 minutes allowed) never ends our streams for pinging.
 */
import { type Metadata, status } from '@grpc/grpc-js';
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
