/** What the template tests (tests/helm/templates-*.test.ts) share: names, accessors, values. */
import type { K8sObject } from './support';

/** The objects of a release named `cn` (support.ts renders with that name). */
export const CONTROLLER = 'cn-currency-nodes-controller';
export const CLI = 'cn-currency-nodes-cli';

export const container = (d: K8sObject, i = 0): K8sObject => d.spec.template.spec.containers[i];
export const podAnnotations = (d: K8sObject): Record<string, string> =>
  d.spec.template.metadata.annotations ?? {};

/** Three node groups, one of them scaled to 0 and overriding the node defaults. */
export const THREE_GROUPS = {
  nodeGroups: [
    { name: 'fx', replicas: 3, pairs: ['USD_HKD', 'EUR_USD'] },
    { name: 'crypto', replicas: 2, pairs: ['BTC_USD', 'EUR_USD'], priceIntervalMs: 500 },
    {
      name: 'asia',
      replicas: 0,
      pairs: ['USD_JPY'],
      uuidFromPodUID: false,
      pdb: { minAvailable: 1 },
      image: { tag: '9.9.9' },
      nodeSelector: { 'topology.kubernetes.io/region': 'ap' },
    },
  ],
};
