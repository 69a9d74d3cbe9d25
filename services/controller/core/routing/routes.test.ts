/**
 * The routing table (routes.ts): which CLI commands go on to nodes, which node replies go
 * back, and that a price is told apart by its type alone.
 */
import { isKnownMessageName } from '../../../shared/any';
import { PRICE_MESSAGES, ROUTED_COMMANDS, isRoutedCommand, nodeFrameRoute } from './routes';

describe('the CLI commands routed to nodes', () => {
  test('are `node status` and `node shutdown`, each answered by its own reply type', () => {
    expect(ROUTED_COMMANDS).toEqual({
      NodeStatusV1Req: 'NodeStatusV1Reply',
      NodeShutdownV1Req: 'NodeShutdownV1Reply',
    });
    for (const [command, reply] of Object.entries(ROUTED_COMMANDS)) {
      expect({ command, known: isKnownMessageName(command) }).toEqual({ command, known: true });
      expect({ reply, known: isKnownMessageName(reply) }).toEqual({ reply, known: true });
    }
  });

  test('are told from the commands the controller answers itself', () => {
    expect(isRoutedCommand('NodeStatusV1Req')).toBe(true);
    expect(isRoutedCommand('NodeShutdownV1Req')).toBe(true);
    for (const own of [
      'ControllerListNodesV1Req',
      'ControllerKickNodesV1Req',
      'ControllerWatchPricesV2Req',
      'NodeStreamModifyStateV1Req',
    ] as const)
      expect({ own, routed: isRoutedCommand(own) }).toEqual({ own, routed: false });
  });
});

describe('the route of a node frame', () => {
  test('a price (single or batch) goes to the intake, never to the routing', () => {
    expect(PRICE_MESSAGES).toEqual(['NodePriceUpdateV1Notify', 'NodePriceUpdatesV1Notify']);
    expect(nodeFrameRoute('NodePriceUpdateV1Notify')).toBe('price');
    expect(nodeFrameRoute('NodePriceUpdatesV1Notify')).toBe('price');
  });

  test("every routed command's reply is a reply, back to the CLI even without from_uuid", () => {
    for (const reply of Object.values(ROUTED_COMMANDS))
      expect({ reply, route: nodeFrameRoute(reply) }).toEqual({ reply, route: 'reply' });
  });

  test('anything else, or a frame that did not unpack, is `other`', () => {
    expect(nodeFrameRoute('NodeKnownCurrenciesV1Notify')).toBe('other');
    expect(nodeFrameRoute('NodeStreamModifyStateV1Reply')).toBe('other');
    expect(nodeFrameRoute('UnknownCommandV1Notify')).toBe('other');
    expect(nodeFrameRoute(undefined)).toBe('other');
  });
});
