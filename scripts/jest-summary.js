// Prints the closing line CI reads, "N passed, N failed", from jest's --json output.
const { readFileSync, existsSync } = require('node:fs');

const file = process.argv[2];
if (!file || !existsSync(file)) {
  console.log('0 passed, 1 failed');
  console.error(`no jest results at ${file}: jest did not run to the end`);
  process.exit(0);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
// The tier of a test file, from where it lives (see jest.config.js).
const tierOf = (path) =>
  path.includes('/tests-e2e/')
    ? 'e2e'
    : path.includes('/tests/k8s/')
      ? 'k8s'
      : path.includes('/tests/helm/')
        ? 'helm'
        : path.includes('/tests/integration/')
          ? 'integration'
          : 'unit';
const byProject = new Map();
for (const suite of r.testResults) {
  const project = tierOf(suite.name);
  const p = byProject.get(project) ?? { passed: 0, failed: 0, skipped: 0 };
  for (const t of suite.assertionResults) {
    if (t.status === 'passed') p.passed++;
    else if (t.status === 'failed') p.failed++;
    else p.skipped++;
  }
  if (suite.status === 'failed' && suite.assertionResults.length === 0) p.failed++; // a file that failed to load
  byProject.set(project, p);
}
for (const [name, p] of byProject)
  console.log(`  ${name}: ${p.passed} passed, ${p.failed} failed, ${p.skipped} skipped`);
const failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
