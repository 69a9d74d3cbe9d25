import type { ClientTokenConfig } from '../shared/auth';
import type { Scheduler } from '../shared/scheduler';
import type { ClientTlsConfig } from '../shared/tls-client';
import type { CliIo } from './io';
import type { CliSession } from './session';

export interface GlobalOptions {
  /** One address, or several separated by commas (leader election). */
  controller: string;
  timeoutMs: number;
  /**
   * `watch` and `-w`: how long to try to reach the leader again after a handover or a lost
   * connection (0 or absent: not at all; --reconnect-timeout, default 30 s).
   */
  reconnectMs?: number;
  json: boolean;
  /** Colour in human output: stdout is a terminal and NO_COLOR is not set. */
  colour: boolean;
  /** TLS to the controller; undefined: plaintext. */
  tls?: ClientTlsConfig;
  /** Bearer token sent with the stream; undefined: none. */
  token?: ClientTokenConfig;
}

/** What every subcommand gets: an open session to the controller, I/O and the global options. */
export interface CommandEnv {
  session: CliSession;
  io: CliIo;
  opts: GlobalOptions;
  /** The clock of the run (the session's): waits, polls and ages; tests pass a fake. */
  scheduler: Scheduler;
}

/** A subcommand: arguments in, exit code out. */
export type Command<A> = (env: CommandEnv, args: A) => Promise<number>;
