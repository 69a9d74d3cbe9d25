/** How a node dials (dial.ts): its name in the metadata, the watch, options and token. */
import * as grpc from '@grpc/grpc-js';
import { NODE_NAME_METADATA_KEY } from '../shared/wire';
import { nodeDialer, nodeNameMetadata } from './dial';
import { ConnectionWatch } from './keepalive';

const made: {
  address: string;
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
  metadata?: grpc.Metadata;
  closed: boolean;
}[] = [];
/** The connectivity state of every channel the mock makes. */
let channelState = grpc.connectivityState.CONNECTING;

jest.mock('../shared/wire', () => ({
  ...jest.requireActual<object>('../shared/wire'),
  createNodeClient: (
    address: string,
    credentials: grpc.ChannelCredentials,
    options: grpc.ChannelOptions,
  ) => {
    const m: (typeof made)[number] = { address, credentials, options, closed: false };
    made.push(m);
    return {
      nodeCommandStream: (md: grpc.Metadata) => ((m.metadata = md), { on: () => undefined }),
      close: () => (m.closed = true),
      getChannel: () => ({ getConnectivityState: () => channelState }),
    };
  },
}));

beforeEach(() => {
  made.length = 0;
  channelState = grpc.connectivityState.CONNECTING;
});

const config = { name: 'edge-1', reconnectMaxMs: 2000, tls: undefined, token: undefined };

describe('nodeNameMetadata', () => {
  test('a printable ASCII name goes as it is', () => {
    const md = nodeNameMetadata('edge-1');
    expect(md.get(NODE_NAME_METADATA_KEY)).toEqual(['edge-1']);
    expect(md.get(`${NODE_NAME_METADATA_KEY}-bin`)).toEqual([]);
  });

  test('any other name goes as UTF-8 in -bin, and percent-encoded for older controllers', () => {
    const md = nodeNameMetadata('Zürich 1');
    expect(md.get(`${NODE_NAME_METADATA_KEY}-bin`)).toEqual([Buffer.from('Zürich 1', 'utf8')]);
    expect(md.get(NODE_NAME_METADATA_KEY)).toEqual(['Z%C3%BCrich%201']);
  });
});

describe('nodeDialer', () => {
  test('dials through the watch, with the node options, the name and the token', () => {
    const watch = new ConnectionWatch();
    const inner = grpc.credentials.createInsecure();
    const dial = nodeDialer({ ...config, token: { token: 'tok' } }, watch, inner);
    const d = dial('127.0.0.1:5160', undefined);
    expect(d.connection).toBe(watch);
    const m = made[0]!;
    expect(m.address).toBe('127.0.0.1:5160');
    // Equal to what the watch makes of the same inner credentials: one subchannel for both.
    expect(m.credentials._equals(watch.credentials(inner))).toBe(true);
    expect(m.options['grpc.max_reconnect_backoff_ms']).toBe(2000);
    expect(m.options['grpc.keepalive_time_ms']).toBeUndefined();
    expect(m.metadata!.get(NODE_NAME_METADATA_KEY)).toEqual(['edge-1']);
    expect(m.metadata!.get('authorization')).toEqual(['Bearer tok']);
  });

  test('with a keepalive permission, the channel pings at that interval', () => {
    nodeDialer(config, new ConnectionWatch(), grpc.credentials.createInsecure())('c:1', 5000);
    expect(made[0]!.options['grpc.keepalive_time_ms']).toBe(5000);
  });

  test('connected means the channel is READY', () => {
    const d = nodeDialer(
      config,
      new ConnectionWatch(),
      grpc.credentials.createInsecure(),
    )('c:1', undefined);
    expect(d.connected!()).toBe(false);
    channelState = grpc.connectivityState.READY;
    expect(d.connected!()).toBe(true);
  });

  test('a token file that cannot be read fails the dial and closes the client it made', async () => {
    const dial = nodeDialer(
      { ...config, token: { file: '/nonexistent/token' } },
      new ConnectionWatch(),
      grpc.credentials.createInsecure(),
    );
    expect(() => dial('c:1', undefined)).toThrow(/ENOENT/);
    await new Promise((r) => setImmediate(r));
    expect(made[0]!.closed).toBe(true);
  });
});
