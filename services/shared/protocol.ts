/**
 * The protocol's vocabulary, one place for every program: the gRPC service names, the
 * program (and tracer) names, the close reasons a controller names in the
 * `x-currency-close-reason` trailer, and the patterns of pairs and UUIDs. A name is spelled
 * here once; the controller's table of what each close reason means to it is
 * services/controller/core/links/close-reasons.ts.
 */

export const NODE_SERVICE = 'protobuf.NodeCmdStream';
export const CLI_SERVICE = 'protobuf.CliCmdStream';

/** Program names: the npm bins, the OpenTelemetry service and tracer names. */
export const PROGRAMS = {
  controller: 'currency-controller',
  node: 'currency-node',
  cli: 'currency-cli',
} as const;

/** Why a controller ended a stream on purpose (sent as the close-reason trailer). */
export const CLOSE_REASONS = [
  /** The peer half-closed its stream cleanly. */
  'closed',
  /** The connection dropped (process died, keepalive timed out, cancelled). */
  'lost',
  'kicked',
  /** A newer stream claimed the same node UUID; the node backs off for at least 30 s. */
  'replaced',
  /** The controller is stopping; a following standby takes that as its cue. */
  'shutdown',
  'slow_consumer',
  'register_timeout',
  'max_nodes',
  'max_pairs',
  'max_clis',
  'uuid_not_allowed',
  /** This controller is a standby (leader election): nodes go to the leader. */
  'not_leader',
] as const;

export type CloseReason = (typeof CLOSE_REASONS)[number];

/** Trailer on a stream the controller ended on purpose: one of CLOSE_REASONS. */
export const CLOSE_REASON_METADATA_KEY = 'x-currency-close-reason';

/** The close reason a stream's status carries, if it names a known one. */
export function closeReasonOf(
  st: { metadata?: { get(key: string): unknown[] } } | undefined,
): CloseReason | undefined {
  const v = st?.metadata?.get(CLOSE_REASON_METADATA_KEY)[0];
  return typeof v === 'string' && (CLOSE_REASONS as readonly string[]).includes(v)
    ? (v as CloseReason)
    : undefined;
}

/** Currency pair `BASE_QUOTE`: upper-case letters and digits on each side. */
export const PAIR_PATTERN = /^[A-Z0-9]+_[A-Z0-9]+$/;

/** Canonical UUID text, 8-4-4-4-12 hex digits: the one rule for config, CLI and the wire. */
export const UUID_PATTERN =
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
