/**
 * A throw-away OCI registry (CNCF Distribution, built by scripts/setup/registry.sh) on
 * 127.0.0.1 with its storage in a temporary directory: the e2e tier pushes images and the
 * chart to it, and the k8s tier installs from it. Only loopback; stopped by `stop()`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports';
import { WaitAborted, waitFor } from './wait';

export class LocalRegistry {
  /** 127.0.0.1:PORT */
  host = '';
  private child?: ChildProcess;
  private log = '';

  private constructor(private readonly dir: string) {}

  /** The registry binary, built (or found cached) by scripts/setup/registry.sh. */
  static binary(root: string): string {
    const r = spawnSync('bash', [join(root, 'scripts', 'setup', 'registry.sh')], {
      encoding: 'utf8',
      timeout: 15 * 60_000,
    });
    if (r.status !== 0)
      throw new Error(`scripts/setup/registry.sh failed (${r.status}):\n${r.stderr}`);
    const bin = r.stdout.trim().split('\n').pop() ?? '';
    if (!bin) throw new Error('scripts/setup/registry.sh printed no binary path');
    return bin;
  }

  /** Starts `bin` on a free port (a port taken between probe and bind is retried). */
  static async start(bin: string, dir: string): Promise<LocalRegistry> {
    const reg = new LocalRegistry(dir);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const port = await freePort();
      const config = join(dir, `registry-${port}.yml`);
      writeFileSync(
        config,
        [
          'version: 0.1',
          'log: { level: warn, accesslog: { disabled: true } }',
          `storage: { filesystem: { rootdirectory: ${join(dir, 'storage')} }, delete: { enabled: true } }`,
          `http: { addr: 127.0.0.1:${port}, secret: registry-test-only }`,
          '',
        ].join('\n'),
      );
      reg.log = '';
      // No trace export from the registry: there is no collector, and tests talk only to loopback.
      const child = spawn(bin, ['serve', config], {
        env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
      });
      let exited = false;
      child.on('exit', () => (exited = true));
      child.stdout.on('data', (b: Buffer) => (reg.log += b.toString()));
      child.stderr.on('data', (b: Buffer) => (reg.log += b.toString()));
      reg.host = `127.0.0.1:${port}`;
      try {
        await waitFor(
          `the registry on ${reg.host}`,
          async () => {
            if (exited) throw new WaitAborted(`the registry exited:\n${reg.log}`);
            return (await reg.api('/v2/')).status === 200;
          },
          { timeoutMs: 30_000, intervalMs: 200 },
        );
        reg.child = child;
        return reg;
      } catch (err) {
        child.kill('SIGKILL');
        if (attempt === 3 || !/address already in use/.test(reg.log)) throw err;
      }
    }
    throw new Error('unreachable');
  }

  get directory(): string {
    return this.dir;
  }

  async api<T>(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const res = await fetch(`http://${this.host}${path}`, {
      headers,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text ? JSON.parse(text) : undefined) as T,
      headers: res.headers,
    };
  }

  /** SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
