/**
 * controller.reflection -> CONTROLLER_REFLECTION (gRPC server reflection, docs/interop.md):
 * on by default, off-able, and only a boolean is accepted.
 */
import { type K8sObject, env, one, render, renderRaw } from './support';

jest.setTimeout(60_000);

const CONTROLLER = 'cn-currency-nodes-controller';
const controllerContainer = (objs: K8sObject[]): K8sObject =>
  one(objs, 'Deployment', CONTROLLER).spec.template.spec.containers[0];

test('reflection is on by default', () => {
  expect(env(controllerContainer(render()), 'CONTROLLER_REFLECTION')).toBe('on');
});

test('controller.reflection=false turns it off', () => {
  const objs = render({ values: { controller: { reflection: false } } });
  expect(env(controllerContainer(objs), 'CONTROLLER_REFLECTION')).toBe('off');
});

test('controller.reflection must be a boolean', () => {
  const r = renderRaw({ values: { controller: { reflection: 'off' } } });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/\/controller\/reflection/);
  expect(r.stderr).toMatch(/got string, want boolean/);
});
