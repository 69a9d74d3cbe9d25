/**
 * How a websocket connection failed, as an outcome and a detail: a handshake answered
 * with HTTP, an error from `ws`, a close from the server. Pure functions; the details name
 * the URL as safeUrl shows it and hold no header value (the caller redacts them too).
 */
import type { ReadOutcome } from './types';

export interface ConnFailure {
  outcome: Exclude<ReadOutcome, 'ok'>;
  detail: string;
}

/** The handshake got an HTTP answer instead of a switch to WebSocket. */
export function unexpectedResponse(shownUrl: string, status: number): ConnFailure {
  const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
  return {
    outcome: 'http_status',
    detail: `${shownUrl} answered HTTP ${status} instead of switching to WebSocket${redirect}`,
  };
}

/** An 'error' of the socket. */
export function socketError(
  err: Error & { code?: string },
  shownUrl: string,
  limits: { maxBodyBytes: number; timeoutMs: number },
): ConnFailure {
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
    return {
      outcome: 'too_large',
      detail: `a message over ${limits.maxBodyBytes} bytes; the connection was closed (1009)`,
    };
  if (err.code === 'WS_ERR_INVALID_UTF8')
    return {
      outcome: 'invalid_json',
      detail: 'a text message that is not UTF-8; the connection was closed',
    };
  if (err.message === 'Opening handshake has timed out')
    return {
      outcome: 'timeout',
      detail: `${shownUrl}: no handshake answer within ${limits.timeoutMs} ms`,
    };
  return { outcome: 'network', detail: `${shownUrl}: ${err.message}` };
}

/** The connection closed, not by this node. */
export function closedByServer(shownUrl: string, wasOpen: boolean, code: number): ConnFailure {
  return {
    outcome: 'network',
    detail: wasOpen
      ? `${shownUrl} closed the connection (code ${code})`
      : `${shownUrl} closed the connection before the handshake completed`,
  };
}
