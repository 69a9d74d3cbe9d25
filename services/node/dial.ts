/**
 * How a node dials its controller: the shared client factory (services/shared/client.ts)
 * with the node's channel options, its name in the call metadata, and the per-node
 * ConnectionWatch wrapping the credentials (keepalive.ts), which also makes successive
 * dials share one grpc-js subchannel.
 */
import * as grpc from '@grpc/grpc-js';
import { dialNodeService } from '../shared/client';
import { clientChannelOptions } from '../shared/grpc-options';
import { NODE_NAME_METADATA_KEY } from '../shared/wire';
import type { NodeConfig } from './config';
import type { Dialer } from './link';
import type { ConnectionWatch } from './keepalive';

/**
 * The node's name as call metadata. Text headers carry printable ASCII only: any other
 * name goes as UTF-8 in `-bin` (which our controller prefers), plus a percent-encoded copy
 * for controllers that predate it.
 */
export function nodeNameMetadata(name: string): grpc.Metadata {
  const md = new grpc.Metadata();
  const plainName = /^(?:[!-~](?:[ -~]*[!-~])?)?$/.test(name);
  if (plainName) md.set(NODE_NAME_METADATA_KEY, name);
  else {
    md.set(`${NODE_NAME_METADATA_KEY}-bin`, Buffer.from(name, 'utf8'));
    md.set(NODE_NAME_METADATA_KEY, encodeURIComponent(name));
  }
  return md;
}

export function nodeDialer(
  config: Pick<NodeConfig, 'name' | 'tls' | 'token' | 'reconnectMaxMs'>,
  watch: ConnectionWatch,
  /** Overrides config.tls (tests). */
  credentials?: grpc.ChannelCredentials,
): Dialer {
  return (address, keepalivePermitMs) => {
    // Read on every connect, so rotated TLS and token files are used from the next one on.
    const dialled = dialNodeService({
      address,
      options: clientChannelOptions(config.reconnectMaxMs, keepalivePermitMs),
      tls: config.tls,
      channel: credentials && { credentials, options: {} },
      wrapCredentials: (c) => watch.credentials(c),
      token: config.token,
    });
    try {
      const call = dialled.client.nodeCommandStream(
        dialled.metadata(nodeNameMetadata(config.name)),
      );
      return {
        call,
        close: dialled.close,
        connection: watch,
        connected: () =>
          dialled.client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY,
      };
    } catch (err) {
      dialled.close();
      throw err;
    }
  };
}
