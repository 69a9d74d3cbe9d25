import { CurrencyStreamStateV1_StreamState as StreamState } from '../../gen/protobuf/currency_nodes';
import type { Command } from '../command';
import { showPrice, showTime, shown } from '../format';
import { type NodeTargets, runNodeCommand } from './node-command';

/** `node status (--node-uuid UUID... | --all)`. */
export const nodeStatus: Command<NodeTargets> = (env, targets) =>
  runNodeCommand(env, 'node status', 'NodeStatusV1Req', {}, targets, ({ nodeUuid, reply }) => {
    if (reply.name !== 'NodeStatusV1Reply') return `${shown(nodeUuid)}: ${reply.name}\n`;
    const s = reply.message;
    const streaming = s.streamStates.filter((x) => x.streamState === StreamState.StreamStart);
    const lines = [
      `node ${shown(s.config?.uuid ?? nodeUuid)} (${shown(s.config?.name ?? '')})`,
      `  version:     ${shown(s.appVersion)}`,
      `  controller:  ${shown(s.connectedControllerServer)} since ${showTime(s.connectedAt)}`,
      `  pairs:       ${shown(s.streamStates.map((x) => x.currencyPair).join(','))}`,
      `  streaming:   ${shown(streaming.map((x) => `${x.currencyPair}=${x.latestPrice === undefined ? '?' : showPrice(x.latestPrice)}`).join(', ') || '-')}`,
    ];
    return lines.join('\n') + '\n';
  });
