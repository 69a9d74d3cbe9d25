import { closedByServer, socketError, unexpectedResponse } from './ws-failures';

const URL_SHOWN = 'wss://feed.example/v1/stream';
const limits = { maxBodyBytes: 65_536, timeoutMs: 5000 };

test('an HTTP answer to the handshake is http_status; a redirect says it is not followed', () => {
  expect(unexpectedResponse(URL_SHOWN, 401)).toEqual({
    outcome: 'http_status',
    detail: `${URL_SHOWN} answered HTTP 401 instead of switching to WebSocket`,
  });
  expect(unexpectedResponse(URL_SHOWN, 302).detail).toMatch(
    /302 .*\(redirects are not followed\)$/,
  );
});

test('socket errors by kind', () => {
  const err = (message: string, code?: string) => Object.assign(new Error(message), { code });
  expect(socketError(err('x', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'), URL_SHOWN, limits)).toEqual({
    outcome: 'too_large',
    detail: 'a message over 65536 bytes; the connection was closed (1009)',
  });
  expect(socketError(err('x', 'WS_ERR_INVALID_UTF8'), URL_SHOWN, limits).outcome).toBe(
    'invalid_json',
  );
  expect(socketError(err('Opening handshake has timed out'), URL_SHOWN, limits)).toEqual({
    outcome: 'timeout',
    detail: `${URL_SHOWN}: no handshake answer within 5000 ms`,
  });
  expect(socketError(err('connect ECONNREFUSED 127.0.0.1:1'), URL_SHOWN, limits)).toEqual({
    outcome: 'network',
    detail: `${URL_SHOWN}: connect ECONNREFUSED 127.0.0.1:1`,
  });
});

test('a close by the server, before or after the handshake', () => {
  expect(closedByServer(URL_SHOWN, true, 1011)).toEqual({
    outcome: 'network',
    detail: `${URL_SHOWN} closed the connection (code 1011)`,
  });
  expect(closedByServer(URL_SHOWN, false, 1006).detail).toBe(
    `${URL_SHOWN} closed the connection before the handshake completed`,
  );
});
