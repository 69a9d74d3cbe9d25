#!/usr/bin/env bash
# The whole test suite: `npm test`, and what CI runs (.ci/run).
#
# 1. Static checks: generated code and dashboards up to date, type check, lint (warnings
#    fail), format.
# 2. Build.
# 3. Install or start what the tiers need (Prometheus, Docker engine and images, helm,
#    an OCI registry, a Kubernetes built from source, grpcurl and the Go interop peer);
#    each setup script fails loudly when it cannot, and never skips a tier silently.
# 4. One jest run over every tier (unit, integration, e2e, helm, k8s, interop), then a closing line
#    "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
started=$(date +%s)

step "static checks"
npm run --silent gen:check
npm run --silent dashboards:check
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check

step "build"
npm run --silent build

step "setup: Prometheus (integration tier)"
bash scripts/setup/prometheus.sh
step "setup: Docker engine, base image, images, compose (e2e tier)"
bash scripts/setup/e2e.sh
step "setup: helm (chart tier)"
bash scripts/setup/helm.sh
step "setup: OCI registry (e2e tier: npm run images/chart -- --push)"
bash scripts/setup/registry.sh
step "setup: grpcurl and the Go interop peer (interop tier)"
bash scripts/setup/interop.sh
# The k8s tier's stage: 1 = API server (etcd + kube-apiserver), 2 = also a working node.
export K8S_STAGE="${K8S_STAGE:-2}"
step "setup: Kubernetes stage $K8S_STAGE from source (k8s tier)"
bash scripts/setup/k8s.sh "$K8S_STAGE"

step "tests: unit, integration, e2e, helm, k8s (stage $K8S_STAGE), interop"
mkdir -p .tools
results=.tools/jest-results.json
rm -f "$results"
set +e
npx --no-install jest --runInBand --json --outputFile="$results" "$@"
status=$?
set -e
node scripts/jest-summary.js "$results"
printf 'total time %ss\n' "$(( $(date +%s) - started ))"
exit "$status"
