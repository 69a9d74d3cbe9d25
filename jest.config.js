// Tests in tiers: unit (beside the code, fakes only), integration (real gRPC on loopback,
// in-process and child processes), e2e (real images and compose), helm (the chart), k8s
// (a real Kubernetes built from source: scripts/k8s/cluster.sh), interop (stock gRPC peers:
// the Go peer tools/interop-peer and grpcurl, docs/interop.md).
// Type checking is `npm run typecheck`; ts-jest only transpiles here, for speed.
const transform = {
  '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
};
const common = { testEnvironment: 'node', transform, moduleFileExtensions: ['ts', 'js', 'json'] };

/** @type {import('jest').Config} */
module.exports = {
  // The default order, with the one file that retires a shared cluster last.
  testSequencer: '<rootDir>/tests/support/sequencer.js',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/services/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/tests-e2e/**/*.test.ts'] },
    { ...common, displayName: 'helm', testMatch: ['<rootDir>/tests/helm/**/*.test.ts'] },
    {
      ...common,
      displayName: 'k8s',
      testMatch: ['<rootDir>/tests/k8s/**/*.test.ts'],
      // One cluster per stage for the whole run, shared by the files (tests/k8s/cluster.ts).
      globalSetup: '<rootDir>/tests/k8s/global-setup.ts',
      globalTeardown: '<rootDir>/tests/k8s/global-teardown.ts',
    },
    { ...common, displayName: 'interop', testMatch: ['<rootDir>/tests/interop/**/*.test.ts'] },
  ],
};
