/** Health: /healthz, /readyz and grpc.health.v1 (Check and Watch) flip at the right moments. */
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as Status,
  HealthService,
} from '../../services/gen/grpc/health/v1/health';
import { startNode } from '../../services/node/node';
import { silentLogger } from '../../services/shared/logger';
import { startTestController } from '../support/in-process';
import { LeakWatch } from '../support/leaks';
import { httpStatus } from '../support/process-harness';
import { waitFor } from '../support/wait';
import { loopback, testNodeConfig } from '../support/node-config';

jest.setTimeout(30_000);

const HealthClient = grpc.makeGenericClientConstructor(HealthService, 'Health');
type Client = grpc.Client & {
  check(
    req: { service: string },
    cb: (e: grpc.ServiceError | null, r?: HealthCheckResponse) => void,
  ): void;
  watch(req: { service: string }): grpc.ClientReadableStream<HealthCheckResponse>;
};

let leaks: LeakWatch;
beforeAll(() => {
  leaks = new LeakWatch().start();
});
afterAll(async () => {
  await leaks.expectNoLeaks();
});

test('the controller is SERVING on grpc.health.v1 and ready over HTTP, and turns NOT_SERVING as a graceful stop begins', async () => {
  const ctl = await startTestController();
  const client = new HealthClient(
    ctl.address,
    grpc.credentials.createInsecure(),
  ) as unknown as Client;
  const check = (service: string) =>
    new Promise<HealthCheckResponse | grpc.ServiceError>((resolve) =>
      client.check({ service }, (e, r) => resolve(e ?? r!)),
    );

  expect(await check('')).toEqual({ status: Status.SERVING });
  expect(await check('protobuf.NodeCmdStream')).toEqual({ status: Status.SERVING });
  expect(((await check('no.such.Service')) as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
  const base = `http://127.0.0.1:${ctl.controller.httpPort}`;
  expect(await httpStatus(`${base}/healthz`)).toBe(200);
  expect(await httpStatus(`${base}/readyz`)).toBe(200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toContain('# HELP currency_controller_connected_nodes');

  const seen: Status[] = [];
  const watch = client.watch({ service: '' });
  watch.on('data', (r: HealthCheckResponse) => seen.push(r.status));
  watch.on('error', () => {});
  const watchEnded = new Promise<void>((r) => watch.on('status', () => r()));
  await waitFor('first Watch status', () => seen.length === 1);
  expect(seen).toEqual([Status.SERVING]);

  await ctl.controller.stop();
  await watchEnded;
  expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  expect(await httpStatus(`${base}/healthz`)).toBe(0); // gone after the stop
  client.close();
});

test('a node is alive at once, ready only once registered, and unready again when its controller goes', async () => {
  const ctl = await startTestController();
  const node = await startTestNode(1); // nothing listens there yet
  const base = `http://127.0.0.1:${node.httpPort}`;
  expect(await httpStatus(`${base}/healthz`)).toBe(200);
  expect(await httpStatus(`${base}/readyz`)).toBe(503);
  await node.stop();
  await ctl.controller.stop();

  // Against a real controller: ready once registered, unready when the controller stops.
  const ctl2 = await startTestController();
  const node2 = await startTestNode(ctl2.controller.grpcPort);
  const base2 = `http://127.0.0.1:${node2.httpPort}`;
  await waitFor('node ready', async () => (await httpStatus(`${base2}/readyz`)) === 200);
  await ctl2.controller.stop();
  await waitFor('node unready', async () => (await httpStatus(`${base2}/readyz`)) === 503);
  expect(await httpStatus(`${base2}/healthz`)).toBe(200);
  await node2.stop();
});

/** A real node in-process, dialling the controller on `port`, with fast reconnects. */
function startTestNode(port: number) {
  return startNode(
    testNodeConfig({
      controllerAddrs: loopback(port),
      name: 'health-test',
      priceIntervalMs: { minMs: 1000, maxMs: 1000 },
    }),
    { logger: silentLogger(), registry: new Registry(), defaultMetrics: false },
  );
}
