import { createServer } from 'node:net';

/**
 * Ports are picked below the kernel's ephemeral range (32768-60999 here): the OS hands
 * those out for port 0, outgoing connections and Docker's published ports, so a port
 * picked there can be taken by another lane's container before the program under test
 * binds it. Below it, only another test's pick can collide, and a pick is checked free.
 */
const FIRST = 20_000;
const SPAN = 10_000;
const TRIES = 50;

/**
 * The part of the range this process picks in. scripts/test-all.sh runs its lanes (jest
 * processes) at once and gives each `TEST_PORT_BLOCK=i/n`, the i-th of n equal parts, so
 * that two lanes never pick the same port: a pick is only checked free, and the program it
 * is handed to binds it a moment later. Unset: the whole range.
 */
export function portRange(block = process.env.TEST_PORT_BLOCK): { first: number; span: number } {
  if (block === undefined || block === '') return { first: FIRST, span: SPAN };
  const m = /^(\d+)\/(\d+)$/.exec(block);
  const [i, n] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(n >= 1 && n <= 100 && i < n)) {
    throw new Error(`TEST_PORT_BLOCK=${block}: expected i/n, the i-th (from 0) of n parts`);
  }
  const span = Math.floor(SPAN / n);
  return { first: FIRST + i * span, span };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 right now, picked at random in 20000-29999 (or the lane's part). */
export async function freePort(): Promise<number> {
  const { first, span } = portRange();
  for (let i = 0; i < TRIES; i++) {
    const port = first + Math.floor(Math.random() * span);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${first}-${first + span - 1} after ${TRIES} tries`);
}

/** Distinct free ports (each is released before the next is picked, so ask for all at once). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < n * 20 && ports.size < n; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}
