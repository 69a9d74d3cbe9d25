// The default order (failed and slowest first), except that a file that takes its shared
// Kubernetes cluster down when it ends runs after every other file: tests/k8s/stage2-registry
// retires the stage-2 cluster (tests/k8s/cluster.ts, Cluster.retireShared says why), and any
// stage-2 file after it would start a new cluster (about a minute of the run).
const Sequencer = require('@jest/test-sequencer').default;

const LAST = /tests\/k8s\/stage2-registry\.test\.ts$/;

class ClusterAwareSequencer extends Sequencer {
  sort(tests) {
    const last = (order) => [
      ...order.filter((t) => !LAST.test(t.path)),
      ...order.filter((t) => LAST.test(t.path)),
    ];
    const sorted = super.sort(tests);
    return Array.isArray(sorted) ? last(sorted) : Promise.resolve(sorted).then(last);
  }
}

module.exports = ClusterAwareSequencer;
