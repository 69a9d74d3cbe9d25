/**
 * A tiny program around the elector alone, for tests against a real API server
 * (tests/k8s/leader-elector.test.ts) and for trying the Lease settings by hand:
 *
 *   CONTROLLER_LEADER_ELECTION=kubernetes CONTROLLER_LEADER_IDENTITY=a \
 *     KUBECONFIG=... node dist/services/controller/leader/elect-main.js
 *
 * It reads the same variables as the controller and prints one JSON line per change on
 * stdout: {"event":"change","identity":"a","leading":true,"leader":"a","at":<ms>}, where `at`
 * is the wall-clock time the change took effect. Logs go to stderr. SIGTERM/SIGINT stop
 * leading, release the Lease, print {"event":"stopped",...} and exit 0.
 */
import pino from 'pino';
import { createLogger } from '../../shared/logger';
import { fatal, loadConfigOrExit, onShutdownSignal } from '../../shared/program';
import { logLevelSchema, readVar } from '../../shared/config';
import { createLeaderElector, loadLeaderElectionConfig } from './index';

const PROGRAM = 'currency-leader-elect';

function line(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...fields, at: Date.now() })}\n`);
}

async function main(): Promise<void> {
  const config = loadConfigOrExit(PROGRAM, () => loadLeaderElectionConfig(process.env));
  const level = loadConfigOrExit(PROGRAM, () =>
    readVar(process.env, 'LOG_LEVEL', logLevelSchema, 'info'),
  );
  const logger = createLogger({
    service: PROGRAM,
    level,
    destination: pino.destination({ dest: 2, sync: true }),
  });
  const identity = config.identity;
  const elector = await createLeaderElector(config, {
    logger,
    onChange: (leading, leader) => line({ event: 'change', identity, leading, leader }),
  });
  onShutdownSignal(async () => {
    await elector.stop();
    line({ event: 'stopped', identity });
  });
  line({
    event: 'started',
    identity,
    mode: config.mode,
    lease: `${config.leaseNamespace}/${config.leaseName}`,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
  });
  elector.start();
}

main().catch((err: unknown) => fatal(PROGRAM, err));
