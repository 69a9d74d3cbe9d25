import type { Random } from '../shared/scheduler';

/**
 * Stands in for an upstream latest-price API: a random walk per pair that continues
 * from the newest price known (its own, or the controller's when a pair is handed over).
 */
export class PriceSimulator {
  constructor(private readonly random: Random) {}

  /** A plausible first price for a pair nobody has priced yet, stable per pair name. */
  seedPrice(pair: string): number {
    const known = REFERENCE_PRICES[pair];
    if (known !== undefined) return known;
    let h = 2166136261;
    for (const c of pair) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    return round(0.5 + (h % 200000) / 1000);
  }

  /** The next step of the walk: within ±0.1% of `from`, never zero or negative. */
  next(from: number): number {
    const step = (this.random() - 0.5) * 0.002;
    return Math.max(1e-6, round(from * (1 + step)));
  }
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
