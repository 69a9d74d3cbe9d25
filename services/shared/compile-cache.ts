// Imported first by every program: Node's on-disk compile cache (Node >= 22.1) cuts
// start-up, most of which is loading modules. Where the cache folder cannot be written
// (a read-only filesystem without a writable tmp), Node simply runs without it.
import * as nodeModule from 'node:module';

const m = nodeModule as { enableCompileCache?: () => unknown };
m.enableCompileCache?.();
