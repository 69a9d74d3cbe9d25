/**
 * The websocket kind's messages: the subscribe and unsubscribe messages of a pair
 * (NODE_UPSTREAM_SUBSCRIBE, _UNSUBSCRIBE) and which followed pairs a pushed message is for
 * (NODE_UPSTREAM_SYMBOL_PATH). Pure functions, no I/O.
 */
import type { RawData } from 'ws';
import type { UpstreamConfig } from './config';
import { type PairVars, fillTemplate, getPath, jsonStringContent, symbolMatches } from './extract';

type Templates = Pick<UpstreamConfig, 'subscribe' | 'unsubscribe'>;

export function subscribeMessage(config: Templates, vars: PairVars): string | undefined {
  return config.subscribe === undefined
    ? undefined
    : fillTemplate(config.subscribe, vars, jsonStringContent);
}

export function unsubscribeMessage(config: Templates, vars: PairVars): string | undefined {
  return config.unsubscribe === undefined
    ? undefined
    : fillTemplate(config.unsubscribe, vars, jsonStringContent);
}

/**
 * Whether one of `others` has the subscribe or the unsubscribe message of `vars` (a symbol
 * shared by pairs): then unfollowing `vars` sends nothing.
 */
export function sharesSubscription(
  config: Templates,
  vars: PairVars,
  others: Iterable<PairVars>,
): boolean {
  const sub = subscribeMessage(config, vars);
  const unsub = unsubscribeMessage(config, vars);
  let shared = false;
  for (const other of others)
    if (
      (sub !== undefined && subscribeMessage(config, other) === sub) ||
      (unsub !== undefined && unsubscribeMessage(config, other) === unsub)
    )
      shared = true;
  return shared;
}

/**
 * The followed pairs a message is for: without a symbol path, every one (`followed`
 * itself); with one, those whose symbol it names, and none if it names no symbol (an
 * acknowledgement or a heartbeat, not a price).
 */
export function pairsNamed(
  doc: unknown,
  symbolPath: string | undefined,
  followed: ReadonlyMap<string, PairVars>,
): Iterable<[string, PairVars]> {
  if (symbolPath === undefined) return followed;
  const raw = getPath(doc, symbolPath);
  return [...followed].filter(([, v]) => symbolMatches(raw, v));
}

/** A message's text, whatever buffers `ws` delivered it in. */
export function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
