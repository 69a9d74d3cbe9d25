/**
 * The one place the documentation takes its names from: every metric family the programs
 * export (with its labels and the fixed values of each), and every environment variable a
 * program reads (with its default and meaning).
 *
 * The tables in the docs are generated from this file (scripts/docs/render.ts) between
 * `<!-- BEGIN GENERATED ... -->` and `<!-- END GENERATED -->` markers, and
 * tests/integration/docs-reference.test.ts compares it with the code: the live `/metrics`
 * of a real controller and node, and the variables their config loaders read. After a
 * change here (or in the code), regenerate the tables:
 *
 *   UPDATE_DOCS=1 npx jest --selectProjects integration --runInBand \
 *     --runTestsByPath tests/integration/docs-reference.test.ts
 *
 * Links in meanings are written from the repository root (`docs/upstreams.md`); the
 * renderer makes them relative to the page they land in.
 */

export type Program = 'controller' | 'node' | 'cli' | 'market' | 'demo';

export interface MetricDoc {
  /** The family's name as `# TYPE` shows it (counters with their `_total`). */
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  program: 'controller' | 'node';
  /**
   * Each label: its fixed values (a reason, an outcome), or, for an open set, what the
   * values are (`pair`: each known pair).
   */
  labels: Record<string, readonly string[] | { open: string }>;
  meaning: string;
  /** Shown in deploy/observability/README.md's "Upstream metrics" too. */
  upstream?: boolean;
  /**
   * Labels whose series appear only once something happened (not created at 0 at start);
   * the drift test checks what it sees of them against the documented values.
   */
  onUse?: readonly string[];
}

const open = (what: string) => ({ open: what });
const PAIR = { pair: open('each known pair') };

export const METRICS: readonly MetricDoc[] = [
  // ------------------------------------------------------------------ controller
  {
    name: 'currency_controller_connected_nodes',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning: 'nodes connected and registered (announced their pairs)',
  },
  {
    name: 'currency_controller_connected_clis',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning: 'CLI command streams open',
  },
  {
    name: 'currency_controller_pairs_known',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning:
      'known pairs: announced by a connected node, or by one that left less than `CONTROLLER_FORGET_PAIR_AFTER_MS` ago',
  },
  {
    name: 'currency_controller_pairs_streamed',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning: 'known pairs with at least one streaming node',
  },
  {
    name: 'currency_controller_pairs_unstreamed',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning: 'known pairs with no streaming node',
  },
  {
    name: 'currency_controller_pair_streamers',
    type: 'gauge',
    program: 'controller',
    labels: PAIR,
    meaning: 'nodes streaming the pair (0 when none is; `CurrencyPairUnstreamed`)',
  },
  {
    name: 'currency_controller_pair_capable_nodes',
    type: 'gauge',
    program: 'controller',
    labels: PAIR,
    meaning:
      'connected nodes that offer the pair (announced it and have not withdrawn it); 0 = no node can stream it (`CurrencyPairNoHealthyUpstream`)',
    upstream: true,
  },
  {
    name: 'currency_controller_streams_per_pair',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning: 'the configured `CONTROLLER_STREAMS_PER_PAIR`',
  },
  {
    name: 'currency_controller_failovers_total',
    type: 'counter',
    program: 'controller',
    labels: PAIR,
    meaning:
      'times the pair moved to another node, or its standby took over as primary, because its streamer went away, withdrew the pair (its upstream failed) or went quiet; not when this controller stops or stops leading (every node stream ends at once and nothing moves)',
  },
  {
    name: 'currency_controller_price_updates_total',
    type: 'counter',
    program: 'controller',
    labels: PAIR,
    meaning:
      "price updates stored and forwarded, from the pair's primary streamer (a hot standby's are not counted)",
  },
  {
    name: 'currency_controller_price_deviation_ratio',
    type: 'gauge',
    program: 'controller',
    labels: PAIR,
    meaning:
      "(max - min) / min of the latest prices of the pair's streamers received within `CONTROLLER_STALE_STREAM_MS`; 0 with fewer than two, so always 0 with `CONTROLLER_STREAMS_PER_PAIR` 1 (`CurrencyPairStreamersDisagree`)",
    upstream: true,
  },
  {
    name: 'currency_controller_stale_streams_total',
    type: 'counter',
    program: 'controller',
    labels: PAIR,
    meaning:
      'times a streamer sent no price for the pair for `CONTROLLER_STALE_STREAM_MS` and the pair moved to another node, or its live standby took over as primary (`CurrencyStaleStreams`)',
  },
  {
    name: 'currency_controller_prices_refused_total',
    type: 'counter',
    program: 'controller',
    labels: { reason: ['not_positive', 'bad_timestamp', 'future'] },
    meaning:
      'price updates refused, never stored or forwarded: not finite and positive, a timestamp out of range, or dated more than `CONTROLLER_MAX_PRICE_SKEW_MS` ahead',
  },
  {
    name: 'currency_controller_prices_superseded_total',
    type: 'counter',
    program: 'controller',
    labels: {},
    meaning: 'price updates not newer than the latest held for their pair; dropped, not forwarded',
  },
  {
    name: 'currency_controller_pairs_refused_total',
    type: 'counter',
    program: 'controller',
    labels: {},
    meaning: 'announced pairs refused because the controller holds `CONTROLLER_MAX_KNOWN_PAIRS`',
  },
  {
    name: 'currency_controller_pairs_forgotten_total',
    type: 'counter',
    program: 'controller',
    labels: {},
    meaning:
      'known pairs forgotten, with their last price and per-pair series, after `CONTROLLER_FORGET_PAIR_AFTER_MS` with no capable node',
  },
  {
    name: 'currency_controller_stream_reassignments_total',
    type: 'counter',
    program: 'controller',
    labels: {
      reason: ['node_left', 'kicked', 'rebalanced', 'pairs_changed', 'withdrawn', 'stale'],
    },
    meaning:
      'streams given to another node: its node left, was kicked, load was evened out, a newer stream of the node announced other pairs, the node withdrew the pair (its upstream failed), or the streamer went quiet',
    upstream: true,
  },
  {
    name: 'currency_controller_commands_total',
    type: 'counter',
    program: 'controller',
    labels: {
      command: open('each command type'),
      outcome: ['ok', 'error', 'timeout', 'partial', 'unknown'],
    },
    meaning: 'CLI commands handled',
    onUse: ['command', 'outcome'],
  },
  {
    name: 'currency_controller_command_duration_seconds',
    type: 'histogram',
    program: 'controller',
    labels: { command: open('each command type') },
    meaning:
      "seconds from a CLI command reaching the controller to its last reply leaving it; exemplars with the command's `trace_id` in OpenMetrics scrapes ([tracing.md](docs/tracing.md#metrics-link-to-traces-exemplars))",
    onUse: ['command'],
  },
  {
    name: 'currency_controller_malformed_frames_total',
    type: 'counter',
    program: 'controller',
    labels: { peer: ['node', 'cli'] },
    meaning: 'inbound frames that could not be decoded or failed validation; logged and dropped',
  },
  {
    name: 'currency_controller_unknown_commands_total',
    type: 'counter',
    program: 'controller',
    labels: { peer: ['node', 'cli'] },
    meaning:
      'commands of a type the controller does not know, answered with `UnknownCommandV1Notify`',
  },
  {
    name: 'currency_controller_node_disconnects_total',
    type: 'counter',
    program: 'controller',
    labels: { reason: ['closed', 'lost', 'kicked', 'replaced', 'shutdown', 'rejected'] },
    meaning:
      'node streams that ended: the node closed it, the connection went, kicked, replaced by a newer stream with its UUID, the controller shut down or stands by, or refused (a limit, `CONTROLLER_REGISTER_TIMEOUT_MS`, a UUID its credential may not claim)',
  },
  {
    name: 'currency_controller_watch_updates_dropped_total',
    type: 'counter',
    program: 'controller',
    labels: {},
    meaning: 'price updates not sent to a `watch` because it was not reading fast enough',
  },
  {
    name: 'currency_controller_rejected_total',
    type: 'counter',
    program: 'controller',
    labels: {
      reason: [
        'slow_consumer',
        'register_timeout',
        'max_nodes',
        'max_pairs',
        'max_clis',
        'max_pending',
      ],
    },
    meaning:
      'peers or commands refused by a limit: a peer not reading (`CONTROLLER_MAX_QUEUED_MESSAGES`), no registration in time, `CONTROLLER_MAX_NODES`, `CONTROLLER_MAX_PAIRS_PER_NODE`, `CONTROLLER_MAX_CLI_STREAMS`, `CONTROLLER_MAX_PENDING_PER_CLI`',
  },
  {
    name: 'currency_controller_auth_failures_total',
    type: 'counter',
    program: 'controller',
    labels: {
      service: ['node', 'cli'],
      reason: ['missing', 'invalid', 'wrong_role', 'uuid_not_allowed'],
    },
    meaning:
      'streams refused for their credentials; `uuid_not_allowed` (node only): a node claimed a UUID its credential is not bound to, or a bound UUID with an unbound credential ([security.md](docs/security.md))',
  },
  {
    name: 'currency_controller_leader',
    type: 'gauge',
    program: 'controller',
    labels: {},
    meaning:
      '1 while this controller leads (always 1 with `CONTROLLER_LEADER_ELECTION=off`), else 0 (`CurrencyNoLeader`)',
  },
  {
    name: 'currency_controller_leadership_changes_total',
    type: 'counter',
    program: 'controller',
    labels: { reason: ['acquired', 'lost', 'deadline', 'released'] },
    meaning:
      'times this controller started or stopped leading: took the Lease, another holder took it, could not renew it in time, gave it up on a graceful stop',
  },
  {
    name: 'currency_controller_lease_renew_duration_seconds',
    type: 'histogram',
    program: 'controller',
    labels: { outcome: ['ok', 'held', 'conflict', 'error', 'timeout'] },
    meaning:
      'seconds a Lease renewal by the leading controller took ([leader-election.md](docs/leader-election.md)); series only with leader election on',
    onUse: ['outcome'],
  },
  {
    name: 'currency_controller_info',
    type: 'gauge',
    program: 'controller',
    labels: { version: open('the controller app version') },
    meaning: 'always 1',
  },
  // ------------------------------------------------------------------------ node
  {
    name: 'currency_node_connected',
    type: 'gauge',
    program: 'node',
    labels: {},
    meaning: '1 while the node has a registered stream to a controller, else 0',
  },
  {
    name: 'currency_node_pairs_streaming',
    type: 'gauge',
    program: 'node',
    labels: {},
    meaning: 'pairs this node is streaming now',
  },
  {
    name: 'currency_node_price_updates_sent_total',
    type: 'counter',
    program: 'node',
    labels: { pair: open("each of the node's pairs") },
    meaning: 'price updates sent to the controller',
  },
  {
    name: 'currency_node_price_updates_dropped_total',
    type: 'counter',
    program: 'node',
    labels: {},
    meaning: 'price updates skipped because the stream to the controller was backed up',
  },
  {
    name: 'currency_node_reconnects_total',
    type: 'counter',
    program: 'node',
    labels: {},
    meaning: 'times the node registered again after losing its controller stream',
  },
  {
    name: 'currency_node_reconnect_attempts_total',
    type: 'counter',
    program: 'node',
    labels: {},
    meaning: 'connection attempts made after the first',
  },
  {
    name: 'currency_node_keepalive_timeouts_total',
    type: 'counter',
    program: 'node',
    labels: {},
    meaning: 'controller streams lost because keepalive pings went unanswered',
  },
  {
    name: 'currency_node_commands_total',
    type: 'counter',
    program: 'node',
    labels: { command: open('each command type'), outcome: ['ok', 'malformed', 'unknown'] },
    meaning: 'commands received from the controller',
    onUse: ['command', 'outcome'],
  },
  {
    name: 'currency_node_malformed_frames_total',
    type: 'counter',
    program: 'node',
    labels: {},
    meaning: 'frames from the controller that could not be decoded',
  },
  {
    name: 'currency_node_upstream_requests_total',
    type: 'counter',
    program: 'node',
    labels: {
      outcome: [
        'ok',
        'http_status',
        'rate_limited',
        'timeout',
        'network',
        'redirect',
        'too_large',
        'invalid_json',
        'no_price',
        'bad_price',
        'bad_time',
        'stale',
        'future',
      ],
    },
    meaning:
      'upstream reads (HTTP requests, WebSocket price messages, simulated reads): `ok`, or why no price came ([upstreams.md](docs/upstreams.md#metrics))',
    upstream: true,
  },
  {
    name: 'currency_node_upstream_request_duration_seconds',
    type: 'histogram',
    program: 'node',
    labels: {},
    meaning:
      'time of one upstream HTTP request (each redirect hop), or of one WebSocket connect; the simulated upstream makes none',
    upstream: true,
  },
  {
    name: 'currency_node_upstream_price_age_seconds',
    type: 'gauge',
    program: 'node',
    labels: { pair: open("each of the node's pairs read so far") },
    meaning:
      "age of the latest valid price of the pair when it arrived (its own time, from `NODE_UPSTREAM_TIME_PATH`, against the node's clock); 0 when the upstream gives no time (always for `simulated`)",
    upstream: true,
    onUse: ['pair'],
  },
  {
    name: 'currency_node_upstream_withdrawn_pairs',
    type: 'gauge',
    program: 'node',
    labels: {},
    meaning: 'pairs the node has withdrawn now (their upstream gives no valid price)',
    upstream: true,
  },
  {
    name: 'currency_node_upstream_withdrawals_total',
    type: 'counter',
    program: 'node',
    labels: { pair: open("each of the node's pairs") },
    meaning:
      'times the pair was withdrawn: no valid upstream price for `NODE_UPSTREAM_FAIL_AFTER_MS`',
    upstream: true,
  },
  {
    name: 'currency_node_info',
    type: 'gauge',
    program: 'node',
    labels: {
      version: open('the node app version'),
      node_uuid: open('its `NODE_UUID`'),
      node_name: open('its `NODE_NAME`'),
    },
    meaning: 'always 1',
  },
];

export type VariableSection =
  'controller' | 'leader' | 'security' | 'node' | 'upstream' | 'cli' | 'shared' | 'tools';

export interface VariableDoc {
  /** The variable, or `OTEL_*` for the standard OpenTelemetry ones. */
  name: string;
  programs: readonly Program[];
  /** As shown: a literal in backticks, or words (`unset`, `host name`). */
  default: string;
  meaning: string;
  section: VariableSection;
}

const UNSET = 'unset';

export const VARIABLES: readonly VariableDoc[] = [
  // ------------------------------------------------------------------ controller
  {
    name: 'CONTROLLER_LISTEN_ADDR',
    programs: ['controller'],
    default: '`0.0.0.0:5160`',
    meaning: 'gRPC listen address: node service, CLI service, health (port 0: any free port)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_STREAMS_PER_PAIR',
    programs: ['controller'],
    default: '`1`',
    meaning:
      'nodes that should stream each pair at once: one primary, the others hot standbys ([assignment.md](docs/assignment.md#one-market-per-pair-a-primary-and-hot-standbys))',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_REFLECTION',
    programs: ['controller'],
    default: '`on`',
    meaning:
      'gRPC server reflection for grpcurl, grpcui, Postman: `on` or `off` ([interop.md](docs/interop.md#grpcurl-against-the-controller))',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_SHUTDOWN_GRACE_MS',
    programs: ['controller'],
    default: '`5000`',
    meaning: 'on SIGTERM, how long to wait for streams to close before forcing',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_NODES',
    programs: ['controller'],
    default: '`20000`',
    meaning:
      'node streams open at once, registered or not; more are refused (`RESOURCE_EXHAUSTED`, `rejected_total{reason="max_nodes"}`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_PAIRS_PER_NODE',
    programs: ['controller'],
    default: '`1000`',
    meaning: 'a node announcing more pairs is refused (`max_pairs`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_KNOWN_PAIRS',
    programs: ['controller'],
    default: '`10000`',
    meaning:
      'known pairs held at once; pairs announced beyond it are refused and counted (`pairs_refused_total`); the node keeps the rest',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_CLI_STREAMS',
    programs: ['controller'],
    default: '`1000`',
    meaning: 'CLI streams open at once; more are refused (`max_clis`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_PENDING_PER_CLI',
    programs: ['controller'],
    default: '`1000`',
    meaning:
      'node commands one CLI stream may have awaiting replies; more get `CliErrorV1Notify` (`max_pending`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_QUEUED_MESSAGES',
    programs: ['controller'],
    default: '`1000`',
    meaning:
      'messages queued for a peer that is not reading before it is disconnected (`slow_consumer`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_SLOW_WATCHER_MS',
    programs: ['controller'],
    default: '`10000`',
    meaning:
      'a `watch` that takes no update for this long while updates are being dropped is disconnected',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_MESSAGE_BYTES',
    programs: ['controller'],
    default: '`4194304`',
    meaning: 'largest inbound gRPC message; a larger one ends that stream only',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_REGISTER_TIMEOUT_MS',
    programs: ['controller'],
    default: '`10000`',
    meaning:
      'a node stream that has not announced its pairs within this is closed (`DEADLINE_EXCEEDED`, `register_timeout`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_STALE_STREAM_MS',
    programs: ['controller'],
    default: '`30000`',
    meaning:
      'a streamer that sends no price for a pair this long loses it to another capable node (reassignment reason `stale`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_FORGET_PAIR_AFTER_MS',
    programs: ['controller'],
    default: '`3600000`',
    meaning:
      'a known pair with no capable node for this long is forgotten, with its last price and per-pair metric series (`pairs_forgotten_total`)',
    section: 'controller',
  },
  {
    name: 'CONTROLLER_MAX_PRICE_SKEW_MS',
    programs: ['controller'],
    default: '`5000`',
    meaning:
      'a price dated further ahead of the controller\'s clock is refused and counted (`prices_refused_total{reason="future"}`)',
    section: 'controller',
  },
  // -------------------------------------------------------------- leader election
  {
    name: 'CONTROLLER_LEADER_ELECTION',
    programs: ['controller'],
    default: '`off`',
    meaning:
      '`off`: one controller, always leading; `kubernetes`: leader election on a `coordination.k8s.io/v1` Lease',
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEASE_NAME',
    programs: ['controller'],
    default: '`currency-controller`',
    meaning:
      "the Lease's name (a DNS subdomain); the Helm chart sets `<release>-currency-nodes-controller` (`controller.leaderElection.leaseName`)",
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEASE_NAMESPACE',
    programs: ['controller'],
    default: "the pod's namespace (service account mount), else `default`",
    meaning: "the Lease's namespace",
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEADER_IDENTITY',
    programs: ['controller'],
    default: 'host name',
    meaning:
      "this controller's `holderIdentity`; must differ between replicas (the chart uses the pod name)",
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEASE_DURATION_MS',
    programs: ['controller'],
    default: '`3000`',
    meaning: 'a Lease not renewed for this long may be taken over (at least 1000)',
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
    programs: ['controller'],
    default: '`2000`',
    meaning:
      'a leader that has not renewed for this long stops leading; must be less than the duration',
    section: 'leader',
  },
  {
    name: 'CONTROLLER_LEASE_RETRY_PERIOD_MS',
    programs: ['controller'],
    default: '`500`',
    meaning:
      'time between renewals (leader) and acquisition attempts (standby); must be less than the deadline',
    section: 'leader',
  },
  {
    name: 'CONTROLLER_FOLLOW_ADDR',
    programs: ['controller'],
    default: UNSET,
    meaning:
      "warm standby: where a standby watches the leader's prices, as a CLI of the leader (`CLI_TLS_*`, `CLI_TOKEN*` apply; the chart sets the controller Service)",
    section: 'leader',
  },
  {
    name: 'KUBECONFIG',
    programs: ['controller'],
    default: 'in a pod: its service account; else `~/.kube/config`',
    meaning:
      'with `kubernetes`: the kubeconfig that reaches the API server; one that cannot serve stops the controller at start (exit 2)',
    section: 'leader',
  },
  // --------------------------------------------------------------------- security
  {
    name: 'CONTROLLER_TLS_CERT_FILE',
    programs: ['controller'],
    default: UNSET,
    meaning:
      'PEM certificate chain served on the gRPC port; with `CONTROLLER_TLS_KEY_FILE`, turns TLS on',
    section: 'security',
  },
  {
    name: 'CONTROLLER_TLS_KEY_FILE',
    programs: ['controller'],
    default: UNSET,
    meaning: 'PEM private key of that certificate (must match it)',
    section: 'security',
  },
  {
    name: 'CONTROLLER_TLS_CLIENT_CA_FILE',
    programs: ['controller'],
    default: UNSET,
    meaning: 'PEM CA bundle; set: mutual TLS, every client must present a certificate it signed',
    section: 'security',
  },
  {
    name: 'CONTROLLER_TLS_CLIENT_CERT_ROLES',
    programs: ['controller'],
    default: '`false`',
    meaning:
      '`true` (needs mutual TLS): a client certificate with `OU=currency-node` / `OU=currency-cli` authenticates as a node / CLI',
    section: 'security',
  },
  {
    name: 'CONTROLLER_NODE_TOKENS_FILE',
    programs: ['controller'],
    default: UNSET,
    meaning:
      'node tokens, one per line (`#` comments): `TOKEN` (any UUID) or `TOKEN UUID[,UUID...]` (only those); re-read',
    section: 'security',
  },
  {
    name: 'CONTROLLER_NODE_TOKEN',
    programs: ['controller'],
    default: UNSET,
    meaning: "accepted node token(s), comma-separated; adds to the file's",
    section: 'security',
  },
  {
    name: 'CONTROLLER_CLI_TOKENS_FILE',
    programs: ['controller'],
    default: UNSET,
    meaning: 'file of accepted CLI tokens, one per line; re-read while running',
    section: 'security',
  },
  {
    name: 'CONTROLLER_CLI_TOKEN',
    programs: ['controller'],
    default: UNSET,
    meaning: "accepted CLI token(s), comma-separated; adds to the file's",
    section: 'security',
  },
  {
    name: 'CONTROLLER_CREDENTIALS_RELOAD_MS',
    programs: ['controller'],
    default: '`5000`',
    meaning:
      'how often certificate, key, client CA, tokens and metrics web config files are re-read (a node re-reads its web config every 5 s)',
    section: 'security',
  },
  {
    name: 'CONTROLLER_AUTH_REQUIRE',
    programs: ['controller'],
    default: '`either`',
    meaning:
      'with certificate roles and tokens: `either` credential lets a peer in, or `both` are required',
    section: 'security',
  },
  // ------------------------------------------------------------------------- node
  {
    name: 'NODE_CURRENCY_PAIRS',
    programs: ['node'],
    default: '(required)',
    meaning:
      'pairs this node can stream, e.g. `USD_HKD,BTC_USD` (`BASE_QUOTE`, upper-case letters and digits)',
    section: 'node',
  },
  {
    name: 'NODE_CONTROLLER_ADDR',
    programs: ['node'],
    default: '`localhost:5160`',
    meaning: 'controller address; a comma-separated list picks one at random per connect',
    section: 'node',
  },
  {
    name: 'NODE_UUID',
    programs: ['node'],
    default: 'random UUID',
    meaning: "the node's identity; must be a UUID",
    section: 'node',
  },
  {
    name: 'NODE_NAME',
    programs: ['node'],
    default: 'host name',
    meaning:
      'friendly name, any Unicode (no control characters; trimmed); stream header `x-currency-node-name` (`-bin`: UTF-8)',
    section: 'node',
  },
  {
    name: 'NODE_PRICE_INTERVAL_MS',
    programs: ['node'],
    default: '`2000-10000`',
    meaning:
      'time between price updates per pair (simulated), or between reads of an `http` upstream: `N` or `MIN-MAX`',
    section: 'node',
  },
  {
    name: 'NODE_RECONNECT_INITIAL_MS',
    programs: ['node'],
    default: '`100`',
    meaning: 'first reconnect wait; doubles per failed attempt',
    section: 'node',
  },
  {
    name: 'NODE_RECONNECT_MAX_MS',
    programs: ['node'],
    default: '`2000`',
    meaning: 'cap of the reconnect wait (each wait is half fixed, half random)',
    section: 'node',
  },
  {
    name: 'NODE_CONNECT_TIMEOUT_MS',
    programs: ['node'],
    default: '`10000`',
    meaning:
      'a dial with no connection (TCP, TLS and HTTP/2 handshakes) after this long is given up and retried, e.g. when SYNs to a dead address are dropped',
    section: 'node',
  },
  {
    name: 'PRICE_SPAN_SAMPLE_RATIO',
    programs: ['node'],
    default: '`0.01`',
    meaning:
      'share of price updates from the simulated market traced, 0..1, when tracing is on (every upstream HTTP read is traced, with its price update)',
    section: 'node',
  },
  {
    name: 'NODE_TLS_CA_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'PEM CA that verifies the controller; set: TLS on',
    section: 'node',
  },
  {
    name: 'NODE_TLS_CERT_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'client certificate, for mutual TLS (re-read on every connect)',
    section: 'node',
  },
  {
    name: 'NODE_TLS_KEY_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'key of that client certificate',
    section: 'node',
  },
  {
    name: 'NODE_TLS_SERVER_NAME',
    programs: ['node'],
    default: 'dialled host',
    meaning: "name the controller's certificate is verified against",
    section: 'node',
  },
  {
    name: 'NODE_TOKEN',
    programs: ['node'],
    default: UNSET,
    meaning: 'node bearer token (at most one of `NODE_TOKEN` and `NODE_TOKEN_FILE`)',
    section: 'node',
  },
  {
    name: 'NODE_TOKEN_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'a file holding the node bearer token, re-read on every connect',
    section: 'node',
  },
  // -------------------------------------------------------------------- upstream
  {
    name: 'NODE_UPSTREAM',
    programs: ['node'],
    default: '`simulated`',
    meaning: 'where prices come from: `simulated`, `http` (poll a JSON API) or `websocket`',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_URL',
    programs: ['node'],
    default: 'required for `http`, `websocket`',
    meaning:
      '`http(s)://` URL template (`{pair}`, `{base}`, `{quote}`, `{symbol}`), or a fixed `ws(s)://` URL',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_SYMBOL',
    programs: ['node'],
    default: '`{base}{quote}`',
    meaning: "the upstream's name of a pair: a template over `{pair}`, `{base}`, `{quote}`",
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_SYMBOLS',
    programs: ['node'],
    default: UNSET,
    meaning: 'per-pair names that replace the template: `PAIR=SYMBOL,...`',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_PRICE_PATH',
    programs: ['node'],
    default: 'required for `http`, `websocket`',
    meaning: 'where the price is in the JSON, e.g. `data.amount` or `rates.{quote}`',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_TIME_PATH',
    programs: ['node'],
    default: 'unset: the time received',
    meaning: "where the price's own time is",
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_SYMBOL_PATH',
    programs: ['node'],
    default: 'required for `websocket`',
    meaning: 'where a message names its instrument',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_SUBSCRIBE',
    programs: ['node'],
    default: UNSET,
    meaning: '`websocket`: the message sent when the node starts streaming a pair',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_UNSUBSCRIBE',
    programs: ['node'],
    default: UNSET,
    meaning: '`websocket`: the message sent when the node stops streaming a pair',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_HEADERS_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'a file of `Name: value` lines sent with every request or handshake (API keys)',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_CA_FILE',
    programs: ['node'],
    default: UNSET,
    meaning: 'extra CA certificates (PEM) for an `https` or `wss` upstream',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_TIMEOUT_MS',
    programs: ['node'],
    default: '`3000`',
    meaning: 'how long one HTTP request, or one WebSocket connect, may take',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_MAX_RPS',
    programs: ['node'],
    default: '`10`',
    meaning:
      '`http`: requests per second at most, all pairs together; `websocket`: subscribe and unsubscribe messages per second',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_FAIL_AFTER_MS',
    programs: ['node'],
    default: '`10000`',
    meaning:
      'a pair whose upstream gave no valid price for this long is withdrawn and moves to another node',
    section: 'upstream',
  },
  {
    name: 'NODE_UPSTREAM_MAX_AGE_MS',
    programs: ['node'],
    default: UNSET,
    meaning: 'a price whose own time is older than this counts as no price',
    section: 'upstream',
  },
  // -------------------------------------------------------------------------- cli
  {
    name: 'CLI_CONTROLLER_ADDR',
    programs: ['cli'],
    default: '`localhost:5160`',
    meaning:
      'controller address, or several comma-separated (the first that answers as leader is used; `--controller` overrides)',
    section: 'cli',
  },
  {
    name: 'CLI_TLS_CA_FILE',
    programs: ['cli', 'controller'],
    default: UNSET,
    meaning: 'PEM CA that verifies the controller; set: TLS on (`--tls-ca`)',
    section: 'cli',
  },
  {
    name: 'CLI_TLS_CERT_FILE',
    programs: ['cli', 'controller'],
    default: UNSET,
    meaning: 'client certificate for mutual TLS (`--tls-cert`)',
    section: 'cli',
  },
  {
    name: 'CLI_TLS_KEY_FILE',
    programs: ['cli', 'controller'],
    default: UNSET,
    meaning: 'key of that client certificate (`--tls-key`)',
    section: 'cli',
  },
  {
    name: 'CLI_TLS_SERVER_NAME',
    programs: ['cli', 'controller'],
    default: 'dialled host',
    meaning: "name the controller's certificate is verified against (`--tls-server-name`)",
    section: 'cli',
  },
  {
    name: 'CLI_TOKEN',
    programs: ['cli', 'controller'],
    default: UNSET,
    meaning: 'CLI bearer token (at most one of `CLI_TOKEN` and `CLI_TOKEN_FILE`)',
    section: 'cli',
  },
  {
    name: 'CLI_TOKEN_FILE',
    programs: ['cli', 'controller'],
    default: UNSET,
    meaning: 'a file holding the CLI bearer token (`--token-file`)',
    section: 'cli',
  },
  {
    name: 'NO_COLOR',
    programs: ['cli'],
    default: UNSET,
    meaning: 'set and not empty: no colour, even on a terminal',
    section: 'cli',
  },
  // ----------------------------------------------------------------------- shared
  {
    name: 'METRICS_ADDR',
    programs: ['controller', 'node'],
    default: '`0.0.0.0:9464`',
    meaning: 'HTTP: `/metrics`, `/healthz` (alive), `/readyz` (ready)',
    section: 'shared',
  },
  {
    name: 'METRICS_WEB_CONFIG_FILE',
    programs: ['controller', 'node'],
    default: UNSET,
    meaning:
      'exporter-toolkit web config: TLS, client certificates, basic auth on the metrics port; re-read',
    section: 'shared',
  },
  {
    name: 'METRICS_PROBES_OPEN',
    programs: ['controller', 'node'],
    default: '`false`',
    meaning:
      '`true`: `/healthz` and `/readyz` need no credentials under the web config (kubelet probes)',
    section: 'shared',
  },
  {
    name: 'LOG_LEVEL',
    programs: ['controller', 'node', 'market'],
    default: '`info`',
    meaning: '`fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`',
    section: 'shared',
  },
  {
    name: 'OTEL_*',
    programs: ['controller', 'node', 'cli'],
    default: UNSET,
    meaning:
      'standard OpenTelemetry variables; none of `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set (or set empty): tracing off and silent ([tracing.md](docs/tracing.md))',
    section: 'shared',
  },
  // ------------------------------------------------------------------------ tools
  {
    name: 'MARKET_LISTEN_ADDR',
    programs: ['market'],
    default: '`0.0.0.0:8080`',
    meaning:
      'the test and demo market (`services/market`): HTTP quotes, WebSocket stream and `/control/faults`',
    section: 'tools',
  },
  {
    name: 'MARKET_TICK_MS',
    programs: ['market'],
    default: '`1000`',
    meaning: "interval of the market's WebSocket tickers",
    section: 'tools',
  },
  {
    name: 'DEMO_GRPC_PORT',
    programs: ['demo'],
    default: '`5160`',
    meaning: "`npm run demo`: the controller's gRPC port on 127.0.0.1; a port taken stops the demo",
    section: 'tools',
  },
  {
    name: 'DEMO_METRICS_PORT',
    programs: ['demo'],
    default: '`9464`',
    meaning: "`npm run demo`: the controller's metrics port on 127.0.0.1",
    section: 'tools',
  },
];
