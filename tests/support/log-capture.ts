/** A logger whose JSON lines are kept, parsed, for tests that read back what was logged. */
import { Writable } from 'node:stream';
import { type Logger, createLogger } from '../../services/shared/logger';

/** Lines go into `into` (a new array by default), one parsed object per JSON line. */
export function capturingLogger<L = Record<string, unknown>>(
  level: string,
  { into = [], service = 'currency-node' }: { into?: L[]; service?: string } = {},
): { logger: Logger; lines: L[] } {
  const logger = createLogger({
    service,
    level,
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) into.push(JSON.parse(l) as L);
        done();
      },
    }),
  });
  return { logger, lines: into };
}
