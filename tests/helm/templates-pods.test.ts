/**
 * Template unit tests (`helm template`). What values change in the pods: OpenTelemetry,
 * images, pull secrets, extra env and labels, scheduling, security contexts, hooks and
 * names.
 */
import { CONTROLLER, CLI, container } from './template-fixtures';
import { type K8sObject, byKind, env, one, render } from './support';

jest.setTimeout(60_000);

describe('OpenTelemetry', () => {
  test('otel.enabled sets the OTEL_* variables in every container, with the pod as resource attributes', () => {
    const objs = render({
      values: {
        otel: {
          enabled: true,
          endpoint: 'http://collector:4317',
          resourceAttributes: { 'deployment.environment': 'prod' },
          extraEnv: [{ name: 'OTEL_TRACES_SAMPLER', value: 'always_on' }],
        },
      },
    });
    const deployments = byKind(objs, 'Deployment');
    expect(deployments).toHaveLength(4);
    for (const d of deployments) {
      const c = container(d);
      expect(env(c, 'OTEL_TRACES_EXPORTER')).toBe('otlp');
      expect(env(c, 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBe('http://collector:4317');
      expect(env(c, 'OTEL_EXPORTER_OTLP_PROTOCOL')).toBe('grpc');
      expect(env(c, 'OTEL_TRACES_SAMPLER')).toBe('always_on');
      expect(env(c, 'OTEL_RESOURCE_ATTRIBUTES')).toBe(
        'k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),k8s.node.name=$(K8S_NODE_NAME),deployment.environment=prod',
      );
      // $(VAR) expands only variables defined before it in the list.
      const names = (c.env as K8sObject[]).map((e) => e.name);
      expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    }
  });
});

describe('images and extras', () => {
  test('registry, tag and digest per role; digest wins over tag', () => {
    const objs = render({
      values: {
        image: { registry: 'reg.example.com', tag: '1.2.3' },
        controller: { image: { digest: 'sha256:' + 'a'.repeat(64) } },
        cli: { image: { registry: 'other.example.com', tag: '7' } },
      },
    });
    expect(container(one(objs, 'Deployment', CONTROLLER)).image).toBe(
      'reg.example.com/currency-nodes/controller@sha256:' + 'a'.repeat(64),
    );
    expect(container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx')).image).toBe(
      'reg.example.com/currency-nodes/node:1.2.3',
    );
    expect(container(one(objs, 'Deployment', CLI)).image).toBe(
      'other.example.com/currency-nodes/cli:7',
    );
  });

  test('imagePullSecrets, extraEnv, commonLabels and per-role scheduling reach the pods', () => {
    const objs = render({
      values: {
        imagePullSecrets: [{ name: 'regcred' }],
        extraEnv: [{ name: 'TZ', value: 'UTC' }],
        commonLabels: { team: 'fx' },
        controller: {
          extraEnv: [{ name: 'ONLY_CONTROLLER', value: '1' }],
          tolerations: [{ key: 'k', operator: 'Exists' }],
          affinity: { nodeAffinity: {} },
        },
      },
    });
    for (const d of byKind(objs, 'Deployment')) {
      expect(d.spec.template.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
      expect(env(container(d), 'TZ')).toBe('UTC');
      expect(d.metadata.labels.team).toBe('fx');
      // commonLabels are not part of the (immutable) selector.
      expect(d.spec.selector.matchLabels.team).toBeUndefined();
    }
    const ctl = one(objs, 'Deployment', CONTROLLER);
    expect(env(container(ctl), 'ONLY_CONTROLLER')).toBe('1');
    expect(ctl.spec.template.spec.tolerations).toEqual([{ key: 'k', operator: 'Exists' }]);
    expect(env(container(one(objs, 'Deployment', CLI)), 'ONLY_CONTROLLER')).toBeUndefined();
    expect(one(objs, 'Deployment', CLI).spec.template.spec.tolerations).toBeUndefined();
  });

  test('a role’s security context is merged over the global one', () => {
    const objs = render({ values: { node: { containerSecurityContext: { runAsUser: 2000 } } } });
    const sc = container(one(objs, 'Deployment', 'cn-currency-nodes-node-fx')).securityContext;
    expect(sc.runAsUser).toBe(2000);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(container(one(objs, 'Deployment', CONTROLLER)).securityContext.runAsUser).toBe(1000);
  });

  test('preStopSleepSeconds 0 removes the preStop hook', () => {
    const objs = render({ values: { controller: { preStopSleepSeconds: 0 } } });
    expect(container(one(objs, 'Deployment', CONTROLLER)).lifecycle).toBeUndefined();
  });

  test('cli.enabled=false removes the CLI Deployment', () => {
    const objs = render({ values: { cli: { enabled: false } } });
    expect(byKind(objs, 'Deployment').map((d) => d.metadata.name)).not.toContain(CLI);
  });

  test('names follow the release: fullnameOverride and a release named like the chart', () => {
    expect(
      byKind(render({ values: { fullnameOverride: 'prices' } }), 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['prices-cli', 'prices-controller', 'prices-node-crypto', 'prices-node-fx']);
    const o = render({ release: 'currency-nodes' });
    expect(
      env(container(one(o, 'Deployment', 'currency-nodes-node-fx')), 'NODE_CONTROLLER_ADDR'),
    ).toBe('currency-nodes-controller:5160');
  });
});
