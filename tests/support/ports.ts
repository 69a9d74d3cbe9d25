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

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port free on 127.0.0.1 right now, picked at random in 20000-29999. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < TRIES; i++) {
    const port = FIRST + Math.floor(Math.random() * SPAN);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${FIRST}-${FIRST + SPAN - 1} after ${TRIES} tries`);
}

/** Distinct free ports (each is released before the next is picked, so ask for all at once). */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let i = 0; i < n * 20 && ports.size < n; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}
