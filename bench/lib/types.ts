import type { Summary } from './stats';

export interface Row {
  /** What was measured, e.g. "kill -> first price from replacement". */
  metric: string;
  unit: string;
  /** The target, in words (benchmarks never fail on it). */
  target?: string;
  summary: Summary;
}

export interface FigureResult {
  name: string;
  title: string;
  rows: Row[];
  notes: string[];
  /** Raw data for plots and for readers (samples, curve points). */
  data?: Record<string, unknown>;
}

export interface BenchContext {
  /** Tiny sizes: every figure still produces its numbers, in seconds. */
  smoke: boolean;
  log(message: string): void;
}

export interface Figure {
  name: string;
  title: string;
  /** Runs only when named in `--only` (it needs something the machine may lack, e.g. Docker). */
  optIn?: boolean;
  run(ctx: BenchContext): Promise<FigureResult>;
}
