/**
 * What the docs say about the chart's objects, against the chart as rendered: the Lease the
 * runbook tells an operator to look at is the one the chart's controllers use.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type K8sObject, ROOT, render } from './support';

/** A container's variable, as a plain value. */
function envValue(c: K8sObject, name: string): unknown {
  return (c.env as K8sObject[]).find((e) => e.name === name)?.value;
}

test.each([
  ['cn', 'default'],
  ['prices-currency-nodes', 'fx'],
])(
  "docs/runbook.md's `get lease` names the Lease the chart's controllers use (release %s)",
  (release, namespace) => {
    const objs = render({ release, namespace, set: ['controller.replicas=2'] });
    const deployment = objs.find(
      (o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-controller'),
    )!;
    const container = (deployment.spec.template.spec.containers as K8sObject[])[0]!;
    const lease = envValue(container, 'CONTROLLER_LEASE_NAME');
    expect(typeof lease).toBe('string');

    const runbook = readFileSync(join(ROOT, 'docs', 'runbook.md'), 'utf8');
    const section = runbook.slice(runbook.indexOf('## CurrencyNoLeader'));
    const commands = [...section.matchAll(/`(kubectl [^`]*get lease [^`]*)`/g)].map((m) => m[1]!);
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      // RELEASE and NAMESPACE are the runbook's placeholders. The chart's names are
      // <release>-currency-nodes-..., or <release>-... when the release already says so.
      const named = command
        .replaceAll('RELEASE-currency-nodes', deployment.metadata.name.replace(/-controller$/, ''))
        .replaceAll('NAMESPACE', namespace);
      const [, name] = /get lease (\S+)/.exec(named)!;
      expect({ command, lease: name }).toEqual({ command, lease });
    }
  },
);
