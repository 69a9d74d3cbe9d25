/** Wrong configuration stops each program at start with exit 2 and a message naming the variable. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram } from '../support/processes';

jest.setTimeout(30_000);

// Kubeconfig files the controller must refuse at start (leader election on Kubernetes).
const kubeDir = mkdtempSync(join(tmpdir(), 'config-errors-kube-'));
const kubeconfig = (name: string, text: string) => {
  writeFileSync(join(kubeDir, name), text);
  return join(kubeDir, name);
};
const cluster = (server: string) =>
  'apiVersion: v1\nkind: Config\ncurrent-context: c\n' +
  `clusters: [{name: c, cluster: {server: '${server}'}}]\n` +
  'contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n';
const leader = (env: Record<string, string>) => ({
  CONTROLLER_LEADER_ELECTION: 'kubernetes',
  CONTROLLER_LISTEN_ADDR: '127.0.0.1:0',
  METRICS_ADDR: '127.0.0.1:0',
  HOME: kubeDir, // no ~/.kube/config
  ...env,
});

const cases: [string, 'controller' | 'node' | 'cli', Record<string, string>, string[], string][] = [
  ['a pair like usd-hkd', 'node', { NODE_CURRENCY_PAIRS: 'usd-hkd' }, [], 'NODE_CURRENCY_PAIRS'],
  ['no pairs at all', 'node', {}, [], 'NODE_CURRENCY_PAIRS'],
  [
    'a NODE_UUID that is not a UUID',
    'node',
    { NODE_CURRENCY_PAIRS: 'USD_HKD', NODE_UUID: 'node-1' },
    [],
    'NODE_UUID',
  ],
  [
    'MIN > MAX in the price interval',
    'node',
    { NODE_CURRENCY_PAIRS: 'USD_HKD', NODE_PRICE_INTERVAL_MS: '900-100' },
    [],
    'NODE_PRICE_INTERVAL_MS',
  ],
  [
    'a NODE_NAME with a tab (a control character)',
    'node',
    { NODE_CURRENCY_PAIRS: 'USD_HKD', NODE_NAME: 'edge\t1' },
    [],
    'NODE_NAME',
  ],
  [
    'a controller address with a port out of range',
    'node',
    { NODE_CURRENCY_PAIRS: 'USD_HKD', NODE_CONTROLLER_ADDR: 'localhost:70000' },
    [],
    'NODE_CONTROLLER_ADDR',
  ],
  [
    'a listen port out of range',
    'controller',
    { CONTROLLER_LISTEN_ADDR: '0.0.0.0:65536' },
    [],
    'CONTROLLER_LISTEN_ADDR',
  ],
  [
    'zero streams per pair',
    'controller',
    { CONTROLLER_STREAMS_PER_PAIR: '0' },
    [],
    'CONTROLLER_STREAMS_PER_PAIR',
  ],
  [
    'a metrics address that is not HOST:PORT',
    'controller',
    { METRICS_ADDR: 'nine-four-six-four' },
    [],
    'METRICS_ADDR',
  ],
  ['an unknown log level', 'controller', { LOG_LEVEL: 'loud' }, [], 'LOG_LEVEL'],
  [
    'a KUBECONFIG that does not exist',
    'controller',
    leader({ KUBECONFIG: join(kubeDir, 'missing.yaml') }),
    [],
    'KUBECONFIG',
  ],
  [
    'a KUBECONFIG that is not YAML',
    'controller',
    leader({ KUBECONFIG: kubeconfig('broken.yaml', 'clusters: [oops\n  : :') }),
    [],
    'KUBECONFIG',
  ],
  [
    'a bad CLI_CONTROLLER_ADDR',
    'cli',
    { CLI_CONTROLLER_ADDR: 'nowhere' },
    ['controller', 'nodes'],
    'CLI_CONTROLLER_ADDR',
  ],
  ['a bad --timeout', 'cli', {}, ['--timeout', 'soon', 'controller', 'nodes'], '--timeout'],
  [
    'a --timeout beyond what a timer can wait (it used to overflow into "unreachable")',
    'cli',
    {},
    ['--timeout', '3000000', 'controller', 'nodes'],
    '--timeout',
  ],
  [
    'a --timeout in exponent form',
    'cli',
    {},
    ['--timeout', '1e3', 'controller', 'nodes'],
    '--timeout',
  ],
  ['a blank --node-uuid', 'cli', {}, ['node', 'status', '--node-uuid', ' '], '--node-uuid'],
];

test.each(cases)('%s exits 2 naming it (%s)', async (_what, role, env, args, named) => {
  const r = await runProgram(role, args, env);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(named);
  expect(r.stdout).toBe('');
});

// What the Kubernetes client finds inside a kubeconfig is known only once it loads it, after
// the controller's ports are open (its start-up lines are logged): still exit 2, never serving.
test.each<[string, Record<string, string>]>([
  [
    'a KUBECONFIG with no cluster',
    leader({
      KUBECONFIG: kubeconfig('empty.yaml', 'apiVersion: v1\nkind: Config\nclusters: []\n'),
    }),
  ],
  [
    'a KUBECONFIG with a plain-HTTP server the client refuses (no insecure-skip-tls-verify)',
    leader({ KUBECONFIG: kubeconfig('http.yaml', cluster('http://127.0.0.1:1')) }),
  ],
  ['no KUBECONFIG, outside a pod, and no ~/.kube/config', leader({})],
])('%s stops the controller with exit 2 naming KUBECONFIG', async (_what, env) => {
  const r = await runProgram('controller', [], env);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('invalid configuration: KUBECONFIG: ');
  expect(r.stdout).not.toContain('controller serving');
});

test('the CLI exits 3 when the controller cannot be reached', async () => {
  const r = await runProgram('cli', [
    '--controller',
    '127.0.0.1:1',
    '--timeout',
    '1',
    'controller',
    'nodes',
  ]);
  expect(r.code).toBe(3);
  expect(r.stderr).toContain('could not reach the controller at 127.0.0.1:1');
});
