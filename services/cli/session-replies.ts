/**
 * What the controller's answers and stream ends mean to the CLI: a standby's refusal, how a
 * stream ended (a handover or not), and why a reply is not the one a command expected.
 */
import * as grpc from '@grpc/grpc-js';
import type { StreamToCli } from '../gen/protobuf/currency_nodes';
import type { Unpacked } from '../shared/any';
import { isAuthStatus } from '../shared/auth';
import { CLOSE_REASON_METADATA_KEY, STANDBY_MESSAGE_PREFIX } from '../shared/wire';

/** How the stream to a controller ended. */
export interface StreamEnd {
  why: string;
  /**
   * The controller stopped (`shutdown`: a graceful handover) or the connection was lost:
   * a new stream may find the leader again (this controller restarted, or another).
   */
  handover: boolean;
}

/**
 * A standby controller (leader election) refuses what needs the leader, and ends the
 * watches it held when it stops leading, with CliErrorV1Notify UNAVAILABLE on the
 * command's stream, for no node, its message naming the leader.
 */
export function standbyRefusal(
  frame: StreamToCli,
  value: Unpacked | undefined,
): string | undefined {
  if (value?.name !== 'CliErrorV1Notify' || frame.nodeUuid) return undefined;
  const { code, message } = value.message;
  return code === grpc.status.UNAVAILABLE && message.startsWith(STANDBY_MESSAGE_PREFIX)
    ? message
    : undefined;
}

export function endOf(st: grpc.StatusObject, address: string): StreamEnd {
  if (isAuthStatus(st.code))
    // Reached the controller; it refused us. The command fails (exit 1), clearly.
    return {
      why:
        `the controller refused this CLI's credentials (${grpc.status[st.code]}): ${st.details}; ` +
        'check CLI_TOKEN / CLI_TOKEN_FILE and the client certificate',
      handover: false,
    };
  if (st.metadata?.get(CLOSE_REASON_METADATA_KEY)[0] === 'shutdown')
    return { why: `the controller at ${address} is stopping (shutdown)`, handover: true };
  if (st.code === grpc.status.OK)
    return { why: 'the controller closed the stream', handover: true };
  return {
    why: `stream to the controller failed: ${st.details || grpc.status[st.code]}`,
    handover: st.code === grpc.status.UNAVAILABLE,
  };
}

export function describeUnexpected(frame: StreamToCli, value: Unpacked | undefined): string {
  if (!value) return `undecodable reply of type ${frame.response?.typeUrl ?? '(none)'}`;
  if (value.name === 'UnknownCommandV1Notify') return 'the controller does not know this command';
  if (value.name === 'CliErrorV1Notify')
    return `the controller rejected the command: ${value.message.message}`;
  return `unexpected reply ${value.name}`;
}
