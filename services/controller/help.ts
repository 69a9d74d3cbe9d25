/** The controller's environment variables as `currency-controller --help` lists them. */
import type { VarHelp } from '../shared/program';
import { CONTROLLER_DEFAULTS as D } from './config';
import {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_LEASE_NAME,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_PERIOD_MS,
} from './leader/config';

type Meanings = Record<keyof typeof D, string>;

// Defaults come from config.ts (one source); this file only says what each variable means.
const WITH_DEFAULTS: Meanings = {
  CONTROLLER_LISTEN_ADDR: 'gRPC listen address HOST:PORT (nodes, CLIs, health)',
  CONTROLLER_STREAMS_PER_PAIR: 'nodes that should stream each pair at once',
  METRICS_ADDR: 'HTTP address of /metrics, /healthz and /readyz',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent',
  CONTROLLER_SHUTDOWN_GRACE_MS: 'on SIGTERM, how long streams get to close before being forced',
  CONTROLLER_MAX_MESSAGE_BYTES: 'largest inbound gRPC message',
  CONTROLLER_MAX_NODES: 'node streams open at once, registered or not; more are refused',
  CONTROLLER_MAX_PAIRS_PER_NODE: 'pairs one node may announce',
  CONTROLLER_MAX_KNOWN_PAIRS: 'known pairs held at once; more are refused',
  CONTROLLER_MAX_CLI_STREAMS: 'CLI streams open at once',
  CONTROLLER_MAX_PENDING_PER_CLI: 'node commands one CLI stream may have awaiting replies',
  CONTROLLER_MAX_QUEUED_MESSAGES: 'messages queued for a peer that is not reading',
  CONTROLLER_SLOW_WATCHER_MS: 'a watch that takes no update for this long is disconnected',
  CONTROLLER_REGISTER_TIMEOUT_MS: 'a node stream not registered within this is closed',
  CONTROLLER_STALE_STREAM_MS: 'a streamer silent on a pair for this long loses it',
  CONTROLLER_FORGET_PAIR_AFTER_MS: 'a pair with no capable node for this long is forgotten',
  CONTROLLER_MAX_PRICE_SKEW_MS: 'a price dated further ahead of this clock is refused',
  CONTROLLER_CREDENTIALS_RELOAD_MS:
    'how often certificate, key, CA, token and metrics web config files are re-read',
  CONTROLLER_REFLECTION: 'gRPC server reflection, on or off',
};

const UNSET: [string, string][] = [
  ['CONTROLLER_TLS_CERT_FILE', 'PEM certificate chain; with the key file, turns TLS on'],
  ['CONTROLLER_TLS_KEY_FILE', 'PEM private key of that certificate'],
  ['CONTROLLER_TLS_CLIENT_CA_FILE', 'PEM CA bundle; set: mutual TLS'],
  [
    'CONTROLLER_TLS_CLIENT_CERT_ROLES',
    'true: a client certificate OU names its role (unset: false)',
  ],
  ['CONTROLLER_NODE_TOKENS_FILE', 'file of accepted node tokens, one per line'],
  ['CONTROLLER_NODE_TOKEN', 'accepted node token(s), comma-separated'],
  ['CONTROLLER_CLI_TOKENS_FILE', 'file of accepted CLI tokens, one per line'],
  ['CONTROLLER_CLI_TOKEN', 'accepted CLI token(s), comma-separated'],
  [
    'CONTROLLER_AUTH_REQUIRE',
    'either or both credentials, when both kinds are set (unset: either)',
  ],
  ['METRICS_WEB_CONFIG_FILE', 'Prometheus web config (TLS, basic auth) for the metrics port'],
  ['METRICS_PROBES_OPEN', 'true: /healthz and /readyz stay open under that config (unset: false)'],
  ['OTEL_*', 'standard OpenTelemetry variables; none set: tracing off'],
];

const LEADER: VarHelp[] = [
  {
    name: 'CONTROLLER_LEADER_ELECTION',
    meaning: 'off (one controller, always leading) or kubernetes (a Lease) (unset: off)',
  },
  { name: 'CONTROLLER_LEASE_NAME', meaning: "the Lease's name", default: DEFAULT_LEASE_NAME },
  {
    name: 'CONTROLLER_LEASE_NAMESPACE',
    meaning: "the Lease's namespace (unset: the pod's namespace, else default)",
  },
  { name: 'CONTROLLER_LEADER_IDENTITY', meaning: 'this replica in the Lease (unset: host name)' },
  {
    name: 'CONTROLLER_LEASE_DURATION_MS',
    meaning: 'lease duration',
    default: String(DEFAULT_LEASE_DURATION_MS),
  },
  {
    name: 'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
    meaning: 'a leader not renewed within this stops leading',
    default: String(DEFAULT_RENEW_DEADLINE_MS),
  },
  {
    name: 'CONTROLLER_LEASE_RETRY_PERIOD_MS',
    meaning: 'time between renew or acquire attempts',
    default: String(DEFAULT_RETRY_PERIOD_MS),
  },
  {
    name: 'CONTROLLER_FOLLOW_ADDR',
    meaning:
      "warm standby: HOST:PORT where a standby watches the leader's prices (unset: none; CLI_TLS_*, CLI_TOKEN* apply)",
  },
];

export function controllerVariables(): VarHelp[] {
  return [
    ...Object.entries(WITH_DEFAULTS).map(([name, meaning]) => ({
      name,
      meaning,
      default: D[name as keyof typeof D],
    })),
    ...LEADER,
    ...UNSET.map(([name, meaning]) => ({ name, meaning })),
  ];
}
