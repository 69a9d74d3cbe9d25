/**
 * `controller nodes`: connected nodes with their known and streaming pairs, and their AGE.
 *
 * Printed as the pages of the list arrive (nodes.ts `eachNode`), so that the CLI holds one
 * page and what it is printing, however big the fleet: --json writes its array item by
 * item (`[`, the items, `]`: the same document as printing it whole), the table writes
 * its rows page by page, and a stdout that is read slowly holds the listing back
 * (`io.drained`) instead of the output piling up. The table's columns are as wide as the
 * widest cell so far: a listing of one page (up to 1 MiB: hundreds of nodes with many
 * pairs, thousands with few) is aligned exactly as a whole table.
 *
 * -w polls the same way: per node only a digest of what it showed (and its name) is kept
 * between polls. On a pipe, ADDED and CHANGED lines are printed as the rows arrive and
 * GONE lines (UUID and name) at the end; on a terminal and with --json, where a change
 * means printing everything, a poll that found a change lists again to print.
 */
import { createHash } from 'node:crypto';
import { EXIT } from '../../shared/program';
import type { Command, CommandEnv } from '../command';
import { age, isoOrNull, shown } from '../format';
import { pollWithHandover } from '../handover';
import { type KnownNode, type NodeListing, eachNode } from '../nodes';

export interface NodesArgs {
  /** Poll every `intervalMs` until interrupted. */
  watch?: boolean;
  intervalMs: number;
}

const LABEL = 'controller nodes';
const HEADERS = ['UUID', 'NAME', 'KNOWN PAIRS', 'STREAMING', 'AGE'];

interface NodeRow {
  node: KnownNode;
  cells: string[];
  /** What counts as a change (the cells without the ever-growing AGE). */
  digest: string;
}

function rowOf(n: KnownNode, now: number): NodeRow {
  const cells = [
    n.nodeUuid,
    n.name,
    n.knownCurrencyPairs.join(',') || '-',
    n.streamingCurrencyPairs.join(',') || '-',
  ];
  const stable = JSON.stringify([...cells, n.connectedAt]);
  return {
    node: n,
    cells: [...cells, age(n.connectedAt, now)],
    digest: createHash('sha1').update(stable).digest('base64'),
  };
}

const jsonOf = (n: KnownNode) => ({ ...n, connectedAt: isoOrNull(n.connectedAt) });

/**
 * Aligned columns written a page at a time: the header with the first page, each column
 * as wide as its widest cell so far (so a later page may widen, never narrow, a column).
 * Cells from the wire are shown escaped, as in io.ts `table`.
 */
class TableWriter {
  private widths?: number[];

  constructor(private readonly out: (t: string) => void) {}

  rows(cellRows: string[][]): void {
    const rows = cellRows.map((r) => r.map(shown));
    const widths = HEADERS.map((h, i) => this.widths?.[i] ?? h.length);
    for (const r of rows)
      r.forEach((c, i) => {
        if (c.length > widths[i]!) widths[i] = c.length;
      });
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd() + '\n';
    const head = this.widths ? '' : line(HEADERS);
    this.widths = widths;
    this.out(head + rows.map(line).join(''));
  }

  /** After the last page: a listing of no nodes still has its header. */
  end(): void {
    if (!this.widths) this.rows([]);
  }
}

/**
 * A JSON array written an item at a time: `pretty` exactly as JSON.stringify(array, null,
 * 2) + newline (io.ts `json`) would print it whole, else as JSON.stringify(array) + newline.
 */
class JsonArrayWriter {
  private count = 0;

  constructor(
    private readonly out: (t: string) => void,
    private readonly pretty: boolean,
  ) {}

  items(items: unknown[]): void {
    let text = '';
    for (const item of items) {
      const open = this.count++ === 0 ? '[' : ',';
      text += this.pretty
        ? `${open}\n  ${JSON.stringify(item, null, 2).replace(/\n/g, '\n  ')}`
        : `${open}${JSON.stringify(item)}`;
    }
    if (text !== '') this.out(text);
  }

  end(): void {
    this.out(this.count === 0 ? '[]\n' : this.pretty ? '\n]\n' : ']\n');
  }
}

/** Lists the nodes as rows, page by page; `onRows` may hold the listing back (a promise). */
function listRows(
  env: CommandEnv,
  onRows: (rows: NodeRow[]) => void | Promise<void>,
): Promise<NodeListing> {
  const now = env.scheduler.now();
  return eachNode(env.session, (page) => onRows(page.map((n) => rowOf(n, now))));
}

/** Prints what was just written out of the way of a slow reader, if the output says so. */
const drained = (env: CommandEnv) => env.io.drained?.();

/** One listing printed: --json's document, or the table with its count on stderr. */
async function printOnce(env: CommandEnv): Promise<number> {
  const { io, opts } = env;
  const json = new JsonArrayWriter(io.out, true);
  const table = new TableWriter(io.out);
  const r = await eachNode(env.session, (page) => {
    if (opts.json) json.items(page.map(jsonOf));
    else {
      const now = env.scheduler.now();
      table.rows(page.map((n) => rowOf(n, now).cells));
    }
    return drained(env);
  });
  if (!r.ok) {
    // What was printed stays; a --json document cut short does not parse, on purpose.
    io.err(`${LABEL}: ${shown(r.problem)}\n`);
    return EXIT.FAILED;
  }
  if (opts.json) json.end();
  else {
    table.end();
    io.err(`${r.count} node(s) connected\n`);
  }
  return EXIT.OK;
}

/** Per node between polls: the digest of its row and, for a GONE line, its name. */
type Seen = Map<string, { digest: string; name: string }>;

/**
 * -w: polls every `intervalMs` until interrupted (exit 0) or a listing fails (exit 1); a
 * controller handover is followed (handover.ts). Terminal: clears and redraws on change.
 * Pipe: the first table, then one line per node that appeared, changed or went. --json:
 * one JSON document per line, on change.
 */
async function watchNodes(env: CommandEnv, intervalMs: number): Promise<number> {
  const { io, opts } = env;
  let last: Seen | undefined;

  /** Prints a whole listing (a screen, a JSON line or the first table) and what it showed. */
  const printAll = async (): Promise<{ r: NodeListing; seen: Seen }> => {
    const seen: Seen = new Map();
    const json = new JsonArrayWriter(io.out, false);
    const table = new TableWriter(io.out);
    let started = false;
    const r = await listRows(env, (rows) => {
      if (!started && io.tty && !opts.json) io.out('\x1b[H\x1b[2J');
      started = true;
      for (const x of rows) seen.set(x.node.nodeUuid, { digest: x.digest, name: x.node.name });
      if (opts.json) json.items(rows.map((x) => jsonOf(x.node)));
      else table.rows(rows.map((x) => x.cells));
      return drained(env);
    });
    if (!r.ok) {
      // A JSON line cut short ends here, so that the lines after it stay whole.
      if (opts.json && started) io.out('\n');
      return { r, seen };
    }
    if (opts.json) json.end();
    else {
      if (!started && io.tty) io.out('\x1b[H\x1b[2J');
      table.end();
      if (io.tty) io.out(`\nevery ${intervalMs / 1000} s; Ctrl-C to stop\n`);
    }
    return { r, seen };
  };

  /** Whether the listing differs from `before` (nothing is printed). */
  const changedSince = async (before: Seen): Promise<{ r: NodeListing; changed: boolean }> => {
    let changed = false;
    let count = 0;
    const r = await listRows(env, (rows) => {
      count += rows.length;
      for (const x of rows) if (before.get(x.node.nodeUuid)?.digest !== x.digest) changed = true;
    });
    return { r, changed: changed || count !== before.size };
  };

  /** A pipe: ADDED and CHANGED lines as the rows come, GONE ones at the end. */
  const printChanges = async (before: Seen): Promise<NodeListing> => {
    const listed = new Set<string>();
    let at: string | undefined;
    const line = (what: string, cells: string[]) =>
      `${(at ??= new Date(env.scheduler.now()).toISOString())}  ${what}  ${cells.map(shown).join('  ')}\n`;
    const r = await listRows(env, (rows) => {
      let text = '';
      for (const x of rows) {
        const uuid = x.node.nodeUuid;
        listed.add(uuid);
        const was = before.get(uuid);
        if (was?.digest !== x.digest) text += line(was ? 'CHANGED' : 'ADDED', x.cells);
        // Kept at once: a listing cut short does not print these changes again.
        before.set(uuid, { digest: x.digest, name: x.node.name });
      }
      if (text === '') return;
      io.out(text);
      return drained(env);
    });
    if (!r.ok) return r;
    let text = '';
    for (const [uuid, was] of before)
      if (!listed.has(uuid)) {
        text += line('GONE', [uuid, was.name]);
        before.delete(uuid);
      }
    if (text !== '') io.out(text);
    return r;
  };

  const poll = async (): Promise<NodeListing> => {
    let r: NodeListing;
    if (!last) {
      const all = await printAll();
      r = all.r;
      if (r.ok) last = all.seen;
    } else if (!io.tty && !opts.json) {
      r = await printChanges(last);
    } else {
      const c = await changedSince(last);
      r = c.r;
      if (r.ok && c.changed) {
        const all = await printAll();
        r = all.r;
        if (r.ok) last = all.seen;
      }
    }
    return r;
  };
  return pollWithHandover(env, LABEL, intervalMs, poll, () => last !== undefined);
}

/** `controller nodes`: connected nodes with their known and streaming pairs, and their AGE. */
export const controllerNodes: Command<NodesArgs> = (env, args) =>
  args.watch ? watchNodes(env, args.intervalMs) : printOnce(env);
