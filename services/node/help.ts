/** The node's environment variables as `currency-node --help` lists them. */
import { formatHostPort } from '../shared/config';
import type { VarHelp } from '../shared/program';
import { loadNodeConfig } from './config';

/**
 * Defaults are read back from config.ts (one source): the config it builds from an
 * environment that sets only the one required variable.
 */
export function nodeVariables(): VarHelp[] {
  const d = loadNodeConfig({ NODE_CURRENCY_PAIRS: 'USD_HKD' });
  const interval = d.priceIntervalMs;
  return [
    {
      name: 'NODE_CURRENCY_PAIRS',
      meaning: 'pairs this node can stream, e.g. USD_HKD,BTC_USD (required)',
    },
    {
      name: 'NODE_CONTROLLER_ADDR',
      meaning: 'controller HOST:PORT; a comma-separated list picks one at random per connect',
      default: d.controllerAddrs.map(formatHostPort).join(','),
    },
    { name: 'NODE_UUID', meaning: "the node's identity, a UUID (unset: a random UUID v4)" },
    {
      name: 'NODE_NAME',
      meaning: 'friendly name, any Unicode; no control characters; trimmed',
      default: d.name,
    },
    {
      name: 'NODE_PRICE_INTERVAL_MS',
      meaning: 'time between price updates per pair: N or MIN-MAX',
      default:
        interval.minMs === interval.maxMs
          ? String(interval.minMs)
          : `${interval.minMs}-${interval.maxMs}`,
    },
    {
      name: 'NODE_RECONNECT_INITIAL_MS',
      meaning: 'first reconnect wait',
      default: String(d.reconnectInitialMs),
    },
    {
      name: 'NODE_RECONNECT_MAX_MS',
      meaning: 'cap of the reconnect wait',
      default: String(d.reconnectMaxMs),
    },
    {
      name: 'METRICS_ADDR',
      meaning: 'HTTP address of /metrics, /healthz and /readyz',
      default: formatHostPort(d.metricsAddr),
    },
    {
      name: 'LOG_LEVEL',
      meaning: 'fatal, error, warn, info, debug, trace or silent',
      default: d.logLevel,
    },
    {
      name: 'PRICE_SPAN_SAMPLE_RATIO',
      meaning: 'share of price updates traced (0..1)',
      default: String(d.priceSpanSampleRatio),
    },
    {
      name: 'NODE_UPSTREAM',
      meaning: 'where prices come from: simulated, http (poll a JSON API) or websocket',
      default: d.upstream?.kind,
    },
    {
      name: 'NODE_UPSTREAM_URL',
      meaning: 'http(s):// URL template ({pair} {base} {quote} {symbol}), or ws(s):// URL',
    },
    {
      name: 'NODE_UPSTREAM_SYMBOL',
      meaning: "the upstream's name of a pair: template over {pair} {base} {quote}",
      default: d.upstream?.symbolTemplate,
    },
    { name: 'NODE_UPSTREAM_SYMBOLS', meaning: 'per-pair symbols, PAIR=SYMBOL,...' },
    {
      name: 'NODE_UPSTREAM_PRICE_PATH',
      meaning: 'where the price is in the JSON, e.g. data.amount',
    },
    {
      name: 'NODE_UPSTREAM_TIME_PATH',
      meaning: "where the price's time is (unset: time received)",
    },
    { name: 'NODE_UPSTREAM_SYMBOL_PATH', meaning: 'websocket: where a message names its symbol' },
    { name: 'NODE_UPSTREAM_SUBSCRIBE', meaning: 'websocket: message sent when a pair starts' },
    { name: 'NODE_UPSTREAM_UNSUBSCRIBE', meaning: 'websocket: message sent when a pair stops' },
    { name: 'NODE_UPSTREAM_HEADERS_FILE', meaning: '"Name: value" lines sent upstream (API keys)' },
    { name: 'NODE_UPSTREAM_CA_FILE', meaning: 'extra CA certificates for an https/wss upstream' },
    {
      name: 'NODE_UPSTREAM_TIMEOUT_MS',
      meaning: 'one HTTP request or WebSocket connect',
      default: String(d.upstream?.timeoutMs),
    },
    {
      name: 'NODE_UPSTREAM_MAX_RPS',
      meaning: 'HTTP requests per second at most, across all pairs',
      default: String(d.upstream?.maxRps),
    },
    {
      name: 'NODE_UPSTREAM_FAIL_AFTER_MS',
      meaning: 'a pair with no valid upstream price for this long is withdrawn',
      default: String(d.upstream?.failAfterMs),
    },
    { name: 'NODE_UPSTREAM_MAX_AGE_MS', meaning: 'a price older than this counts as none' },
    { name: 'NODE_TLS_CA_FILE', meaning: 'PEM CA that verifies the controller; set: TLS on' },
    { name: 'NODE_TLS_CERT_FILE', meaning: 'client certificate, for mutual TLS' },
    { name: 'NODE_TLS_KEY_FILE', meaning: 'key of the client certificate' },
    {
      name: 'NODE_TLS_SERVER_NAME',
      meaning: "name the controller's certificate is verified against (unset: the dialled host)",
    },
    { name: 'NODE_TOKEN', meaning: 'node bearer token' },
    { name: 'NODE_TOKEN_FILE', meaning: 'file holding the node bearer token' },
    {
      name: 'METRICS_WEB_CONFIG_FILE',
      meaning: 'Prometheus web config (TLS, basic auth) for the metrics port',
    },
    {
      name: 'METRICS_PROBES_OPEN',
      meaning: 'true: /healthz and /readyz stay open under that config (unset: false)',
    },
    { name: 'OTEL_*', meaning: 'standard OpenTelemetry variables; none set: tracing off' },
  ];
}
