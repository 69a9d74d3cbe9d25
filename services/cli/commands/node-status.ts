import { CurrencyStreamStateV1_StreamState as StreamState } from '../../gen/protobuf/currency_nodes';
import type { Command } from '../command';
import { showPrice, showTime } from '../format';
import { type NodeTargets, runNodeCommand } from './node-command';

/** `node status (--node-uuid UUID... | --all)`. */
export const nodeStatus: Command<NodeTargets> = (env, targets) =>
  runNodeCommand(env, 'node status', 'NodeStatusV1Req', {}, targets, ({ nodeUuid, reply }) => {
    if (reply.name !== 'NodeStatusV1Reply') return `${nodeUuid}: ${reply.name}\n`;
    const s = reply.message;
    const streaming = s.streamStates.filter((x) => x.streamState === StreamState.StreamStart);
    const lines = [
      `node ${s.config?.uuid ?? nodeUuid} (${s.config?.name ?? ''})`,
      `  version:     ${s.appVersion}`,
      `  controller:  ${s.connectedControllerServer} since ${showTime(s.connectedAt)}`,
      `  pairs:       ${s.streamStates.map((x) => x.currencyPair).join(',')}`,
      `  streaming:   ${streaming.map((x) => `${x.currencyPair}=${x.latestPrice === undefined ? '?' : showPrice(x.latestPrice)}`).join(', ') || '-'}`,
    ];
    return lines.join('\n') + '\n';
  });
