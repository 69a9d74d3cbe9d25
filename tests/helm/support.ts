/**
 * Runs the pinned `helm` and `k8s-validate` built by scripts/setup/helm.sh (npm run
 * setup:helm) against the chart, and parses what they print.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = resolve(__dirname, '..', '..');
export const CHART = join(ROOT, 'deploy', 'helm', 'currency-nodes');

const BIN = join(
  process.env.CURRENCY_NODES_CACHE ?? join(homedir(), '.cache', 'currency-nodes'),
  'bin',
);

function tool(name: string, envVar: string): string {
  const p = process.env[envVar] ?? join(BIN, name);
  if (!existsSync(p)) {
    throw new Error(`${p} not found: run \`npm run setup:helm\` first (or set ${envVar})`);
  }
  return p;
}

export const helmBin = (): string => tool('helm', 'HELM_BIN');
export const validatorBin = (): string => tool('k8s-validate', 'K8S_VALIDATE_BIN');

/** The prometheus-operator kinds, as `--api-versions` tells helm the cluster serves them. */
export const MONITORING_API_VERSIONS = [
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
];

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string): Run {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function helm(args: string[]): Run {
  return run(helmBin(), args);
}

// Kubernetes objects are loosely typed here on purpose: the tests navigate them by path.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = Record<string, any>;

export interface RenderOptions {
  release?: string;
  namespace?: string;
  values?: unknown; // a values document, written as JSON (valid YAML) to stdin
  valuesFiles?: string[];
  set?: string[];
  apiVersions?: string[];
  showOnly?: string;
}

function renderArgs(o: RenderOptions, chart = CHART): string[] {
  const args = ['template', o.release ?? 'cn', chart, '--namespace', o.namespace ?? 'default'];
  for (const f of o.valuesFiles ?? []) args.push('--values', f);
  if (o.values !== undefined) args.push('--values', '-');
  for (const s of o.set ?? []) args.push('--set', s);
  for (const a of o.apiVersions ?? []) args.push('--api-versions', a);
  if (o.showOnly) args.push('--show-only', o.showOnly);
  return args;
}

/** `helm template`, raw. */
export function renderRaw(o: RenderOptions = {}): Run {
  const input = o.values === undefined ? undefined : JSON.stringify(o.values);
  return run(helmBin(), renderArgs(o), input);
}

/** `helm template`, parsed into objects; throws with helm's message if it fails. */
export function render(o: RenderOptions = {}): K8sObject[] {
  const r = renderRaw(o);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}):\n${r.stderr}`);
  return parseManifests(r.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]}`);
    const v = doc.toJS() as K8sObject | null;
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

/**
 * The NOTES.txt helm prints after an install. `helm install --dry-run` needs a cluster, and
 * `helm template` does not render NOTES; so a throw-away copy of the chart gets one more
 * template that includes templates/NOTES.txt (every template file is also a named
 * template) into a ConfigMap, and that is rendered with the given options.
 */
export function renderNotes(o: RenderOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'currency-nodes-notes-'));
  try {
    const chart = join(dir, 'currency-nodes');
    cpSync(CHART, chart, { recursive: true });
    const wrapper = 'templates/zz-notes-under-test.yaml';
    writeFileSync(
      join(chart, wrapper),
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: notes-under-test',
        'data:',
        '  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | toJson }}',
        '',
      ].join('\n'),
    );
    const input = o.values === undefined ? undefined : JSON.stringify(o.values);
    const r = run(helmBin(), [...renderArgs(o, chart), '--show-only', wrapper], input);
    if (r.status !== 0) throw new Error(`helm template (NOTES) failed (${r.status}):\n${r.stderr}`);
    const [cm] = parseManifests(r.stdout);
    return cm.data.notes as string;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function byKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}

export function one(objs: K8sObject[], kind: string, name: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && o.metadata?.name === name);
  if (found.length !== 1) {
    const have = objs.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ');
    throw new Error(`expected one ${kind}/${name}, found ${found.length} among: ${have}`);
  }
  return found[0];
}

/** The value of env var `name` of a container: its `value`, or its `valueFrom`. */
export function env(container: K8sObject, name: string): unknown {
  const e = ((container.env ?? []) as K8sObject[]).filter((x) => x.name === name);
  if (e.length > 1) throw new Error(`env ${name} set ${e.length} times`);
  if (e.length === 0) return undefined;
  return e[0].valueFrom ?? e[0].value;
}

/** The ci/*-values.yaml variants of the chart. */
export function ciValuesFiles(): string[] {
  return readdirSync(join(CHART, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
    .map((f) => join(CHART, 'ci', f));
}
