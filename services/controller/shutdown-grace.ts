/**
 * The last step of a graceful stop: grpc-js ends the server once its streams have ended
 * (tryShutdown), and after the grace period on the injected Scheduler's clock (so a test
 * drives it with the fake one) whatever is still open is cut (forceShutdown).
 */
import type { Scheduler } from '../shared/scheduler';

/** The part of a grpc-js Server a graceful stop uses. */
export interface ShutdownableServer {
  tryShutdown(callback: (error?: Error) => void): void;
  forceShutdown(): void;
}

/** Resolves once the server has shut down: true if the grace period ran out and it was forced. */
export function shutdownWithin(
  server: ShutdownableServer,
  graceMs: number,
  scheduler: Scheduler,
  onForced: () => void,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = scheduler.setTimeout(() => {
      onForced();
      server.forceShutdown();
      resolve(true);
    }, graceMs);
    server.tryShutdown(() => {
      scheduler.clearTimeout(timer);
      resolve(false);
    });
  });
}
