/**
 * Teardown that fails on leaks. While a watch is on, every socket, server and child
 * process opened, and every timer created from the project's code (or grpc-js on its
 * behalf), is tracked until it is destroyed; `expectNoLeaks` fails, naming each survivor
 * and where it was made, if any is still alive after teardown. Timers of jest itself
 * are not the project's and are not counted.
 */
import { createHook } from 'node:async_hooks';

const WATCHED = new Set(['Timeout', 'TCPWRAP', 'TCPSERVERWRAP', 'PROCESSWRAP', 'PIPEWRAP']);
const OURS = /\/services\/|\/node_modules\/@grpc\//;
const PASS_THROUGH = /\/services\/shared\/scheduler\./;

interface Tracked {
  type: string;
  where: string;
}

export class LeakWatch {
  private readonly alive = new Map<number, Tracked>();
  private readonly hook = createHook({
    init: (id, type) => {
      if (!WATCHED.has(type)) return;
      const stack = new Error().stack ?? '';
      // Timers are attributed by their creation stack (jest keeps timers of its own);
      // sockets and servers are often opened a tick later, so all of them count.
      if (type === 'Timeout' && !OURS.test(stack)) return;
      // Named by the first of our frames past the scheduler, which only passes timers on.
      const ours = stack.split('\n').filter((l) => OURS.test(l));
      const where =
        (ours.find((l) => !PASS_THROUGH.test(l)) ?? ours[0])?.trim() ?? 'opened asynchronously';
      this.alive.set(id, { type, where });
    },
    destroy: (id) => {
      this.alive.delete(id);
    },
  });

  start(): this {
    this.hook.enable();
    return this;
  }

  /** Waits (bounded) for every tracked resource to go; throws naming those left. */
  async expectNoLeaks(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 200 && Date.now() < deadline && this.alive.size > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.hook.disable();
    if (this.alive.size > 0) {
      const list = [...this.alive.values()].map((t) => `${t.type} (${t.where})`);
      this.alive.clear();
      throw new Error(`leaked after teardown: ${list.join('; ')}`);
    }
  }
}
