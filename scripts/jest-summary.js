// Prints the closing line CI reads, "N passed, N failed", from jest's --json output: one
// file per jest process (scripts/test-all.sh runs the tiers in lanes); a missing file
// counts as a failure.
const { readFileSync, existsSync } = require('node:fs');

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: jest-summary.js RESULTS.json [RESULTS.json ...]');
  process.exit(2);
}
// The tier of a test file, from where it lives (see jest.config.js).
const tierOf = (path) =>
  path.includes('/tests-e2e/')
    ? 'e2e'
    : path.includes('/tests/k8s/')
      ? 'k8s'
      : path.includes('/tests/helm/')
        ? 'helm'
        : path.includes('/tests/interop/')
          ? 'interop'
          : path.includes('/tests/integration/')
            ? 'integration'
            : 'unit';
const byProject = new Map();
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  if (!existsSync(file)) {
    failed++;
    console.error(`no jest results at ${file}: jest did not run to the end`);
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
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
  passed += r.numPassedTests;
  failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  skipped += r.numPendingTests + r.numTodoTests;
}
for (const [name, p] of byProject)
  console.log(`  ${name}: ${p.passed} passed, ${p.failed} failed, ${p.skipped} skipped`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
