/**
 * Why the controller could not be reached, and what to do about it: gRPC only says "not
 * ready by the deadline", so the CLI looks again itself (a name lookup, a TCP connect),
 * bounded by a short budget, and names the cause and the flag or variable to fix.
 */
import { promises as dns } from 'node:dns';
import { connect } from 'node:net';
import type { Scheduler } from '../shared/scheduler';

const HINT = 'check --controller or CLI_CONTROLLER_ADDR';

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

function tcpProbe(
  host: string,
  port: number,
  budgetMs: number,
  scheduler: Scheduler,
): Promise<'ok' | 'timeout' | string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: string) => {
      scheduler.clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = scheduler.setTimeout(() => done('timeout'), budgetMs);
    socket.once('connect', () => done('ok'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/** A sentence for "could not reach the controller at ADDRESS: <this>". */
export async function diagnoseUnreachable(
  address: string,
  opts: { tls: boolean; timeoutMs: number; budgetMs?: number; scheduler: Scheduler },
): Promise<string> {
  const { host, port } = splitHostPort(address);
  const budgetMs = opts.budgetMs ?? 1000;
  try {
    await dns.lookup(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return `the name "${host}" does not resolve (${code}); ${HINT}`;
  }
  const tcp = await tcpProbe(host, port, budgetMs, opts.scheduler);
  if (tcp === 'ECONNREFUSED')
    return `connection refused: nothing listens on ${host}:${port}; is the controller running? ${HINT}`;
  if (tcp === 'timeout')
    return (
      `no answer within the deadline (--timeout ${opts.timeoutMs / 1000} s); a firewall, ` +
      `a wrong address or a controller under load; ${HINT}, or raise --timeout`
    );
  if (tcp !== 'ok') return `cannot connect (${tcp}); ${HINT}`;
  return opts.tls
    ? 'a TCP connection opens but the TLS handshake or gRPC does not complete ' +
        '(--tls-ca, --tls-server-name, --tls-cert/--tls-key)'
    : 'a TCP connection opens but gRPC does not answer: if the controller uses TLS, give ' +
        `--tls-ca (or CLI_TLS_CA_FILE); otherwise this is not the controller's gRPC port (${HINT})`;
}
