/** Every figure of `npm run bench`, in the order they run (opt-in ones only with `--only`). */
import type { Figure } from '../lib/types';
import * as controllerRestart from './controller-restart';
import * as failover from './failover';
import * as imageStartup from './image-startup';
import * as ingest from './ingest';
import * as leaderFailover from './leader-failover';
import * as reassignCurve from './reassign-curve';
import * as scale from './scale';
import * as silent from './silent';
import * as silentController from './silent-controller';
import * as startup from './startup';
import * as upstreamFailover from './upstream-failover';
import * as upstreamNodeLoad from './upstream-node-load';
import * as watchLatency from './watch-latency';

export const FIGURES: Figure[] = [
  failover,
  silent,
  silentController,
  controllerRestart,
  ingest,
  watchLatency,
  scale,
  reassignCurve,
  startup,
  upstreamFailover,
  upstreamNodeLoad,
  imageStartup,
  leaderFailover,
];
