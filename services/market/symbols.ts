/**
 * The market's symbols: USDHKD, USD_HKD, usd-hkd all name the pair USD_HKD. A symbol
 * without a separator is split as a known pair (`pairs`) if one matches, else after its
 * first three characters. Answers always name it BASEQUOTE.
 */

/** Pairs that split symbols like DOGEUSD correctly; others split after three characters. */
export const KNOWN_PAIRS: readonly string[] = [
  'USD_HKD',
  'USD_JPY',
  'USD_SGD',
  'USD_CHF',
  'USD_CAD',
  'EUR_USD',
  'GBP_USD',
  'AUD_USD',
  'BTC_USD',
  'ETH_USD',
  'ETH_BTC',
  'SOL_USD',
  'XAU_USD',
  'DOGE_USD',
  'BTC_USDT',
  'ETH_USDT',
];

const SYMBOL_RE = /^[A-Z0-9]{1,16}(?:[_\-/][A-Z0-9]{1,16})?$/;

export interface ResolvedSymbol {
  /** BASEQUOTE, as answers name it. */
  symbol: string;
  /** BASE_QUOTE, as marketPrice takes it. */
  pair: string;
}

/** USDHKD, USD_HKD, usd-hkd -> {symbol: USDHKD, pair: USD_HKD}; undefined if not a symbol. */
export function resolveSymbol(
  raw: string,
  pairs: readonly string[] = KNOWN_PAIRS,
): ResolvedSymbol | undefined {
  const up = raw.trim().toUpperCase();
  if (!SYMBOL_RE.test(up)) return undefined;
  const sep = /[_\-/]/.exec(up);
  let pair: string | undefined;
  if (sep) pair = `${up.slice(0, sep.index)}_${up.slice(sep.index + 1)}`;
  else {
    pair = pairs.find((p) => p.replace('_', '') === up);
    if (pair === undefined && up.length > 3) pair = `${up.slice(0, 3)}_${up.slice(3)}`;
  }
  return pair === undefined ? undefined : { symbol: pair.replace('_', ''), pair };
}
