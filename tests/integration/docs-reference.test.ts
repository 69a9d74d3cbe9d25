/**
 * Documented names against the code, through one source (scripts/docs/reference.ts):
 *
 * - every metric family, its type, labels and fixed label values (reasons, outcomes) in
 *   the docs' metric tables against the live `/metrics` of a real controller and node
 *   started in this process; every metric name written anywhere in the docs is one they
 *   export;
 * - every variable the config loaders read (found by watching them read an environment)
 *   in docs/configuration.md's tables, with the programs that read it and the defaults
 *   `--help` shows;
 * - every generated table in the docs equal to what scripts/docs/render.ts makes of the
 *   reference (UPDATE_DOCS=1 rewrites them first).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadControllerConfig } from '../../services/controller/config';
import { controllerVariables } from '../../services/controller/help';
import { loadLeaderElectionConfig } from '../../services/controller/leader/config';
import { loadMarketConfig, marketVariables } from '../../services/market/config';
import { loadNodeConfig } from '../../services/node/config';
import { nodeVariables } from '../../services/node/help';
import { type RunningNode, startNode } from '../../services/node/node';
import type { Env } from '../../services/shared/config';
import { silentLogger } from '../../services/shared/logger';
import { handleProgramFlags } from '../../services/shared/program';
import { tracingRequested } from '../../services/shared/telemetry';
import { formatted, regionsOf, updatePage } from '../../scripts/docs/render';
import { METRICS, type Program, VARIABLES } from '../../scripts/docs/reference';
import { runInProcess } from '../support/cli-runner';
import { startTestController } from '../support/in-process';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

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

/** The rows of every markdown table on a page whose header starts with `first`. */
function tableRows(page: string, first: string): string[][] {
  const rows: string[][] = [];
  const lines = read(page).split('\n');
  for (let i = 0; i < lines.length; i++) {
    const head = cells(lines[i]!);
    if (head?.[0] !== first || !/^\|[ :-]+\|/.test(lines[i + 1] ?? '')) continue;
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(cells(lines[i]!)!);
  }
  return rows;
}

function cells(line: string): string[] | undefined {
  if (!line.startsWith('|')) return undefined;
  return line
    .slice(1, line.lastIndexOf('|'))
    .split('|')
    .map((c) => c.trim());
}

const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

// ------------------------------------------------------------------ generated tables

describe('generated tables', () => {
  const pages = markdownPages();

  if (process.env.UPDATE_DOCS === '1')
    beforeAll(() => {
      for (const p of pages) updatePage(p);
    });

  test('the reference pages hold the tables they are meant to', () => {
    const keys = (page: string) => regionsOf(read(page)).map((r) => r.key);
    expect(keys('docs/configuration.md')).toEqual([
      'variables:controller',
      'variables:leader',
      'variables:security',
      'variables:node',
      'variables:upstream',
      'variables:cli',
      'variables:shared',
      'variables:tools',
    ]);
    expect(keys('docs/leader-election.md')).toEqual(['variables:leader']);
    expect(keys('docs/observability.md')).toEqual(['metrics:controller', 'metrics:node']);
    expect(keys('docs/testing.md')).toEqual(['tests:index']);
    expect(keys('deploy/observability/README.md')).toEqual(['metrics:upstream']);
  });

  test.each(pages)('%s: every generated table is what scripts/docs/reference.ts makes', (page) => {
    // A difference: regenerate (UPDATE_DOCS=1, scripts/docs/reference.ts's header says how).
    for (const r of regionsOf(read(page)))
      expect({ page, key: r.key, table: r.content }).toEqual({
        page,
        key: r.key,
        table: formatted(r.key, page),
      });
  });
});

// --------------------------------------------------------------------------- metrics

interface Family {
  type: string;
  /** Label name -> the values seen. */
  labels: Map<string, Set<string>>;
}

/** Families of a Prometheus text page: `# TYPE` lines, and the labels their samples carry. */
function families(page: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const [, name, type] of page.matchAll(/^# TYPE (\S+) (\S+)$/gm))
    out.set(name!, { type: type!, labels: new Map() });
  for (const line of page.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (!m) continue;
    const name = m[1]!;
    const fam = out.get(name) ?? out.get(name.replace(/_(bucket|sum|count)$/, '')) ?? undefined;
    if (!fam) throw new Error(`sample ${name} has no # TYPE`);
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      if (k === 'le') continue;
      if (!fam.labels.has(k!)) fam.labels.set(k!, new Set());
      fam.labels.get(k!)!.add(v!);
    }
  }
  return out;
}

interface Documented {
  name: string;
  type: string;
  /** Label -> fixed values, or 'open'. */
  labels: Map<string, string[] | 'open'>;
}

/** The metric tables of a page (header `metric | type | labels | meaning`), as written. */
function documentedMetrics(page: string): Documented[] {
  return tableRows(page, 'metric').map(([name, type, labels]) => ({
    name: ticked(name!)[0]!,
    type: type!,
    labels: new Map(
      (labels ?? '')
        .split(';')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          const [label, values] = [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)];
          const fixed = ticked(values);
          return [ticked(label)[0]!, fixed.length > 0 && /^\s*`/.test(values) ? fixed : 'open'];
        }),
    ),
  }));
}

describe('metrics: the docs against the live /metrics of the real programs', () => {
  let live: Map<string, Family>;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    const c = await startTestController({});
    const running: { node?: RunningNode } = {};
    stop = async () => {
      await running.node?.stop();
      await c.controller.stop();
    };
    const node = (running.node = await startNode(
      loadNodeConfig({
        NODE_CURRENCY_PAIRS: 'USD_HKD,EUR_USD',
        NODE_CONTROLLER_ADDR: c.address,
        METRICS_ADDR: '127.0.0.1:0',
        NODE_PRICE_INTERVAL_MS: '50',
      }),
      { logger: silentLogger(), defaultMetrics: false },
    ));
    await waitFor('the node streaming both pairs', () => node.streamingPairs().length === 2);
    await waitFor('a price from the node', async () => {
      const v = await c.metric('currency_controller_price_updates_total', { pair: 'USD_HKD' });
      return v !== undefined && v > 0;
    });
    // A CLI command, so that the per-command series exist.
    expect((await runInProcess(['--controller', c.address, 'controller', 'version'])).code).toBe(0);
    const scrape = async (port: number | undefined) =>
      (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    live = new Map([
      ...families(await scrape(c.controller.httpPort)),
      ...families(await scrape(node.httpPort)),
    ]);
  });
  afterAll(() => stop?.());

  const reference = () => [
    ...documentedMetrics('docs/observability.md'),
    ...documentedMetrics('deploy/observability/README.md'),
  ];

  test('docs/observability.md lists every metric family the programs export, and no other', () => {
    const documented = documentedMetrics('docs/observability.md').map((m) => m.name);
    expect(documented.length).toBe(new Set(documented).size);
    expect([...documented].sort()).toEqual([...live.keys()].sort());
  });

  test('each documented family has its real type and label names', () => {
    for (const d of reference()) {
      const fam = live.get(d.name);
      expect({ name: d.name, exported: fam !== undefined }).toEqual({
        name: d.name,
        exported: true,
      });
      expect({ name: d.name, type: d.type }).toEqual({ name: d.name, type: fam!.type });
      // A family with no series yet (a histogram nobody observed) shows no labels to compare.
      if (fam!.labels.size > 0)
        expect({ name: d.name, labels: [...d.labels.keys()].sort() }).toEqual({
          name: d.name,
          labels: [...fam!.labels.keys()].sort(),
        });
    }
  });

  test('each fixed label set (reasons, outcomes, peers) is the one the programs create', () => {
    const onUse = new Map(METRICS.map((m) => [m.name, new Set(m.onUse ?? [])]));
    for (const d of reference())
      for (const [label, values] of d.labels) {
        if (values === 'open') continue;
        const seen = [...(live.get(d.name)?.labels.get(label) ?? [])].sort();
        if (onUse.get(d.name)?.has(label)) {
          // Created on first use: what the programs showed must be documented.
          expect({
            name: d.name,
            label,
            undocumented: seen.filter((v) => !values.includes(v)),
          }).toEqual({ name: d.name, label, undocumented: [] });
        } else {
          expect({ name: d.name, label, values: [...values].sort() }).toEqual({
            name: d.name,
            label,
            values: seen,
          });
        }
      }
  });

  test('every metric name written in README.md, docs/ and deploy/ is one the programs export', () => {
    const wrong: string[] = [];
    for (const page of markdownPages())
      for (const [name] of read(page).matchAll(/\bcurrency_(?:controller|node)_[a-z_]+/g)) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        if (!live.has(family)) wrong.push(`${page}: ${name}`);
      }
    expect(wrong).toEqual([]);
  });

  test('a list of reasons or outcomes written in prose, e.g. "(closed, lost, kicked)", is the whole set', () => {
    const sets = METRICS.flatMap((m) =>
      Object.entries(m.labels).flatMap(([label, v]) =>
        Array.isArray(v) && v.length >= 3 ? [{ name: `${m.name}{${label}}`, values: v }] : [],
      ),
    );
    const partial: string[] = [];
    for (const page of markdownPages())
      for (const [, inside] of read(page)
        .replaceAll('`', '')
        .matchAll(/\(([^()]*)\)/g))
        for (const part of inside!.split(';')) {
          const items = part
            .trim()
            .split(/,\s*(?:or\s+|and\s+)?/)
            .map((i) => i.trim());
          if (items.length < 3 || !items.every((i) => /^[a-z_]+$/.test(i))) continue;
          for (const set of sets)
            if (items.every((i) => set.values.includes(i)) && items.length < set.values.length)
              partial.push(
                `${page}: (${part.trim()}) leaves out ${set.values.filter((v) => !items.includes(v)).join(', ')} of ${set.name}`,
              );
        }
    expect(partial).toEqual([]);
  });

  test('every label value written as metric{label="value"} in the docs exists', () => {
    const wrong: string[] = [];
    for (const page of markdownPages())
      for (const [whole, name, label, value] of read(page).matchAll(
        /\b(currency_(?:controller|node)_[a-z_]+)\{(\w+)="([^"]+)"\}/g,
      )) {
        const doc = METRICS.find((m) => m.name === name);
        const values = doc?.labels[label!];
        if (!Array.isArray(values) || !values.includes(value!)) wrong.push(`${page}: ${whole}`);
      }
    expect(wrong).toEqual([]);
  });
});

// ------------------------------------------------------------------------- variables

/** Every variable `load` reads from an environment (reads past a ConfigError are lost). */
function variablesRead(load: (env: Env) => unknown, base: Record<string, string>): string[] {
  const seen = new Set<string>();
  const env = new Proxy(base, {
    get: (target, key) => {
      if (typeof key === 'string') seen.add(key);
      return target[key as string];
    },
  });
  try {
    load(env);
  } catch {
    // A refused configuration still shows what was read up to the refusal.
  }
  return [...seen];
}

const UPSTREAM_HTTP = {
  NODE_CURRENCY_PAIRS: 'USD_HKD',
  NODE_UPSTREAM: 'http',
  NODE_UPSTREAM_URL: 'http://127.0.0.1:1/{symbol}',
  NODE_UPSTREAM_PRICE_PATH: 'price',
};

async function readers(): Promise<Map<string, Set<Program>>> {
  const byProgram: [Program, string[]][] = [
    [
      'controller',
      [
        ...variablesRead(loadControllerConfig, {}),
        ...variablesRead(loadControllerConfig, { CONTROLLER_FOLLOW_ADDR: '127.0.0.1:1' }),
        ...variablesRead(loadControllerConfig, { CONTROLLER_LEADER_ELECTION: 'kubernetes' }),
        ...variablesRead((e) => loadLeaderElectionConfig(e, { podNamespace: () => undefined }), {}),
      ],
    ],
    [
      'node',
      [
        ...variablesRead(loadNodeConfig, { NODE_CURRENCY_PAIRS: 'USD_HKD' }),
        ...variablesRead(loadNodeConfig, UPSTREAM_HTTP),
        ...variablesRead(loadNodeConfig, {
          ...UPSTREAM_HTTP,
          NODE_UPSTREAM: 'websocket',
          NODE_UPSTREAM_URL: 'ws://127.0.0.1:1/',
          NODE_UPSTREAM_SYMBOL_PATH: 's',
        }),
      ],
    ],
    ['market', variablesRead(loadMarketConfig, {})],
    ['demo', [...read('services/demo/main.ts').matchAll(/'(DEMO_[A-Z_]+)'/g)].map((m) => m[1]!)],
  ];
  // The CLI reads its variables when it runs a command: one against no controller.
  const cliRead = new Set<string>();
  const env = new Proxy({ CLI_CONTROLLER_ADDR: '127.0.0.1:1' } as Env, {
    get: (target, key) => {
      if (typeof key === 'string') cliRead.add(key);
      return target[key as string];
    },
  });
  // NO_COLOR is read only for a terminal
  await runInProcess(['--timeout', '0.2', 'controller', 'version'], { tty: true, env });
  byProgram.push(['cli', [...cliRead]]);
  // Tracing: each program whose main.ts starts telemetry (its otel.ts) reads OTEL_*.
  for (const [program, names] of byProgram)
    if (
      ['controller', 'node', 'cli', 'market'].includes(program) &&
      /from '\.\/otel'/.test(read(`services/${program}/main.ts`))
    )
      names.push(...variablesRead((e) => tracingRequested(e), {}));

  const out = new Map<string, Set<Program>>();
  for (const [program, names] of byProgram)
    for (const raw of names) {
      const name = raw.startsWith('OTEL_') ? 'OTEL_*' : raw;
      if (!out.has(name)) out.set(name, new Set());
      out.get(name)!.add(program);
    }
  return out;
}

describe('variables: the docs against what the programs read', () => {
  let read_: Map<string, Set<Program>>;
  beforeAll(async () => {
    read_ = await readers();
  });

  /** docs/configuration.md's variable tables: name -> [read by, default]. */
  const documented = () =>
    new Map(
      tableRows('docs/configuration.md', 'variable').map(([name, by, dflt]) => [
        ticked(name!)[0]!,
        { programs: by!.split(',').map((p) => p.trim()), default: dflt! },
      ]),
    );

  test('docs/configuration.md lists every variable a program reads, and no other', () => {
    expect([...documented().keys()].sort()).toEqual([...read_.keys()].sort());
  });

  test('with the programs that read it', () => {
    for (const [name, d] of documented())
      expect({ name, programs: [...d.programs].sort() }).toEqual({
        name,
        programs: [...(read_.get(name) ?? [])].sort(),
      });
  });

  test('the defaults --help shows, and every variable --help lists', () => {
    const docs = documented();
    const help: [string, { name: string; default?: string }[]][] = [
      ['controller', controllerVariables()],
      ['node', nodeVariables()],
      ['market', marketVariables()],
    ];
    for (const [program, vars] of help)
      for (const v of vars) {
        const d = docs.get(v.name);
        expect({ program, name: v.name, documented: d !== undefined }).toEqual({
          program,
          name: v.name,
          documented: true,
        });
        // NODE_NAME's default is this machine's host name: the docs say "host name".
        if (v.default !== undefined && v.name !== 'NODE_NAME')
          expect({ name: v.name, default: d!.default }).toEqual({
            name: v.name,
            default: `\`${v.default}\``,
          });
      }
  });

  test('docs/upstreams.md documents the same NODE_UPSTREAM_* variables', () => {
    const upstreams = tableRows('docs/upstreams.md', 'Variable').map(([n]) => ticked(n!)[0]!);
    expect(upstreams.sort()).toEqual(
      VARIABLES.filter((v) => v.section === 'upstream')
        .map((v) => v.name)
        .sort(),
    );
  });

  test('what CONTROLLER_MAX_NODES counts: --help says what the docs say and the code enforces', () => {
    // services/controller/registry.ts counts every open node stream, registered or not.
    const help = controllerVariables().find((v) => v.name === 'CONTROLLER_MAX_NODES')!;
    const doc = VARIABLES.find((v) => v.name === 'CONTROLLER_MAX_NODES')!;
    expect(help.meaning).toMatch(/node streams open at once, registered or not/);
    expect(doc.meaning).toMatch(/node streams open at once, registered or not/);
  });

  test("--help's pointer to the details names a page that documents every variable it lists", () => {
    // The controller's --help as the program prints it (stdout and exit held here).
    let out = '';
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(((
      text: string | Uint8Array,
      done?: unknown,
    ) => {
      out += String(text);
      if (typeof done === 'function') (done as () => void)();
      return true;
    }) as never);
    const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      handleProgramFlags({
        program: 'currency-controller',
        description: '',
        variables: controllerVariables,
        argv: ['--help'],
      });
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
    const [, page] = /Details: (docs\/[a-z-]+\.md)/.exec(out) ?? [];
    expect(page).toBe('docs/configuration.md');
    const names = new Set(documented().keys());
    for (const v of [...controllerVariables(), ...nodeVariables()])
      expect({ v: v.name, documented: names.has(v.name) }).toEqual({ v: v.name, documented: true });
  });
});

test('every page the docs link to exists', () => {
  const broken: string[] = [];
  for (const page of markdownPages()) {
    const dir = join(ROOT, page, '..');
    for (const [, target] of read(page).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      try {
        statSync(join(dir, target!));
      } catch {
        broken.push(`${page} -> ${relative(ROOT, join(dir, target!))}`);
      }
    }
  }
  expect(broken).toEqual([]);
});
