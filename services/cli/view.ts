/**
 * A listing command's result as data (rows with a stable identity), printed once, or
 * polled with -w/--watch: redrawn on change on a terminal, printed as changes on a pipe.
 */
import { styleText } from 'node:util';
import { EXIT } from '../shared/program';
import type { CommandEnv } from './command';
import { shown } from './format';
import { pollWithHandover } from './handover';
import { json, table } from './io';

export interface Row {
  /** Identity across polls (a node UUID, a pair). */
  key: string;
  cells: string[];
  /** What counts as a change (cells without the ever-growing AGE). */
  stable: string;
  /** Shown in colour on a terminal. */
  tone?: 'bad' | 'warn';
}

export interface View {
  json: unknown;
  headers: string[];
  rows: Row[];
  /** A summary for stderr (human output only). */
  note?: string;
  /** Exit code when printed once (e.g. `streams --check`). */
  exit?: number;
}

export type ViewResult = { ok: true; view: View } | { ok: false; problem: string };

const TONE = { bad: 'red', warn: 'yellow' } as const;

function render(env: CommandEnv, v: View): string {
  const text = table(
    v.headers,
    v.rows.map((r) => r.cells),
  );
  if (!env.opts.colour) return text;
  const lines = text.split('\n');
  v.rows.forEach((r, i) => {
    if (r.tone) lines[i + 1] = styleText(TONE[r.tone], lines[i + 1]!, { validateStream: false });
  });
  return lines.join('\n');
}

export function printView(env: CommandEnv, label: string, r: ViewResult): number {
  if (!r.ok) {
    env.io.err(`${label}: ${shown(r.problem)}\n`);
    return EXIT.FAILED;
  }
  if (env.opts.json) env.io.out(json(r.view.json));
  else {
    env.io.out(render(env, r.view));
    if (r.view.note) env.io.err(r.view.note);
  }
  return r.view.exit ?? EXIT.OK;
}

/**
 * Polls `fetch` every `intervalMs` until interrupted (exit 0) or a fetch fails (exit 1);
 * a controller handover is followed (handover.ts: reconnect, stderr says so, carry on).
 * Terminal: clears and redraws on change. Pipe: the first table, then one line per row
 * that appeared, changed or went. --json: one JSON document per line, on change.
 */
export async function pollView(
  env: CommandEnv,
  label: string,
  intervalMs: number,
  fetch: () => Promise<ViewResult>,
): Promise<number> {
  const { io, opts } = env;
  let last: Map<string, Row> | undefined;
  const poll = async (): Promise<ViewResult> => {
    const r = await fetch();
    if (!r.ok || io.signal.aborted) return r;
    const now = new Map(r.view.rows.map((x) => [x.key, x]));
    const changed =
      !last ||
      last.size !== now.size ||
      [...now].some(([k, x]) => last!.get(k)?.stable !== x.stable);
    if (changed) {
      if (opts.json) io.out(JSON.stringify(r.view.json) + '\n');
      else if (io.tty)
        io.out(
          `\x1b[H\x1b[2J${render(env, r.view)}\nevery ${intervalMs / 1000} s; Ctrl-C to stop\n`,
        );
      else if (!last) io.out(render(env, r.view));
      else {
        const at = new Date(env.scheduler.now()).toISOString();
        const line = (x: Row) => x.cells.map(shown).join('  ');
        for (const [k, x] of now) {
          const before = last.get(k);
          if (before?.stable !== x.stable)
            io.out(`${at}  ${before ? 'CHANGED' : 'ADDED'}  ${line(x)}\n`);
        }
        for (const [k, x] of last) if (!now.has(k)) io.out(`${at}  GONE  ${line(x)}\n`);
      }
    }
    last = now;
    return r;
  };
  return pollWithHandover(env, label, intervalMs, poll, () => last !== undefined);
}
