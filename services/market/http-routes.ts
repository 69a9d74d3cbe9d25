/**
 * The market's HTTP endpoints: GET /v1/quote/{symbol} (faults acted out per quote),
 * /control/faults (GET lists, POST sets, DELETE clears) and /healthz.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { marketPrice } from '../node/prices';
import { CHUNK_BYTES, type MarketContext } from './context';
import { type Fault, HTML_PAGE, RETRY_AFTER_S, priceView } from './faults';
import { resolveSymbol } from './symbols';

const MAX_CONTROL_BODY = 16 * 1024;

/** The request handler of the market's HTTP server. */
export function createHttpRoutes(
  ctx: MarketContext,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { now, log, pairs, faults } = ctx;

  function sendJson(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(text);
  }

  function quote(req: IncomingMessage, res: ServerResponse, url: URL, rawSymbol: string): void {
    ctx.countRequest();
    const client = url.searchParams.get('client') ?? '';
    const resolved = resolveSymbol(rawSymbol, pairs);
    if (!resolved) {
      sendJson(res, 404, { error: `unknown symbol "${rawSymbol.slice(0, 40)}"` });
      return;
    }
    const { symbol, pair } = resolved;
    const mode = faults.modeFor(symbol, client);
    log.debug({ symbol, client, fault: mode }, 'quote');
    switch (mode) {
      case 'http_500':
        sendJson(res, 500, { error: 'internal server error' });
        return;
      case 'timeout':
      case 'silent':
        // Never answered; the socket is destroyed when the client gives up or on close().
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'close':
        // The connection ends without an answer.
        req.socket.end();
        return;
      case 'rate_limit':
        sendJson(
          res,
          429,
          { error: 'rate limit exceeded' },
          { 'retry-after': String(RETRY_AFTER_S) },
        );
        return;
      case 'html':
        res.writeHead(502, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(HTML_PAGE),
        });
        res.end(HTML_PAGE);
        return;
      case 'invalid_json': {
        const text = `{"symbol":"${symbol}","price":"${marketPrice(pair, now())}","ti`;
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      case 'huge':
        void streamHugeHttp(res, symbol, pair);
        return;
      default: {
        const v = priceView(pair, mode, now());
        const body: Record<string, string> = { symbol };
        if (v.price !== undefined) body.price = v.text ?? String(v.price);
        body.time = new Date(v.timeMs).toISOString();
        sendJson(res, 200, body);
      }
    }
  }

  /** A valid JSON document of about hugeBytes, in chunks, stopped when the client goes away. */
  async function streamHugeHttp(res: ServerResponse, symbol: string, pair: string): Promise<void> {
    const t = now();
    const head = `{"symbol":"${symbol}","price":"${marketPrice(pair, t)}","time":"${new Date(t).toISOString()}","padding":"`;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.write(head);
    const chunk = Buffer.alloc(CHUNK_BYTES, 'x');
    let sent = head.length;
    while (sent < ctx.hugeBytes && !res.destroyed && !ctx.closing()) {
      const n = Math.min(CHUNK_BYTES, ctx.hugeBytes - sent);
      const ok = res.write(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n));
      sent += n;
      if (!ok) await drained(res);
    }
    if (res.destroyed || ctx.closing()) {
      log.info({ symbol, sent }, 'huge body stopped: the client went away');
      return;
    }
    res.end('"}');
    log.info({ symbol, sent }, 'huge body sent');
  }

  async function control(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET') {
      sendJson(res, 200, { faults: faults.list() });
      return;
    }
    if (req.method === 'DELETE') {
      faults.clear();
      sendJson(res, 200, { faults: [] });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use GET, POST or DELETE' }, { allow: 'GET, POST, DELETE' });
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, MAX_CONTROL_BODY));
    } catch (err) {
      sendJson(res, 400, { error: `body: ${(err as Error).message}` });
      return;
    }
    try {
      faults.set(body as Fault);
    } catch (err) {
      sendJson(res, 400, { error: (err as Error).message });
      return;
    }
    sendJson(res, 200, { faults: faults.list() });
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://market');
    } catch {
      sendJson(res, 400, { error: 'bad request target' });
      return;
    }
    const m = /^\/v1\/quote\/([^/]+)$/.exec(url.pathname);
    if (m) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'use GET' }, { allow: 'GET' });
        return;
      }
      let raw: string;
      try {
        raw = decodeURIComponent(m[1]!);
      } catch {
        raw = m[1]!;
      }
      quote(req, res, url, raw);
      return;
    }
    if (url.pathname === '/control/faults') {
      control(req, res).catch((err: unknown) => {
        log.warn({ err }, 'control request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  }

  return onRequest;
}

/** Resolves when `w` can take more, or has closed. */
function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > max) {
        reject(new Error(`larger than ${max} bytes`));
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
