/** The node's environment variables as `currency-node --help` lists them. */
import type { VarHelp } from '../shared/program';
import { NODE_DEFAULTS as D } from './config';

type Meanings = Record<keyof typeof D, string>;

// Defaults come from config.ts (one source, NODE_DEFAULTS); this file only says what each
// variable means.
const WITH_DEFAULTS: Meanings = {
  NODE_CONTROLLER_ADDR:
    'controller HOST:PORT; a comma-separated list picks one at random per connect',
  NODE_PRICE_INTERVAL_MS: 'time between price updates (upstream reads) per pair: N or MIN-MAX',
  NODE_RECONNECT_INITIAL_MS: 'first reconnect wait',
  NODE_RECONNECT_MAX_MS: 'cap of the reconnect wait',
  NODE_CONNECT_TIMEOUT_MS:
    'a dial with no connection (TCP, TLS, HTTP/2) after this long is given up and retried',
  METRICS_ADDR: 'HTTP address of /metrics, /healthz and /readyz',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent',
  PRICE_SPAN_SAMPLE_RATIO: 'share of price updates traced (0..1); upstream reads are all traced',
  NODE_UPSTREAM: 'where prices come from: simulated, http (poll a JSON API) or websocket',
  NODE_UPSTREAM_SYMBOL: "the upstream's name of a pair: template over {pair} {base} {quote}",
  NODE_UPSTREAM_TIMEOUT_MS: 'one HTTP request or WebSocket connect',
  NODE_UPSTREAM_MAX_RPS:
    'HTTP requests (websocket: subscribe messages) per second at most, across all pairs',
  NODE_UPSTREAM_FAIL_AFTER_MS: 'a pair with no valid upstream price for this long is withdrawn',
};

/** Variables that are required, unset by default, or default to a value of the process. */
const OTHERS: [string, string][] = [
  ['NODE_CURRENCY_PAIRS', 'pairs this node can stream, e.g. USD_HKD,BTC_USD (required)'],
  ['NODE_UUID', "the node's identity, a UUID (unset: a random UUID v4)"],
  ['NODE_NAME', 'friendly name, any Unicode, no control characters (unset: the host name)'],
  ['NODE_UPSTREAM_URL', 'http(s):// URL template ({pair} {base} {quote} {symbol}), or ws(s)://'],
  ['NODE_UPSTREAM_SYMBOLS', 'per-pair symbols, PAIR=SYMBOL,...'],
  ['NODE_UPSTREAM_PRICE_PATH', 'where the price is in the JSON, e.g. data.amount'],
  ['NODE_UPSTREAM_TIME_PATH', "where the price's time is (unset: the time it arrived)"],
  ['NODE_UPSTREAM_SYMBOL_PATH', 'websocket: where a message names its symbol'],
  ['NODE_UPSTREAM_SUBSCRIBE', 'websocket: message sent when a pair starts'],
  ['NODE_UPSTREAM_UNSUBSCRIBE', 'websocket: message sent when a pair stops'],
  ['NODE_UPSTREAM_HEADERS_FILE', '"Name: value" lines sent upstream (API keys)'],
  ['NODE_UPSTREAM_CA_FILE', 'extra CA certificates for an https/wss upstream'],
  ['NODE_UPSTREAM_MAX_AGE_MS', 'a price older than this counts as none (unset: no limit)'],
  ['NODE_TLS_CA_FILE', 'PEM CA that verifies the controller; set: TLS on'],
  ['NODE_TLS_CERT_FILE', 'client certificate, for mutual TLS'],
  ['NODE_TLS_KEY_FILE', 'key of the client certificate'],
  [
    'NODE_TLS_SERVER_NAME',
    "name the controller's certificate is verified against (unset: the dialled host)",
  ],
  ['NODE_TOKEN', 'node bearer token'],
  ['NODE_TOKEN_FILE', 'file holding the node bearer token'],
  ['METRICS_WEB_CONFIG_FILE', 'Prometheus web config (TLS, basic auth) for the metrics port'],
  ['METRICS_PROBES_OPEN', 'true: /healthz and /readyz stay open under that config (unset: false)'],
  ['OTEL_*', 'standard OpenTelemetry variables; none set: tracing off'],
];

export function nodeVariables(): VarHelp[] {
  return [
    ...OTHERS.slice(0, 3).map(([name, meaning]) => ({ name, meaning })),
    ...Object.entries(WITH_DEFAULTS).map(([name, meaning]) => ({
      name,
      meaning,
      default: D[name as keyof typeof D],
    })),
    ...OTHERS.slice(3).map(([name, meaning]) => ({ name, meaning })),
  ];
}
