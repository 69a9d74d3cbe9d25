/**
 * What the unit tests of the CLI commands (services/cli) run a command in: a fake
 * CliSession answering only what the test supplies, a memory io, the global options and a
 * scheduler, put together as a CommandEnv. In a test:
 *
 *   const t = fakeCliSession({ controllerCommand: () => Promise.resolve(result) }, { opts: { json: true } });
 *   const code = await controllerKick(t.env, { nodeUuids: [A] });
 *   expect(t.out()).toBe(...);
 */
import type { MessageName, MessageOf } from '../../services/shared/any';
import { type Scheduler, systemScheduler } from '../../services/shared/scheduler';
import type { CommandEnv, GlobalOptions } from '../../services/cli/command';
import type { CliSession, ControllerResult, FramesResult } from '../../services/cli/session';
import { type MemoryIo, type MemoryIoOptions, memoryIo } from './memory-io';

/**
 * The part of CliSession a test fakes. controllerCommand and controllerFrames are generic
 * over the message names; here they are loosened so that a fake may answer the one or two
 * commands it knows without casts (annotate `onReply` with the reply type it is handed).
 */
export type SessionFakes = Partial<
  Pick<CliSession, 'nodeCommand' | 'watch' | 'leaderLost' | 'reconnect' | 'standbyRefusal'>
> & {
  address?: string;
  controllerCommand?(
    name: MessageName,
    message: unknown,
    expect: MessageName,
  ): Promise<ControllerResult<MessageName>>;
  controllerFrames?(
    name: MessageName,
    message: unknown,
    expect: MessageName,
    onReply: (reply: MessageOf<MessageName>) => boolean | Promise<boolean>,
  ): Promise<FramesResult>;
};

/**
 * A CliSession that has only `fakes`: reading any other member throws, naming it, so a
 * command that uses more of the session than the test expected fails loudly instead of
 * calling undefined.
 */
export function fakeSession(fakes: SessionFakes = {}): CliSession {
  return new Proxy(fakes, {
    get(target, key, receiver) {
      // `then` is probed by await and by promise helpers: a session is not a thenable.
      if (typeof key === 'symbol' || key === 'then' || key in target)
        return Reflect.get(target, key, receiver) as unknown;
      throw new Error(`fake CliSession: the code under test used session.${key}, not faked here`);
    },
  }) as unknown as CliSession;
}

export interface CommandEnvOptions<S extends Scheduler> extends MemoryIoOptions {
  /** Over the defaults: controller c:1, timeout 1 s, no --json, no colour. */
  opts?: Partial<GlobalOptions>;
  /** The command's clock; default systemScheduler. Pass fakeScheduler() to move time by hand. */
  scheduler?: S;
}

export interface CommandRun<S extends Scheduler> extends MemoryIo {
  env: CommandEnv;
  session: CliSession;
  scheduler: S;
}

/** A CommandEnv around `session` (a fakeSession, or a real one on a fake client). */
export function commandEnv<S extends Scheduler = Scheduler>(
  session: CliSession,
  o: CommandEnvOptions<S> = {},
): CommandRun<S> {
  const m = memoryIo(o);
  const scheduler = o.scheduler ?? (systemScheduler as S);
  const opts: GlobalOptions = {
    controller: 'c:1',
    timeoutMs: 1000,
    json: false,
    colour: false,
    ...o.opts,
  };
  return { ...m, env: { session, io: m.io, opts, scheduler }, session, scheduler };
}

/** A CommandEnv on a fake session that has only `fakes`. */
export function fakeCliSession<S extends Scheduler = Scheduler>(
  fakes: SessionFakes = {},
  o: CommandEnvOptions<S> = {},
): CommandRun<S> {
  return commandEnv(fakeSession(fakes), o);
}

/**
 * controllerFrames of a controller that predates the paged node list
 * (ControllerListNodesV2Req): the CLI falls back to ControllerListNodesV1Req, which the
 * test answers with controllerCommand.
 */
export const noPagedNodeList: NonNullable<SessionFakes['controllerFrames']> = () =>
  Promise.resolve({
    ok: false,
    problem: 'the controller does not know this command',
    unknown: true,
  });

/**
 * A ControllerListNodesV1Reply (answered as a ControllerResult) of nodes known only by
 * UUID and name: what the CLI reads to put names to UUIDs.
 */
export function namedNodes(
  ...nodes: [uuid: string, name: string][]
): ControllerResult<'ControllerListNodesV1Reply'> {
  return {
    ok: true,
    reply: {
      nodeUuids: nodes.map(([uuid]) => uuid),
      nodes: nodes.map(([nodeUuid, name]) => ({
        nodeUuid,
        name,
        knownCurrencyPairs: [],
        streamingCurrencyPairs: [],
        peer: '',
      })),
    },
  };
}
