/**
 * The docs' generated tables, made from scripts/docs/reference.ts. A page holds a table
 * between
 *
 *   <!-- BEGIN GENERATED: metrics:controller (scripts/docs/reference.ts) -->
 *   <!-- END GENERATED: metrics:controller -->
 *
 * where the key names what goes there: `metrics:controller`, `metrics:node`,
 * `metrics:upstream` (the upstream rows of both programs), `variables:<section>`, or
 * `tests:index` (the module-to-test index of docs/testing.md, scripts/docs/test-index.ts).
 * tests/integration/docs-reference.test.ts checks every region against this renderer, and
 * rewrites them with UPDATE_DOCS=1.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { METRICS, type MetricDoc, VARIABLES, type VariableSection } from './reference';
import { testIndexTable } from './test-index';

export const ROOT = join(__dirname, '..', '..');

const BEGIN = /<!-- BEGIN GENERATED: ([a-z:]+) [^>]*-->\n/g;
const end = (key: string) => `<!-- END GENERATED: ${key} -->`;

export interface Region {
  key: string;
  /** Offsets of the content between the markers. */
  start: number;
  stop: number;
  content: string;
}

/** The generated regions of a page, in order; a BEGIN without its END throws. */
export function regionsOf(text: string): Region[] {
  const out: Region[] = [];
  for (const m of text.matchAll(BEGIN)) {
    const key = m[1]!;
    const start = m.index + m[0].length;
    const stop = text.indexOf(end(key), start);
    if (stop < 0) throw new Error(`<!-- BEGIN GENERATED: ${key} --> has no ${end(key)}`);
    out.push({ key, start, stop, content: text.slice(start, stop) });
  }
  return out;
}

/** Links written from the repository root, made relative to `page` (a root-relative path). */
function relink(markdown: string, page: string): string {
  return markdown.replace(
    /\]\(((?:docs|deploy|services|tests)\/[^)#]*)(#[^)]*)?\)/g,
    (_m, p, h) => {
      const rel = relative(dirname(join(ROOT, page)), join(ROOT, p as string));
      return `](${rel}${(h as string | undefined) ?? ''})`;
    },
  );
}

const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
const code = (s: string) => `\`${s}\``;

function table(header: string[], rows: string[][]): string {
  return [row(header), row(header.map(() => '---')), ...rows.map(row)].join('\n') + '\n';
}

export function labelsCell(m: MetricDoc): string {
  return Object.entries(m.labels)
    .map(([label, values]) =>
      Array.isArray(values)
        ? `${code(label)}: ${values.map(code).join(', ')}`
        : `${code(label)}: ${(values as { open: string }).open}`,
    )
    .join('; ');
}

function metricsTable(metrics: readonly MetricDoc[]): string {
  return table(
    ['metric', 'type', 'labels', 'meaning'],
    metrics.map((m) => [code(m.name), m.type, labelsCell(m), m.meaning]),
  );
}

function variablesTable(section: VariableSection): string {
  const vars = VARIABLES.filter((v) => v.section === section);
  if (vars.length === 0) throw new Error(`no variables in section ${section}`);
  return table(
    ['variable', 'read by', 'default', 'meaning'],
    vars.map((v) => [code(v.name), v.programs.join(', '), v.default, v.meaning]),
  );
}

/** The unformatted markdown for a region key, with links relative to `page`. */
export function render(key: string, page: string): string {
  const [kind, what] = key.split(':');
  let md: string;
  if (kind === 'metrics' && (what === 'controller' || what === 'node'))
    md = metricsTable(METRICS.filter((m) => m.program === what));
  else if (kind === 'metrics' && what === 'upstream')
    md = metricsTable(METRICS.filter((m) => m.upstream));
  else if (kind === 'variables') md = variablesTable(what as VariableSection);
  else if (key === 'tests:index') md = testIndexTable(ROOT);
  else throw new Error(`unknown generated region "${key}" in ${page}`);
  return relink(md, page);
}

/**
 * The region as prettier writes it on `page` (the docs are prettier-formatted): the
 * project's prettier, run as a program (its API is ESM, which jest does not load).
 */
export function formatted(key: string, page: string): string {
  const r = spawnSync(
    process.execPath,
    [require.resolve('prettier/bin/prettier.cjs'), '--stdin-filepath', join(ROOT, page)],
    { input: render(key, page), encoding: 'utf8', cwd: ROOT, timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`prettier failed on ${page} (${key}): ${r.stderr}`);
  // A blank line on either side of the table, between the markers, as prettier keeps them.
  return `\n${r.stdout}\n`;
}

/** Rewrites every generated region of `page`; returns whether anything changed. */
export function updatePage(page: string): boolean {
  const path = join(ROOT, page);
  const text = readFileSync(path, 'utf8');
  let out = '';
  let at = 0;
  for (const r of regionsOf(text)) {
    out += text.slice(at, r.start) + formatted(r.key, page);
    at = r.stop;
  }
  out += text.slice(at);
  if (out === text) return false;
  writeFileSync(path, out);
  return true;
}
