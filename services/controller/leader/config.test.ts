import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config';
import { loadLeaderElectionConfig, readPodNamespace } from './config';
import { alwaysLeader, createLeaderElector } from './index';

const deps = { podNamespace: () => undefined, hostname: () => 'host-1' };

function problem(env: Record<string, string>, d = deps): ConfigError {
  try {
    loadLeaderElectionConfig(env, d);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadLeaderElectionConfig', () => {
  test('defaults: off, the contract\'s lease name, namespace "default", host name, 3000/2000/500', () => {
    expect(loadLeaderElectionConfig({}, deps)).toEqual({
      mode: 'off',
      leaseName: 'currency-controller',
      leaseNamespace: 'default',
      identity: 'host-1',
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 500,
    });
  });

  test('every variable is read', () => {
    expect(
      loadLeaderElectionConfig(
        {
          CONTROLLER_LEADER_ELECTION: 'kubernetes',
          CONTROLLER_LEASE_NAME: 'fx.controller',
          CONTROLLER_LEASE_NAMESPACE: 'prices',
          CONTROLLER_LEADER_IDENTITY: 'cn-controller-7d9f-abcde',
          CONTROLLER_LEASE_DURATION_MS: '15000',
          CONTROLLER_LEASE_RENEW_DEADLINE_MS: '10000',
          CONTROLLER_LEASE_RETRY_PERIOD_MS: '2000',
        },
        deps,
      ),
    ).toEqual({
      mode: 'kubernetes',
      leaseName: 'fx.controller',
      leaseNamespace: 'prices',
      identity: 'cn-controller-7d9f-abcde',
      leaseDurationMs: 15000,
      renewDeadlineMs: 10000,
      retryPeriodMs: 2000,
    });
  });

  test("the namespace falls back to the pod's (service account file), and the variable wins", () => {
    const inPod = { ...deps, podNamespace: () => 'from-pod' };
    expect(loadLeaderElectionConfig({}, inPod).leaseNamespace).toBe('from-pod');
    expect(
      loadLeaderElectionConfig({ CONTROLLER_LEASE_NAMESPACE: 'explicit' }, inPod).leaseNamespace,
    ).toBe('explicit');
  });

  test('readPodNamespace reads and trims the file, and is undefined without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'leader-ns-'));
    try {
      writeFileSync(join(dir, 'namespace'), 'prices\n');
      expect(readPodNamespace(join(dir, 'namespace'))).toBe('prices');
      expect(readPodNamespace(join(dir, 'missing'))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a short lease keeps the default deadline and retry below it', () => {
    const c = loadLeaderElectionConfig({ CONTROLLER_LEASE_DURATION_MS: '1000' }, deps);
    expect([c.leaseDurationMs, c.renewDeadlineMs, c.retryPeriodMs]).toEqual([1000, 999, 500]);
  });

  test.each<[Record<string, string>, string, RegExp]>([
    [{ CONTROLLER_LEADER_ELECTION: 'etcd' }, 'CONTROLLER_LEADER_ELECTION', /"off" or "kubernetes"/],
    [{ CONTROLLER_LEASE_NAME: 'Bad_Name' }, 'CONTROLLER_LEASE_NAME', /DNS subdomain/],
    [{ CONTROLLER_LEASE_NAMESPACE: 'a.b' }, 'CONTROLLER_LEASE_NAMESPACE', /DNS label/],
    [{ CONTROLLER_LEADER_IDENTITY: 'a b' }, 'CONTROLLER_LEADER_IDENTITY', /white space/],
    [{ CONTROLLER_LEASE_DURATION_MS: '0x10' }, 'CONTROLLER_LEASE_DURATION_MS', /decimal digits/],
    [{ CONTROLLER_LEASE_DURATION_MS: '999' }, 'CONTROLLER_LEASE_DURATION_MS', /at least 1000/],
    [
      { CONTROLLER_LEASE_RENEW_DEADLINE_MS: '3000' },
      'CONTROLLER_LEASE_RENEW_DEADLINE_MS',
      /3000 must be less than CONTROLLER_LEASE_DURATION_MS \(3000\)/,
    ],
    [
      { CONTROLLER_LEASE_RETRY_PERIOD_MS: '2000' },
      'CONTROLLER_LEASE_RETRY_PERIOD_MS',
      /2000 must be less than CONTROLLER_LEASE_RENEW_DEADLINE_MS \(2000\)/,
    ],
    [
      { CONTROLLER_LEASE_RETRY_PERIOD_MS: '0' },
      'CONTROLLER_LEASE_RETRY_PERIOD_MS',
      /greater than 0/,
    ],
  ])('%j is refused naming %s', (env, variable, message) => {
    const err = problem(env);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(message);
  });

  test('a bad host name as the default identity is refused naming the variable', () => {
    expect(problem({}, { ...deps, hostname: () => '' }).variable).toBe(
      'CONTROLLER_LEADER_IDENTITY',
    );
  });
});

describe('KUBECONFIG, with CONTROLLER_LEADER_ELECTION=kubernetes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'leader-kubeconfig-'));
    writeFileSync(join(dir, 'good'), 'apiVersion: v1\nkind: Config\nclusters: []\n');
    writeFileSync(join(dir, 'broken'), 'clusters: [oops\n  : :');
    writeFileSync(join(dir, 'scalar'), 'just some text\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const k8s = (kubeconfig: string) => ({
    CONTROLLER_LEADER_ELECTION: 'kubernetes',
    KUBECONFIG: kubeconfig,
  });

  test('readable YAML files are taken, a list of them too', () => {
    expect(loadLeaderElectionConfig(k8s(join(dir, 'good')), deps).mode).toBe('kubernetes');
    const list = [join(dir, 'good'), join(dir, 'good')].join(':');
    expect(loadLeaderElectionConfig(k8s(list), deps).mode).toBe('kubernetes');
  });

  test.each([
    ['a file that does not exist', 'missing', /missing.*cannot be read \(ENOENT\)/],
    ['a file that is not YAML', 'broken', /broken.*is not valid YAML/],
    ['YAML that is not a kubeconfig', 'scalar', /scalar.*is not a kubeconfig/],
  ])('%s is refused naming KUBECONFIG', (_what, file, message) => {
    const err = problem(k8s(join(dir, file)));
    expect(err.variable).toBe('KUBECONFIG');
    expect(err.message).toMatch(message);
  });

  test('one bad file in a list is named', () => {
    const err = problem(k8s([join(dir, 'good'), join(dir, 'missing')].join(':')));
    expect(err.variable).toBe('KUBECONFIG');
    expect(err.message).toContain(join(dir, 'missing'));
  });

  test('with election off it is not looked at', () => {
    expect(loadLeaderElectionConfig({ KUBECONFIG: join(dir, 'missing') }, deps).mode).toBe('off');
  });
});

describe('createLeaderElector with election off', () => {
  test('always leads, says so once at start, and never loads the Kubernetes client', async () => {
    const changes: [boolean, string | undefined][] = [];
    const e = await createLeaderElector(loadLeaderElectionConfig({}, deps), {
      onChange: (leading, leader) => changes.push([leading, leader]),
    });
    expect(e.isLeader()).toBe(true);
    e.start();
    e.start();
    expect(changes).toEqual([[true, 'host-1']]);
    expect(e.leader()).toBe('host-1');
    await e.stop();
    expect(e.isLeader()).toBe(true);
    expect(alwaysLeader('x').leader()).toBe('x');
  });
});
