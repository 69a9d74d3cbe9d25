/**
 * Template unit tests (`helm template`). NOTES.txt: what `helm install` prints.
 */
import { CLI } from './template-fixtures';
import { MONITORING_API_VERSIONS, renderNotes } from './support';

jest.setTimeout(60_000);

describe('NOTES.txt', () => {
  test('prints the exact kubectl exec command for the release', () => {
    const notes = renderNotes();
    expect(notes.split('\n').map((l) => l.trim())).toContain(
      `kubectl exec deploy/${CLI} -- currency-cli controller nodes`,
    );
    expect(notes).toContain('helm test cn');
    expect(notes).toContain('NOTE: the cluster does not serve monitoring.coreos.com/v1');
  });

  test('names the namespace when the release is not in "default", and follows the release name', () => {
    const notes = renderNotes({ release: 'prices', namespace: 'fx' });
    expect(notes.split('\n').map((l) => l.trim())).toContain(
      'kubectl --namespace fx exec deploy/prices-currency-nodes-cli -- currency-cli controller nodes',
    );
  });

  test('no CRD warning when the monitoring CRDs are served', () => {
    expect(renderNotes({ apiVersions: MONITORING_API_VERSIONS })).not.toContain('does not serve');
  });
});
