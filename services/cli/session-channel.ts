/**
 * Reaching a controller's channel for the CLI session: READY by a deadline (patiently, or
 * no further than the first failed attempt), and, when none is, the error that says why.
 */
import * as grpc from '@grpc/grpc-js';
import type { Scheduler } from '../shared/scheduler';
import { diagnoseUnreachable } from './diagnose';

export class ControllerUnreachable extends Error {}

/**
 * READY by `deadline`. `patient`: through failed connection attempts (a controller that
 * is starting), as grpc's waitForReady; else no further than the first failed attempt.
 */
export function channelReady(
  client: grpc.Client,
  deadline: number,
  patient: boolean,
  scheduler: Scheduler,
  signal?: AbortSignal,
): Promise<boolean> {
  if (patient && !signal)
    return new Promise((resolve) => client.waitForReady(deadline, (err) => resolve(!err)));
  const channel = client.getChannel();
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    signal?.addEventListener('abort', onAbort);
    const check = () => {
      if (settled) return;
      // Past the deadline a channel is not asked to connect: nobody would wait for it.
      const late = scheduler.now() >= deadline;
      const state = channel.getConnectivityState(!late);
      if (state === grpc.connectivityState.READY) return done(true);
      if (
        late ||
        state === grpc.connectivityState.SHUTDOWN ||
        (!patient && state === grpc.connectivityState.TRANSIENT_FAILURE)
      )
        return done(false);
      channel.watchConnectivityState(state, deadline, (err) => (err ? done(false) : check()));
    };
    check();
  });
}

/** Why none of `addresses` could be reached, each looked into (diagnose.ts). */
export async function unreachableError(
  addresses: string[],
  opts: { tls: boolean; timeoutMs: number; scheduler: Scheduler },
): Promise<ControllerUnreachable> {
  const tls = opts.tls
    ? ' over TLS (check the CA, the server name and, if the controller requires one, the client certificate)'
    : '';
  const why = (a: string) => diagnoseUnreachable(a, opts);
  if (addresses.length === 1)
    return new ControllerUnreachable(
      `could not reach the controller at ${addresses[0]}${tls}: ${await why(addresses[0]!)}`,
    );
  const each: string[] = [];
  for (const a of addresses) each.push(`${a}: ${await why(a)}`);
  return new ControllerUnreachable(
    `could not reach any controller of ${addresses.join(', ')}${tls}: ${each.join('; ')}`,
  );
}
