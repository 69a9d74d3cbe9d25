// The shell scripts behind the suite and the deployment entry points: habits that make them
// fail intermittently. Found the hard way: `ctr images ls -q | grep -qx NAME` under
// `set -o pipefail` failed one start of the test cluster in a few (grep stops at the first
// line, ctr gets SIGPIPE writing the second, the pipeline exits 141).
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');

// Every tracked shell script: scripts/, .ci/run, deploy/compose/, tools/.
const scripts = spawnSync('git', ['ls-files', '*.sh', '.ci/run'], { cwd: ROOT, encoding: 'utf8' })
  .stdout.split('\n')
  .filter((f) => f !== '')
  .map((f) => join(ROOT, f));

/** Lines that pipe into a reader that may stop early (`grep -q`, `head`) while the writer
 * still writes: under pipefail such a pipeline fails whenever the writer is not done yet. */
function earlyExitPipes(text: string): string[] {
  return text
    .split('\n')
    .map((line, i) => ({ line: line.replace(/(^|\s)#.*$/, ''), n: i + 1 }))
    .filter(({ line }) => /\|\s*(grep\s+(-\S*\s+)*-\w*[qm]\w*\b|head\b)/.test(line))
    .map(({ line, n }) => `${n}: ${line.trim()}`);
}

describe('shell scripts', () => {
  it('finds the scripts', () => {
    expect(scripts.length).toBeGreaterThan(10);
  });

  it.each(scripts.map((p) => [relative(ROOT, p), p]))('%s parses (bash -n)', (_name, p) => {
    const r = spawnSync('bash', ['-n', p], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  // Every script, not only those that set pipefail: some are sourced by one that does
  // (scripts/k8s/node.sh by cluster.sh). A reader of the whole input (`sed -n 1p`,
  // `grep -F ... <<<"$captured"`) does the same job without the race.
  it('no script pipes into a reader that stops early (grep -q, grep -m, head)', () => {
    const found: string[] = [];
    for (const p of scripts) {
      const text = readFileSync(p, 'utf8');
      for (const hit of earlyExitPipes(text)) found.push(`${relative(ROOT, p)}:${hit}`);
    }
    expect(found).toEqual([]);
  });
});
