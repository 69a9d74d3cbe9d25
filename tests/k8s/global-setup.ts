/**
 * The k8s project's globalSetup: a directory for this jest run's shared clusters
 * (`Cluster.shared` in tests/k8s/cluster.ts), named in the environment the test files (in
 * this process, or in workers started after this) inherit.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_DIR_ENV } from './cluster';

export default function globalSetup(): void {
  process.env[SHARED_DIR_ENV] = mkdtempSync(join(tmpdir(), 'cn-k8s-run-'));
}
