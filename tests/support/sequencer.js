// The default order (slowest and failed first), except that tests/integration/leader-cli.test.ts
// runs last: its in-process CLIs leave grpc-js subchannels to stopped controllers backing
// off after the test ends, whose timers the leak checks of later files in the same process
// would count as theirs (a known leak, to be fixed in the CLI's session; see docs/testing.md).
const Sequencer = require('@jest/test-sequencer').default;

const LAST = /tests\/integration\/leader-cli\.test\.ts$/;

class LeakAwareSequencer extends Sequencer {
  sort(tests) {
    const last = (order) => [
      ...order.filter((t) => !LAST.test(t.path)),
      ...order.filter((t) => LAST.test(t.path)),
    ];
    const sorted = super.sort(tests);
    return Array.isArray(sorted) ? last(sorted) : Promise.resolve(sorted).then(last);
  }
}

module.exports = LeakAwareSequencer;
