/**
 * Where a node's prices come from. The seed's nodes read one upstream latest-prices API
 * (`NodeLatestPricesApi`), so every node streaming a pair reports the same market. The
 * simulated upstream here keeps that property: the price is a pure function of (pair,
 * time), identical on every node, so two streamers of one pair never drift apart and a
 * handover never jumps from one walk to another. A real upstream replaces it behind
 * `MarketFeed` (poll it into a cache and answer `latest` from that cache).
 */

export interface MarketFeed {
  /**
   * The upstream's latest price for `pair` at `atMs` (the node's clock now, which the price
   * is stamped with), or undefined when it has none right now.
   */
  latest(pair: string, atMs: number): number | undefined;
}

/**
 * The simulated upstream: the market price at the instant it is read, which is the instant
 * its update is stamped with (one look at the clock for both).
 */
export function simulatedMarket(): MarketFeed {
  return { latest: (pair, atMs) => marketPrice(pair, atMs) };
}

/**
 * Slow waves (days to a minute) plus smooth value noise, as a log-deviation from the
 * pair's reference level. Bounded by construction: |deviation| <= MAX_LOG_DEVIATION, so
 * the price stays within about ±8% of its level and always positive, however long it runs.
 * Waves: [amplitude, period in ms].
 */
const WAVES: ReadonlyArray<readonly [number, number]> = [
  [0.04, 319_680_000], // ~3.7 days
  [0.02, 33_480_000], // ~9.3 h
  [0.008, 7_560_000], // ~2.1 h
  [0.003, 1_380_000], // 23 min
  [0.0008, 258_000], // ~4.3 min
  [0.0002, 47_000], // 47 s
];
const NOISE_AMPLITUDE = 0.0003;
const NOISE_KNOT_MS = 10_000;
export const MAX_LOG_DEVIATION = WAVES.reduce((a, [amp]) => a + amp, NOISE_AMPLITUDE);
/**
 * Upper bound of the relative change per millisecond (the sum of the slopes), so that two
 * reads `dt` apart differ by at most about `dt * MAX_RELATIVE_SLOPE_PER_MS` of the price
 * (plus rounding): with the default 2-10 s interval, a fraction of a percent.
 */
export const MAX_RELATIVE_SLOPE_PER_MS =
  Math.exp(MAX_LOG_DEVIATION) *
  (WAVES.reduce((a, [amp, period]) => a + (amp * 2 * Math.PI) / period, 0) +
    (Math.PI / 2) * ((2 * NOISE_AMPLITUDE) / NOISE_KNOT_MS));

/** The market price of `pair` at `atMs` (ms since the epoch): same inputs, same price. */
export function marketPrice(pair: string, atMs: number): number {
  const level = referencePrice(pair);
  let dev = 0;
  WAVES.forEach(([amp, period], i) => {
    const phase = (hash(pair, i + 1) / 2 ** 32) * 2 * Math.PI;
    dev += amp * Math.sin((2 * Math.PI * atMs) / period + phase);
  });
  dev += NOISE_AMPLITUDE * valueNoise(pair, atMs / NOISE_KNOT_MS);
  return Math.max(1e-6, round(level * Math.exp(dev)));
}

/** A plausible level for a pair: its real-world level when familiar, else stable per name. */
export function referencePrice(pair: string): number {
  const known = REFERENCE_PRICES[pair];
  if (known !== undefined) return known;
  return round(0.5 + (hash(pair, 0) % 200000) / 1000);
}

/** Smooth noise in [-1, 1]: random values at integer knots, cosine-interpolated. */
function valueNoise(pair: string, x: number): number {
  const k = Math.floor(x);
  const f = x - k;
  const a = knot(pair, k);
  const b = knot(pair, k + 1);
  const w = (1 - Math.cos(Math.PI * f)) / 2;
  return a + (b - a) * w;
}

function knot(pair: string, k: number): number {
  return (hash(pair, 1000 + (k >>> 0)) / 2 ** 32) * 2 - 1;
}

/** FNV-1a over the pair name, salted: a stable 32-bit value per (pair, salt). */
function hash(pair: string, salt: number): number {
  let h = (2166136261 ^ salt) >>> 0;
  for (const c of pair) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
  // A final avalanche so that neighbouring salts give unrelated values.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Rough real-world levels for familiar pairs, so the demo looks like a market. */
const REFERENCE_PRICES: Readonly<Record<string, number>> = {
  USD_HKD: 7.8,
  EUR_USD: 1.08,
  GBP_USD: 1.27,
  USD_JPY: 150.2,
  USD_SGD: 1.34,
  USD_CHF: 0.88,
  AUD_USD: 0.66,
  USD_CAD: 1.36,
  BTC_USD: 60000,
  ETH_USD: 3000,
  XAU_USD: 2300,
};
