/**
 * Statements in the README and the docs that were once false, each checked against the
 * thing it describes (issue #21, "Docs that are not true" and "A newcomer's first screen"):
 * the docs stand alone (no outside document), every page is indexed, the README is a short
 * first screen, shell completion works from a checkout as documented, the way to run the
 * compose programs alone turns tracing off, the compose recipe without Docker Hub covers
 * every image, and what the docs say about known pairs and the chart's tests.
 * Metric, reason and variable names: docs-reference.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');

/** README.md and every .md under docs/ and deploy/, root-relative. */
function markdownPages(): string[] {
  const out = ['README.md'];
  const walk = (dir: string) => {
    for (const f of readdirSync(join(ROOT, dir))) {
      const p = `${dir}/${f}`;
      if (statSync(join(ROOT, p)).isDirectory()) walk(p);
      else if (f.endsWith('.md')) out.push(p);
    }
  };
  walk('docs');
  walk('deploy');
  return out;
}

const docsPages = () =>
  readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md') && f !== 'README.md');

/** The bodies of the ```sh blocks of a page. */
const shBlocks = (text: string) => [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** The markdown link targets of a page. */
const links = (text: string) => [...text.matchAll(/\]\(([^)#\s]+)/g)].map((m) => m[1]!);

describe('the docs stand alone', () => {
  test('no page refers to "the contract", a document that is not in the repository', () => {
    const found: string[] = [];
    for (const page of markdownPages())
      read(page)
        .split('\n')
        .forEach((line, i) => {
          if (/\bcontract/i.test(line)) found.push(`${page}:${i + 1}: ${line.trim()}`);
        });
    expect(found).toEqual([]);
  });

  test('docs/README.md indexes every page of docs/', () => {
    const indexed = new Set(links(read('docs/README.md')));
    expect(docsPages().filter((p) => !indexed.has(p))).toEqual([]);
  });
});

describe("the README: a newcomer's first screen", () => {
  const readme = read('README.md');
  const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);

  test('is short, and opens with the quick start', () => {
    expect(readme.split('\n').length).toBeLessThan(150);
    expect(headings[0]).toBe('Quick start');
  });

  test("the quick start has the demo and the test command, and the test command is CI's", () => {
    const quick = readme.slice(
      readme.indexOf('## Quick start'),
      readme.indexOf(`## ${headings[1]}`),
    );
    const block = shBlocks(quick)[0]!;
    expect(block).toMatch(/^npm ci && npm run demo\b/m);
    expect(block).toMatch(/^npm ci && npm test\b/m);
    const ci = read('.ci/run');
    expect(ci).toMatch(/^npm ci$/m);
    expect(ci).toMatch(/^npm test$/m);
  });

  test('pictures the controller, the nodes and their upstreams, the CLI and the observability stack', () => {
    const diagram = /## The system\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    for (const part of [
      'currency-controller',
      'node',
      'currency-cli',
      'price APIs',
      'simulated market',
      'Prometheus',
      'Grafana',
      'Jaeger',
    ])
      expect({ part, shown: diagram.includes(part) }).toEqual({ part, shown: true });
  });

  test('links every reference page', () => {
    const linked = new Set(links(readme));
    for (const page of [
      'docs/README.md',
      'docs/configuration.md',
      'docs/cli.md',
      'docs/upstreams.md',
      'docs/observability.md',
      'docs/runbook.md',
      'docs/deployment.md',
      'docs/compose-without-docker-hub.md',
      'docs/upgrading.md',
      'docs/security.md',
      'docs/leader-election.md',
      'docs/interop.md',
      'docs/guarantees.md',
      'docs/decisions.md',
      'docs/architecture.md',
      'deploy/compose/README.md',
      'deploy/helm/currency-nodes/README.md',
      'deploy/observability/README.md',
    ])
      expect({ page, linked: linked.has(page) }).toEqual({ page, linked: true });
  });

  test("its real-price example is one of docs/upstreams.md's worked configurations, as written", () => {
    const section = readme.slice(readme.indexOf('## Reading real prices'));
    const example = shBlocks(section)[0]!.trim();
    const worked = shBlocks(read('docs/upstreams.md')).map((b) => b.trim());
    expect(worked).toContain(example);
  });
});

describe('statements about the system', () => {
  test('known pairs are forgotten after CONTROLLER_FORGET_PAIR_AFTER_MS, not kept for the controller’s lifetime', () => {
    for (const page of markdownPages())
      expect({ page, lifetime: /known for the controller's lifetime/i.test(read(page)) }).toEqual({
        page,
        lifetime: false,
      });
    expect(read('docs/assignment.md')).toMatch(/CONTROLLER_FORGET_PAIR_AFTER_MS/);
  });

  test("the chart's README says its tests run it on a real Kubernetes (the k8s tier), not that none do", () => {
    const chart = read('deploy/helm/currency-nodes/README.md');
    const notCovered = chart.slice(chart.indexOf('What the tests do not cover'));
    expect(notCovered).not.toMatch(/real cluster/i);
    expect(chart).toMatch(/`npm run test:k8s`[^.]*installs the chart on a real Kubernetes/);
    // Install, Upgrade and Uninstall, in that order.
    const h2 = [...chart.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
    expect(h2.filter((h) => ['Install', 'Upgrade', 'Uninstall'].includes(h))).toEqual([
      'Install',
      'Upgrade',
      'Uninstall',
    ]);
  });

  test('every documented way to run the compose programs alone also turns tracing off', () => {
    // Emptying COMPOSE_PROFILES drops the collector, but the programs would still export to
    // it: OTEL_EXPORTER_OTLP_ENDPOINT (set in .env) must be emptied with it.
    const sources = [...markdownPages(), 'deploy/compose/compose.yaml'];
    const commands: string[] = [];
    for (const page of sources)
      for (const [command] of read(page)
        .replace(/\n#\s*/g, ' ')
        .matchAll(/COMPOSE_PROFILES= [^`\n]*docker compose up[^`\n]*/g))
        commands.push(`${page}: ${command}`);
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) expect(c).toMatch(/\bOTEL_EXPORTER_OTLP_ENDPOINT= /);
  });

  test('the recipe without Docker Hub names every image .env pulls rather than builds', () => {
    const env = read('deploy/compose/.env');
    const built = ['CONTROLLER_IMAGE', 'CURRENCY_NODE_IMAGE', 'CLI_IMAGE'];
    const pulled = [...env.matchAll(/^([A-Z_]+_IMAGE)=/gm)]
      .map((m) => m[1]!)
      .filter((v) => !built.includes(v))
      .sort();
    expect(pulled).toContain('NODE_BASE_IMAGE');
    const page = read('docs/compose-without-docker-hub.md');
    const table = [...page.matchAll(/^\| `([A-Z_]+)` /gm)].map((m) => m[1]!).sort();
    expect(table).toEqual(pulled);
    const [mirror, carried] = shBlocks(page);
    const loop = /for v in ([A-Z_ ]+); do/.exec(mirror!)![1]!.trim().split(/\s+/).sort();
    expect(loop).toEqual(pulled);
    const grep = /\^\(([A-Z_|]+)\)_IMAGE=/
      .exec(carried!)![1]!
      .split('|')
      .map((v) => `${v}_IMAGE`);
    expect(grep.sort()).toEqual(pulled);
  });
});

describe('shell completion from a checkout, as docs/cli.md says', () => {
  test('the documented bash lines make `currency-cli contr<TAB>` complete to controller', () => {
    const page = read('docs/cli.md');
    const lines = shBlocks(page.slice(page.indexOf('## Shell completion')))[0]!;
    const script = [
      'set -e',
      // An interactive shell expands aliases; this one is told to.
      'shopt -s expand_aliases',
      lines,
      'COMP_WORDS=(currency-cli contr); COMP_CWORD=1; _currency_cli; echo "${COMPREPLY[*]}"',
      'COMP_WORDS=(currency-cli node st); COMP_CWORD=2; _currency_cli; echo "${COMPREPLY[*]}"',
      'complete -p currency-cli',
    ].join('\n');
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin' }, // no currency-cli on PATH, as in a checkout
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      'controller',
      'status',
      'complete -F _currency_cli currency-cli',
    ]);
    expect(r.status).toBe(0);
  });
});
