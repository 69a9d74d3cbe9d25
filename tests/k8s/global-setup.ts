/**
 * The k8s project's globalSetup: the clusters a killed earlier run left up are taken down
 * (`Cluster.downAbandoned`), then a directory for this jest run's shared clusters
 * (`Cluster.shared` in tests/k8s/cluster.ts), with this process's pid in it, is named in the
 * environment the test files (in this process, or in workers started after this) inherit.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, OWNER_FILE, RUN_DIR_PREFIX, SHARED_DIR_ENV } from './cluster';

export default function globalSetup(): void {
  Cluster.downAbandoned();
  const dir = mkdtempSync(join(tmpdir(), RUN_DIR_PREFIX));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  process.env[SHARED_DIR_ENV] = dir;
}
