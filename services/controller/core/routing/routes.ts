/**
 * The routing table, one for both directions: which CLI commands the controller sends on
 * to nodes, and which node replies go back to the CLI that asked. A node frame's route is
 * told by its message type alone, so a price never pays for a look-up among routed commands.
 */
import type { MessageName } from '../../../shared/any';

/** CLI command routed to nodes -> the reply a node answers it with. */
export const ROUTED_COMMANDS = {
  NodeStatusV1Req: 'NodeStatusV1Reply',
  NodeShutdownV1Req: 'NodeShutdownV1Reply',
} as const satisfies Partial<Record<MessageName, MessageName>>;

export type RoutedCommandName = keyof typeof ROUTED_COMMANDS;
export type RoutedReplyName = (typeof ROUTED_COMMANDS)[RoutedCommandName];

/** Node messages that are prices: the price intake's, never a reply to a CLI. */
export const PRICE_MESSAGES = ['NodePriceUpdateV1Notify', 'NodePriceUpdatesV1Notify'] as const;

/**
 * Where a node frame goes: `price` to the price intake; `reply` to the routing (a reply to
 * a routed command, even without from_uuid); `other` (any other type, or one that did not
 * unpack) to the routing only if its from_uuid names a command in flight, else the node side.
 */
export type NodeFrameRoute = 'price' | 'reply' | 'other';

const COMMANDS: ReadonlySet<string> = new Set(Object.keys(ROUTED_COMMANDS));
const NODE_ROUTES: ReadonlyMap<string, NodeFrameRoute> = new Map<string, NodeFrameRoute>([
  ...PRICE_MESSAGES.map((n) => [n, 'price'] as const),
  ...Object.values(ROUTED_COMMANDS).map((n) => [n, 'reply'] as const),
]);

/** Whether a CLI command is sent on to nodes (rather than answered by the controller). */
export function isRoutedCommand(name: MessageName): name is RoutedCommandName {
  return COMMANDS.has(name);
}

/** The route of a node frame by its unpacked type (undefined: it did not unpack). */
export function nodeFrameRoute(name: MessageName | undefined): NodeFrameRoute {
  return (name !== undefined && NODE_ROUTES.get(name)) || 'other';
}
