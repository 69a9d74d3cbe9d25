import * as grpc from '@grpc/grpc-js';
import { closeClient, dialWith } from './client';

/** Records what the factory hands the service client constructor. */
class RecordingClient extends grpc.Client {
  closes = 0;
  constructor(
    readonly address: string,
    readonly credentials: grpc.ChannelCredentials,
    readonly options: grpc.ChannelOptions,
  ) {
    super(address, credentials, options);
  }
  override close(): void {
    this.closes++;
    super.close();
  }
}
const make = (a: string, c: grpc.ChannelCredentials, o: grpc.ChannelOptions) =>
  new RecordingClient(a, c, o);
const nextImmediate = () => new Promise((r) => setImmediate(r));

describe('dialWith', () => {
  test('dials the address with the kind of client’s options and the TLS options on top', async () => {
    const credentials = grpc.credentials.createInsecure();
    const d = dialWith(make, {
      address: '127.0.0.1:5160',
      options: { 'grpc.enable_retries': 0, 'grpc.ssl_target_name_override': 'base' },
      channel: { credentials, options: { 'grpc.ssl_target_name_override': 'ctl.example' } },
    });
    expect(d.client.address).toBe('127.0.0.1:5160');
    expect(d.client.credentials).toBe(credentials);
    expect(d.client.options).toEqual({
      'grpc.enable_retries': 0,
      'grpc.ssl_target_name_override': 'ctl.example',
    });
    d.close();
    await nextImmediate();
  });

  test('without TLS or credentials given, dials in plaintext', async () => {
    const d = dialWith(make, { address: '127.0.0.1:5160', options: {} });
    expect(d.client.credentials._isSecure()).toBe(false);
    d.close();
    await nextImmediate();
  });

  test('wraps the credentials when asked (a node’s connection watch)', async () => {
    const inner = grpc.credentials.createInsecure();
    const wrapped = grpc.credentials.createInsecure();
    const seen: grpc.ChannelCredentials[] = [];
    const d = dialWith(make, {
      address: '127.0.0.1:5160',
      options: {},
      channel: { credentials: inner, options: {} },
      wrapCredentials: (c) => (seen.push(c), wrapped),
    });
    expect(seen).toEqual([inner]);
    expect(d.client.credentials).toBe(wrapped);
    d.close();
    await nextImmediate();
  });

  test('call metadata carries the token, read when the metadata is made', async () => {
    const d = dialWith(make, { address: '127.0.0.1:5160', options: {}, token: { token: 't-1' } });
    expect(d.metadata().get('authorization')).toEqual(['Bearer t-1']);
    const md = new grpc.Metadata();
    md.set('x-other', 'kept');
    expect(d.metadata(md).get('x-other')).toEqual(['kept']);
    expect(md.get('authorization')).toEqual(['Bearer t-1']);
    const none = dialWith(make, { address: '127.0.0.1:5160', options: {} });
    expect(none.metadata().get('authorization')).toEqual([]);
    d.close();
    none.close();
    await nextImmediate();
  });
});

describe('closeClient', () => {
  test('closes after the immediates already queued (grpc-js delivers an IP target’s resolution on one)', async () => {
    const client = make('127.0.0.1:1', grpc.credentials.createInsecure(), {});
    const order: string[] = [];
    setImmediate(() => order.push(`resolution delivered, closes=${client.closes}`));
    closeClient(client);
    expect(client.closes).toBe(0);
    await nextImmediate();
    expect(order).toEqual(['resolution delivered, closes=0']);
    expect(client.closes).toBe(1);
  });
});
