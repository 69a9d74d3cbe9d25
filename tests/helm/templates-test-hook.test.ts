/**
 * Template unit tests (`helm template`). The `helm test` hook: the pod it renders, and its
 * script run here against a stand-in CLI.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROLLER } from './template-fixtures';
import { byKind, env, one, render } from './support';

jest.setTimeout(60_000);

describe('helm test hook', () => {
  test('a test pod runs `currency-cli --json controller nodes` and fails unless a node is listed', () => {
    const objs = render();
    const pod = one(objs, 'Pod', 'cn-currency-nodes-test-nodes');
    expect(pod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(pod.spec.restartPolicy).toBe('Never');
    const c = pod.spec.containers[0];
    expect(c.image).toBe('currency-nodes/cli:0.1.0');
    expect(env(c, 'CLI_CONTROLLER_ADDR')).toBe(`${CONTROLLER}:5160`);
    const script = [...c.command, ...c.args].join(' ');
    expect(script).toContain('currency-cli --json controller nodes');
    expect(script).toContain('nodes.length === 0');
    expect(script).toMatch(/attempts=30\b/);
  });

  describe('its script, run here against a stand-in currency-cli', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'currency-nodes-hook-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    // The stand-in prints `stdout` and exits with `code`; it records each call.
    function runHook(stdout: string, code: number): { status: number; out: string; calls: number } {
      writeFileSync(
        join(dir, 'currency-cli'),
        `#!/bin/sh\necho call >> "${dir}/calls"\nprintf '%s' '${stdout}'\nexit ${code}\n`,
      );
      chmodSync(join(dir, 'currency-cli'), 0o755);
      const pod = one(
        render({ values: { tests: { attempts: 2, intervalSeconds: 1 } } }),
        'Pod',
        'cn-currency-nodes-test-nodes',
      );
      const c = pod.spec.containers[0];
      expect(c.command).toEqual(['/bin/sh', '-c']);
      const r = spawnSync('/bin/sh', ['-c', c.args[0]], {
        encoding: 'utf8',
        timeout: 20_000,
        env: {
          ...process.env,
          PATH: `${dir}:${process.env.PATH}`,
          CLI_CONTROLLER_ADDR: 'ctl:5160',
        },
      });
      const calls = spawnSync('sh', ['-c', `cat "${dir}/calls" 2>/dev/null | wc -l`], {
        encoding: 'utf8',
      });
      return {
        status: r.status ?? -1,
        out: r.stdout + r.stderr,
        calls: Number(calls.stdout.trim()),
      };
    }

    test('passes at once when a node is listed', () => {
      const r = runHook('[{"nodeUuid":"0b7c1a6e-5d1e-4c2b-9a56-2f1e7c9d8b10","name":"node-a"}]', 0);
      expect(r.out).toContain('1 node(s) listed: node-a');
      expect(r.calls).toBe(1);
      expect(r.status).toBe(0);
    });

    test('fails after the bounded attempts when no node is listed', () => {
      const r = runHook('[]', 0);
      expect(r.out).toContain('FAIL: the controller at ctl:5160 listed no node after 2 attempts');
      expect(r.calls).toBe(2);
      expect(r.status).toBe(1);
    });

    test('fails when the controller cannot be reached (cli exit 3)', () => {
      const r = runHook('', 3);
      expect(r.out).toContain('attempt 1/2: no node listed yet');
      expect(r.calls).toBe(2);
      expect(r.status).toBe(1);
    });
  });

  test('tests.enabled=false renders no test pod', () => {
    expect(byKind(render({ values: { tests: { enabled: false } } }), 'Pod')).toEqual([]);
  });
});
