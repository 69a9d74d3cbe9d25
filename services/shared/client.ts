/**
 * The one way a client of the controller is dialled (the CLI's session, a node, a standby
 * following the leader, the bench's simulated nodes): address, TLS, token, channel options,
 * the service client, and a close that leaves nothing behind in grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import { type ClientTokenConfig, readClientToken, withToken } from './auth';
import { type ClientTlsConfig, clientCredentials } from './tls-client';
import { createCliClient, createNodeClient } from './wire';

/** Channel credentials with the channel options they need (a TLS server name override). */
export interface ClientChannel {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
}

export interface DialSpec {
  address: string;
  /** The kind of client's channel options (cliChannelOptions(), clientChannelOptions(...)). */
  options: grpc.ChannelOptions;
  /** TLS to the controller, read from the files at this dial; undefined: plaintext. */
  tls?: ClientTlsConfig;
  /** Credentials made already (tests; a CLI session reuses its own): override `tls`. */
  channel?: ClientChannel;
  /** Wraps the credentials (a node's ConnectionWatch, services/node/keepalive.ts). */
  wrapCredentials?: (c: grpc.ChannelCredentials) => grpc.ChannelCredentials;
  /** The bearer token, read when a call's metadata is made (rotated files apply next call). */
  token?: ClientTokenConfig;
}

export interface Dialled<C extends grpc.Client> {
  client: C;
  /** Call metadata (`md`, or new) with the token read now, if there is one. */
  metadata(md?: grpc.Metadata): grpc.Metadata;
  /** Closes the client; see closeClient. */
  close(): void;
}

type MakeClient<C> = (
  address: string,
  credentials: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => C;

/** The credentials and options a dial of `spec` uses (reads the TLS files unless given). */
export function channelFor(spec: Pick<DialSpec, 'tls' | 'channel'>): ClientChannel {
  return spec.channel ?? clientCredentials(spec.tls);
}

/** Dials with any service client constructor (the bench's raw-frame one included). */
export function dialWith<C extends grpc.Client>(make: MakeClient<C>, spec: DialSpec): Dialled<C> {
  const channel = channelFor(spec);
  const credentials = spec.wrapCredentials
    ? spec.wrapCredentials(channel.credentials)
    : channel.credentials;
  const client = make(spec.address, credentials, { ...spec.options, ...channel.options });
  return {
    client,
    metadata: (md = new grpc.Metadata()) =>
      withToken(md, spec.token ? readClientToken(spec.token) : undefined),
    close: () => closeClient(client),
  };
}

/** A client of the controller's CLI service (the CLI, a following standby). */
export function dialController(spec: DialSpec): Dialled<ReturnType<typeof createCliClient>> {
  return dialWith(createCliClient, spec);
}

/** A client of the controller's node service. */
export function dialNodeService(spec: DialSpec): Dialled<ReturnType<typeof createNodeClient>> {
  return dialWith(createNodeClient, spec);
}

/**
 * Closes a client once grpc-js has delivered the name resolution it may have queued. Asked
 * to connect, a channel resolves an IP address target on the next immediate; closed before
 * that, the late result still reaches its load balancer, which then creates and connects a
 * subchannel nobody will release: it retries a stopped controller, with backoff timers,
 * for the rest of the process (grpc-js 1.14). Closing after that immediate releases it.
 */
export function closeClient(client: grpc.Client): void {
  setImmediate(() => client.close());
}
