/**
 * Teardown that fails on leaks: compares the process's active handles (timers, sockets,
 * servers) after a test file's teardown with those before it started.
 */
const WATCHED = new Set([
  'Timeout',
  'TCPSocketWrap',
  'TCPServerWrap',
  'Immediate',
  'PipeWrap',
  'ProcessWrap',
]);

export function activeHandleCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (WATCHED.has(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

/** Waits (bounded) for handles to drain back to `baseline`; throws naming what is left. */
export async function expectNoLeaks(
  baseline: Map<string, number>,
  timeoutMs = 3000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let extra: string[] = [];
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    const now = activeHandleCounts();
    extra = [...now]
      .filter(([k, v]) => v > (baseline.get(k) ?? 0))
      .map(([k, v]) => `${k} x${v - (baseline.get(k) ?? 0)}`);
    if (extra.length === 0) return;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error(`leaked handles after teardown: ${extra.join(', ')}`);
}
