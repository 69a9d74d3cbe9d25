/**
 * The one place where commands are packed into and unpacked from google.protobuf.Any.
 *
 * Every message that may travel inside an Any is listed in MESSAGES; the type URL is
 * `type.googleapis.com/protobuf.<Name>`. Receivers dispatch through a table of handlers
 * keyed by message name (see `dispatch`), never through a chain of ifs.
 */
import { Any } from '../gen/google/protobuf/any';
import * as pb from '../gen/protobuf/currency_nodes';

export const TYPE_URL_PREFIX = 'type.googleapis.com/protobuf.';

const MESSAGES = {
  UnknownCommandV1Notify: pb.UnknownCommandV1Notify,
  NodeKnownCurrenciesV1Notify: pb.NodeKnownCurrenciesV1Notify,
  NodePriceUpdateV1Notify: pb.NodePriceUpdateV1Notify,
  NodePriceUpdatesV1Notify: pb.NodePriceUpdatesV1Notify,
  NodeStreamModifyStateV1Req: pb.NodeStreamModifyStateV1Req,
  NodeStreamModifyStateV1Reply: pb.NodeStreamModifyStateV1Reply,
  NodeStatusV1Req: pb.NodeStatusV1Req,
  NodeStatusV1Reply: pb.NodeStatusV1Reply,
  NodeShutdownV1Req: pb.NodeShutdownV1Req,
  NodeShutdownV1Reply: pb.NodeShutdownV1Reply,
  ControllerListNodesV1Req: pb.ControllerListNodesV1Req,
  ControllerListNodesV1Reply: pb.ControllerListNodesV1Reply,
  ControllerListNodesV2Req: pb.ControllerListNodesV2Req,
  ControllerListNodesPageV1: pb.ControllerListNodesPageV1,
  ControllerKickNodesV1Req: pb.ControllerKickNodesV1Req,
  ControllerKickNodesV1Reply: pb.ControllerKickNodesV1Reply,
  ControllerAppVersionV1Req: pb.ControllerAppVersionV1Req,
  ControllerAppVersionV1Reply: pb.ControllerAppVersionV1Reply,
  CliResponseCountV1Notify: pb.CliResponseCountV1Notify,
  CliErrorV1Notify: pb.CliErrorV1Notify,
  ControllerStreamsV1Req: pb.ControllerStreamsV1Req,
  ControllerStreamsV1Reply: pb.ControllerStreamsV1Reply,
  ControllerPricesV1Req: pb.ControllerPricesV1Req,
  ControllerPricesV1Reply: pb.ControllerPricesV1Reply,
  ControllerWatchPricesV1Req: pb.ControllerWatchPricesV1Req,
  ControllerWatchPricesV1Reply: pb.ControllerWatchPricesV1Reply,
  ControllerWatchPricesV2Req: pb.ControllerWatchPricesV2Req,
  ControllerPriceUpdatesV1Notify: pb.ControllerPriceUpdatesV1Notify,
} as const;

type Messages = typeof MESSAGES;
export type MessageName = keyof Messages;
export type MessageOf<N extends MessageName> = ReturnType<Messages[N]['decode']>;

/** A decoded command: its name and its typed message. */
export type Unpacked = { [N in MessageName]: { name: N; message: MessageOf<N> } }[MessageName];

export type UnpackResult =
  | { ok: true; value: Unpacked }
  | {
      ok: false;
      reason: 'missing' | 'unknown-type' | 'malformed';
      typeUrl: string;
      error?: string;
    };

export function typeUrlOf(name: MessageName): string {
  return TYPE_URL_PREFIX + name;
}

export function isKnownMessageName(name: string): name is MessageName {
  return Object.prototype.hasOwnProperty.call(MESSAGES, name);
}

export function pack<N extends MessageName>(name: N, message: MessageOf<N>): Any {
  // The cast is safe: MESSAGES[name] is the codec of MessageOf<N>.
  const codec = MESSAGES[name] as unknown as { encode(m: MessageOf<N>): { finish(): Uint8Array } };
  // finish() returns a fresh array: wrap it rather than copy it.
  const bytes = codec.encode(message).finish();
  return {
    typeUrl: typeUrlOf(name),
    value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

/** The message name of a type URL (anything after the last '/'), or '' when there is none. */
export function messageNameOf(typeUrl: string): string {
  const full = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return full.startsWith('protobuf.') ? full.slice('protobuf.'.length) : full;
}

/** The command's message name for logs, spans and metric labels ('none' when absent). */
export function commandNameOf(any: Any | undefined): string {
  return messageNameOf(any?.typeUrl ?? '') || 'none';
}

export function unpack(any: Any | undefined): UnpackResult {
  if (!any || any.typeUrl === '') return { ok: false, reason: 'missing', typeUrl: '' };
  const name = messageNameOf(any.typeUrl);
  if (!any.typeUrl.endsWith('/protobuf.' + name) || !isKnownMessageName(name)) {
    return { ok: false, reason: 'unknown-type', typeUrl: any.typeUrl };
  }
  try {
    const message = MESSAGES[name].decode(any.value);
    return { ok: true, value: { name, message } as Unpacked };
  } catch (err) {
    return { ok: false, reason: 'malformed', typeUrl: any.typeUrl, error: String(err) };
  }
}

/** A handler per message name; absent names are "unknown" to that receiver. */
export type Handlers<Ctx> = {
  [N in MessageName]?: (message: MessageOf<N>, ctx: Ctx) => void;
};

/** Calls the handler for `value`; returns false when this receiver has none. */
export function dispatch<Ctx>(handlers: Handlers<Ctx>, value: Unpacked, ctx: Ctx): boolean {
  const handler = handlers[value.name] as ((m: unknown, c: Ctx) => void) | undefined;
  if (!handler) return false;
  handler(value.message, ctx);
  return true;
}

/** Human/JSON form of any known message (proto3 JSON mapping, camelCase names). */
export function toJson(value: Unpacked): unknown {
  const codec = MESSAGES[value.name] as unknown as { toJSON(m: unknown): unknown };
  return codec.toJSON(value.message);
}
