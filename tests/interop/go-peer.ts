/**
 * The interop tier's foreign programs: the Go conformance peer (tools/interop-peer) and
 * grpcurl, both built by scripts/setup/interop.sh into the cache. Every process started
 * here is tracked and killed by `killGoPeers`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
  kill(sig?: NodeJS.Signals): Promise<number | string>;
}

const running = new Set<GoPeer>();

export function startGoPeer(mode: 'controller' | 'node' | 'cli', args: string[]): GoPeer {
  const child = spawn(interopTool('interop-peer'), [mode, ...args], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  );
  const peer: GoPeer = {
    child,
    events: (name) =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as GoEvent)
        .filter((e) => name === undefined || e.event === name),
    stderr: () => err,
    exited,
    kill: async (sig = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
      return exited;
    },
  };
  running.add(peer);
  void exited.then(() => running.delete(peer));
  return peer;
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
export function grpcurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      interopTool('grpcurl'),
      ['-plaintext', '-max-time', '10', ...args],
      { timeout: 20_000, env: { PATH: process.env.PATH ?? '' } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export async function killGoPeers(): Promise<void> {
  const all = [...running];
  await Promise.all(all.map((p) => p.kill('SIGKILL')));
}
