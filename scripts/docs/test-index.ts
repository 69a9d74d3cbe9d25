/**
 * The module-to-test index of docs/testing.md ("Where the test for X is"): for every module
 * under services/ (generated code aside), the unit test beside it, or why it has none, and
 * the test files of the other tiers that reach it. Made from the tree, so it cannot drift:
 * the page holds it between `<!-- BEGIN GENERATED: tests:index ... -->` markers
 * (scripts/docs/render.ts), tests/integration/docs-reference.test.ts fails when page and
 * tree differ, and UPDATE_DOCS=1 rewrites it (scripts/docs/reference.ts's header says how).
 *
 * A new module without a `x.test.ts` beside it needs its reason in NO_UNIT_TEST, or the
 * index cannot be made.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Why a module has no unit test beside it (services/-relative path -> reason). */
export const NO_UNIT_TEST: Readonly<Record<string, string>> = {
  'controller/core/node-side/assignment-change.ts':
    'types of what an assignment step changed: `assignment.test.ts`',
  'demo/main.ts': 'entry point: run as a program (`npm run demo`)',
  'shared/protocol.ts': 'names and constants of the protocol, no logic',
  'controller/controller.ts': 'gRPC server wiring: integration',
  'controller/help.ts': '`--help` text: integration',
  'controller/leader/elect-main.ts': 'entry point: k8s tier',
  'controller/leader/follower.ts': 'follows a leader over gRPC: integration, k8s',
  'controller/leader/index.ts': 'picks the elector by CONTROLLER_LEADER_ELECTION: integration, k8s',
  'controller/leader/kube-lease-api.ts': 'Kubernetes API client: k8s tier',
  'controller/leader/lease-api.ts': 'an interface',
  'controller/main.ts': 'entry point: run as a program',
  'controller/otel.ts': 'one line: starts telemetry',
  'market/config.ts': 'read through `main.ts`: integration',
  'market/context.ts': 'types and constants',
  'market/http-routes.ts': 'HTTP server (node:http): integration',
  'market/main.ts': 'entry point: run as a program',
  'market/server.ts': 'starts and closes the servers: integration',
  'market/ws-stream.ts': 'WebSocket server (ws): integration',
  'node/help.ts': '`--help` text: integration',
  'node/main.ts': 'entry point: run as a program',
  'node/metrics.ts': 'metric definitions, no logic',
  'node/otel.ts': 'one line: starts telemetry',
  'node/upstream/http-fetch.ts': 'one HTTP request (undici): integration against a local feed',
  'node/upstream/http.ts': 'HTTP client (undici): integration against a local feed',
  'node/upstream/index.ts': 'picks the upstream from the config',
  'node/upstream/types.ts': 'types and constants',
  'node/upstream/websocket.ts': 'WebSocket client: integration against a local feed',
  'cli/command.ts': 'types',
  'cli/commands/controller-version.ts': 'one request, printed: integration',
  'cli/commands/node-shutdown.ts': 'one line of output over `node-command.ts`: integration',
  'cli/commands/watch.ts': 'through `session.test.ts` (watch) and integration',
  'cli/handover.ts': 'reconnects across a controller handover: integration',
  'cli/main.ts': 'entry point: run as a program',
  'cli/otel.ts': 'one line: starts telemetry',
  'cli/program.ts': 'through `cli.test.ts` (the commander program)',
  'shared/compile-cache.ts': 'one line',
  'shared/grpc-options.ts': 'channel options, constants',
  'shared/http-server.ts': 'an HTTP server: integration',
  'shared/logger.ts': 'pino set-up',
  'shared/program.ts': 'exit codes and signal handling: integration',
  'shared/scheduler.ts': 'the fake scheduler stands in for it in unit tests',
  'shared/telemetry.ts': 'OpenTelemetry SDK set-up: integration (tracing)',
  'shared/time.ts': 'timestamp conversions, used by most unit tests',
  'shared/tokens.ts': 'through `auth.test.ts`',
  'shared/version.ts': 'reads package.json',
  'shared/wire.ts': 'gRPC definitions: integration (fuzz)',
};

/** The test trees of the other tiers (jest.config.js), and the helpers they share. */
const TEST_DIRS = ['tests', 'tests-e2e'];
/** How many test files a row lists before it counts the rest. */
const LISTED = 6;

function walk(root: string, dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = `${dir}/${name}`;
    if (statSync(join(root, rel)).isDirectory()) {
      if (name !== 'gen' && name !== 'node_modules') walk(root, rel, out);
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The root-relative files a source file imports (relative specifiers only), without extension. */
function importsOf(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)'(\.{1,2}\/[^']+)'/g))
    out.push(relative(root, resolve(root, dirname(file), m[1]!)).replace(/\.(ts|js)$/, ''));
  return out;
}

/** The programs a test file runs as child processes (`dist/services/<program>/main.js`). */
function programsRun(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [
    ...text.matchAll(/services['/, ]+'?(controller|node|cli|market|demo)'?[/, ]+'?main\.js/g),
  ].map((m) => `services/${m[1]}/main.ts`);
}

export interface IndexRow {
  /** services/-relative. */
  module: string;
  /** The unit test beside it (file name), or undefined with `why`. */
  beside?: string;
  why?: string;
  /** Root-relative test files of the other tiers that import it (directly or through a helper in their tree) or run its program. */
  others: string[];
  /** Root-relative test files of the other tiers with a test or describe name that names it (its file name, words apart). */
  byName: string[];
}

/** File names too common to find a module by in test names. */
const GENERIC = new Set(['index', 'main', 'config', 'types', 'help', 'metrics', 'otel', 'context']);

/** The test and describe names of a test file, lower case. */
function testNames(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [
    ...text.matchAll(/\b(?:test|it|describe)(?:\.each\([^)]*\))?\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g),
  ].map((m) => m[2]!.toLowerCase());
}

/** One row per module under services/, in path order; throws for a module with neither test nor reason. */
export function testIndex(root: string): IndexRow[] {
  const services = walk(root, 'services');
  const has = new Set(services);
  const rows = new Map<string, IndexRow>();
  for (const m of services.filter((f) => !f.endsWith('.test.ts'))) {
    const module = m.slice('services/'.length);
    const beside = m.replace(/\.ts$/, '.test.ts');
    const why = NO_UNIT_TEST[module];
    if (!has.has(beside) && why === undefined)
      throw new Error(
        `services/${module} has no unit test beside it and no reason in NO_UNIT_TEST (scripts/docs/test-index.ts)`,
      );
    rows.set(m.replace(/\.ts$/, ''), {
      module,
      beside: has.has(beside) ? beside.slice(beside.lastIndexOf('/') + 1) : undefined,
      why: has.has(beside) ? undefined : why,
      others: [],
      byName: [],
    });
  }
  for (const module of Object.keys(NO_UNIT_TEST))
    if (!rows.has(`services/${module.replace(/\.ts$/, '')}`))
      throw new Error(`NO_UNIT_TEST names services/${module}, which does not exist`);
  const files = TEST_DIRS.flatMap((d) => walk(root, d));
  const reach = new Map<string, Set<string>>(); // file (no extension) -> services modules it reaches
  const reached = (file: string, seen = new Set<string>()): Set<string> => {
    const key = file.replace(/\.ts$/, '');
    const known = reach.get(key);
    if (known) return known;
    const out = new Set<string>(programsRun(root, `${key}.ts`).map((p) => p.replace(/\.ts$/, '')));
    seen.add(key);
    for (const target of importsOf(root, `${key}.ts`)) {
      const t = rows.has(target)
        ? target
        : rows.has(`${target}/index`)
          ? `${target}/index`
          : undefined;
      if (t) out.add(t);
      else if (!seen.has(target) && files.includes(`${target}.ts`) && !target.endsWith('.test'))
        for (const x of reached(`${target}.ts`, seen)) out.add(x);
    }
    reach.set(key, out);
    return out;
  };
  for (const t of files.filter((f) => f.endsWith('.test.ts'))) {
    const found = reached(t);
    for (const m of found) rows.get(m)!.others.push(t);
    const names = testNames(root, t);
    for (const [path, row] of rows) {
      const words = path.slice(path.lastIndexOf('/') + 1).replace(/-/g, ' ');
      if (found.has(path) || GENERIC.has(words) || words.length < 5) continue;
      if (names.some((n) => n.includes(words))) row.byName.push(t);
    }
  }
  return [...rows.values()];
}

/** The index as a markdown table, links written from the repository root. */
export function testIndexTable(root: string): string {
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const header = [
    'module (`services/`)',
    'unit test beside it',
    'other tiers: tests that import it or run its program',
  ];
  const lines = testIndex(root).map((r) => {
    const list = (files: string[]) =>
      files
        .slice(0, LISTED)
        .map((t) => `\`${t.replace(/^tests\//, '')}\``)
        .join(', ') + (files.length > LISTED ? ` (+${files.length - LISTED} more)` : '');
    const cell = [
      r.others.length > 0 ? list(r.others) : '',
      r.byName.length > 0 ? `by test name: ${list(r.byName)}` : '',
    ]
      .filter((c) => c !== '')
      .join('; ');
    return row([
      `\`${r.module}\``,
      r.beside ? `\`${r.beside}\`` : `none: ${r.why}`,
      cell === '' ? '-' : cell,
    ]);
  });
  return [row(header), row(header.map(() => '---')), ...lines].join('\n') + '\n';
}
