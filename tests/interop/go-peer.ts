/**
 * The interop tier's foreign programs: the Go conformance peer (tools/interop-peer) and
 * grpcurl, both built by scripts/setup/interop.sh into the cache. Every process started
 * here is tracked (tests/support/processes.ts) and killed by `killGoPeers`.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ProcessGroup } from '../support/processes';
import { waitFor } from '../support/wait';

const BIN = join(
  process.env.CURRENCY_NODES_CACHE ?? join(homedir(), '.cache', 'currency-nodes'),
  'interop',
  'bin',
);

/** A tool built by scripts/setup/interop.sh; a missing one fails the test, naming the fix. */
export function interopTool(name: 'interop-peer' | 'grpcurl'): string {
  const path = join(BIN, name);
  if (!existsSync(path))
    throw new Error(`${path} is missing: run 'npm run setup:interop' (scripts/setup/interop.sh)`);
  return path;
}

export interface GoEvent {
  event: string;
  [key: string]: unknown;
}

export interface GoPeer {
  readonly child: ChildProcess;
  /** Every JSON line printed so far, in order. */
  events(name?: string): GoEvent[];
  stderr(): string;
  readonly exited: Promise<number | string>;
  /** Sends `sig` (SIGKILL past a bounded wait) and resolves with the exit. */
  kill(sig?: NodeJS.Signals): Promise<number | string>;
}

const peers = new ProcessGroup();

export function startGoPeer(mode: 'controller' | 'node' | 'cli', args: string[]): GoPeer {
  const p = peers.spawn(`go ${mode}`, interopTool('interop-peer'), [mode, ...args]);
  return {
    child: p.child,
    events: (name) => p.logLines<GoEvent>().filter((e) => name === undefined || e.event === name),
    stderr: () => p.stderr(),
    exited: p.exited,
    kill: async (sig = 'SIGKILL') => {
      await p.kill(sig);
      return p.exited;
    },
  };
}

/** The Go controller, listening on a port the OS picked; resolves with it and its address. */
export async function startGoController(
  listen = '127.0.0.1:0',
): Promise<{ peer: GoPeer; address: string }> {
  const peer = startGoPeer('controller', ['--listen', listen]);
  const ev = await waitFor('the Go controller listening', () => {
    if (peer.child.exitCode !== null) throw new Error(`Go controller exited: ${peer.stderr()}`);
    return peer.events('listening')[0];
  });
  return { peer, address: String(ev.addr) };
}

/** Runs the Go CLI envelope to completion (bounded) and returns its exit code and events. */
export async function runGoCli(
  address: string,
  args: string[],
): Promise<{ code: number | string; events: GoEvent[]; stderr: string }> {
  const peer = startGoPeer('cli', ['--controller', address, '--timeout', '10s', ...args]);
  const timer = setTimeout(() => void peer.kill(), 20_000);
  const code = await peer.exited;
  clearTimeout(timer);
  return { code, events: peer.events(), stderr: peer.stderr() };
}

/** grpcurl against a plaintext address; never throws on a non-zero exit. */
export async function grpcurl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await peers.run(interopTool('grpcurl'), ['-plaintext', '-max-time', '10', ...args], {
    timeoutMs: 20_000,
  });
  // Killed (a signal name) counts as a failure, as a non-zero exit does.
  return { ...r, code: typeof r.code === 'number' ? r.code : 1 };
}

export function killGoPeers(): Promise<void> {
  return peers.killAll('SIGKILL');
}
