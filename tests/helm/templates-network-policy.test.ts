/**
 * Template unit tests (`helm template`). The NetworkPolicy: who reaches the controller,
 * the nodes and the CLI.
 */
import { join } from 'node:path';
import { CONTROLLER } from './template-fixtures';
import { CHART, type K8sObject, one, render } from './support';

jest.setTimeout(60_000);

describe('NetworkPolicy', () => {
  test('only this release’s pods reach the controller; the monitoring namespace reaches 9464', () => {
    const objs = render({ valuesFiles: [join(CHART, 'ci', 'hardened-values.yaml')] });
    const ctl = one(objs, 'NetworkPolicy', CONTROLLER);
    expect(ctl.spec.podSelector.matchLabels).toEqual(
      one(objs, 'Deployment', CONTROLLER).spec.selector.matchLabels,
    );
    expect(ctl.spec.policyTypes).toEqual(['Ingress']);
    expect(ctl.spec.ingress).toHaveLength(2);
    expect(ctl.spec.ingress[0].from).toEqual([
      {
        podSelector: {
          matchLabels: {
            'app.kubernetes.io/name': 'currency-nodes',
            'app.kubernetes.io/instance': 'cn',
          },
        },
      },
    ]);
    expect(ctl.spec.ingress[0].ports.map((p: K8sObject) => p.port)).toEqual(['grpc', 'metrics']);
    expect(ctl.spec.ingress[1].from[0].namespaceSelector.matchLabels).toEqual({
      'kubernetes.io/metadata.name': 'monitoring',
    });
    expect(ctl.spec.ingress[1].ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
    const workers = one(objs, 'NetworkPolicy', 'cn-currency-nodes-workers');
    expect(workers.spec.ingress).toHaveLength(1);
    expect(workers.spec.ingress[0].ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
  });

  test('without monitoring peers the nodes and the CLI take no ingress at all', () => {
    const objs = render({ values: { networkPolicy: { enabled: true } } });
    expect(one(objs, 'NetworkPolicy', 'cn-currency-nodes-workers').spec.ingress).toEqual([]);
    expect(one(objs, 'NetworkPolicy', CONTROLLER).spec.ingress).toHaveLength(1);
  });
});
