/**
 * Template unit tests (`helm template`). Node groups: one Deployment and
 * PodDisruptionBudget per group, overrides, scaling, spread.
 */
import { container, THREE_GROUPS } from './template-fixtures';
import { type K8sObject, byKind, env, one, render } from './support';

jest.setTimeout(60_000);

describe('node groups', () => {
  let objs: K8sObject[];
  beforeAll(() => {
    objs = render({ values: THREE_GROUPS });
  });

  test('three groups make three Deployments with their own pairs and replicas (0 allowed)', () => {
    const want: Record<string, [number, string]> = {
      fx: [3, 'USD_HKD,EUR_USD'],
      crypto: [2, 'BTC_USD,EUR_USD'],
      asia: [0, 'USD_JPY'],
    };
    for (const [g, [replicas, pairs]] of Object.entries(want)) {
      const d = one(objs, 'Deployment', `cn-currency-nodes-node-${g}`);
      expect(d.spec.replicas).toBe(replicas);
      expect(env(container(d), 'NODE_CURRENCY_PAIRS')).toBe(pairs);
    }
    expect(
      byKind(objs, 'Deployment').filter(
        (d) => d.metadata.labels['app.kubernetes.io/component'] === 'node',
      ),
    ).toHaveLength(3);
  });

  test('a group overrides the node defaults for itself only', () => {
    const fx = container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx'));
    const crypto = container(one(objs, 'Deployment', 'cn-currency-nodes-node-crypto'));
    const asiaD = one(objs, 'Deployment', 'cn-currency-nodes-node-asia');
    const asia = container(asiaD);
    expect(env(fx, 'NODE_PRICE_INTERVAL_MS')).toBe('2000-10000');
    expect(env(crypto, 'NODE_PRICE_INTERVAL_MS')).toBe('500');
    expect(env(fx, 'NODE_UUID')).toEqual({ fieldRef: { fieldPath: 'metadata.uid' } });
    expect(env(asia, 'NODE_UUID')).toBeUndefined();
    expect(asia.image).toBe('currency-nodes/node:9.9.9');
    expect(fx.image).toBe('currency-nodes/node:0.1.0');
    expect(asiaD.spec.template.spec.nodeSelector).toEqual({
      'topology.kubernetes.io/region': 'ap',
    });
    expect(
      one(objs, 'Deployment', 'cn-currency-nodes-node-fx').spec.template.spec.nodeSelector,
    ).toBeUndefined();
    // A group's resources stay the defaults unless it sets its own.
    expect(asia.resources).toEqual(fx.resources);
  });

  test('minAvailable in a group replaces the default maxUnavailable in its PodDisruptionBudget', () => {
    const asia = one(objs, 'PodDisruptionBudget', 'cn-currency-nodes-node-asia');
    expect(asia.spec).toMatchObject({ minAvailable: 1 });
    expect(asia.spec.maxUnavailable).toBeUndefined();
    expect(one(objs, 'PodDisruptionBudget', 'cn-currency-nodes-node-fx').spec.maxUnavailable).toBe(
      1,
    );
  });

  test('a group without a PodDisruptionBudget gets none', () => {
    const o = render({
      values: {
        nodeGroups: [{ name: 'solo', replicas: 1, pairs: ['A_B'], pdb: { enabled: false } }],
      },
    });
    expect(byKind(o, 'PodDisruptionBudget')).toEqual([]);
    expect(byKind(o, 'Deployment').map((d) => d.metadata.name)).toContain(
      'cn-currency-nodes-node-solo',
    );
  });

  test('scaling a group with --set changes only its replicas', () => {
    const o = render({ set: ['nodeGroups[0].replicas=7'], values: THREE_GROUPS });
    // --set on a list element merges into the list given in values.
    expect(one(o, 'Deployment', 'cn-currency-nodes-node-fx').spec.replicas).toBe(7);
    expect(one(o, 'Deployment', 'cn-currency-nodes-node-crypto').spec.replicas).toBe(2);
  });

  test('topology spread constraints get the group’s own selector', () => {
    const o = render({
      values: {
        ...THREE_GROUPS,
        node: {
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
            },
          ],
        },
      },
    });
    const d = one(o, 'Deployment', 'cn-currency-nodes-node-crypto');
    expect(d.spec.template.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: d.spec.selector.matchLabels },
      },
    ]);
  });
});
