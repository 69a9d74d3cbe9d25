#!/usr/bin/env bash
# The whole test suite: `npm test`, and what CI runs (.ci/run).
#
# 1. Static checks: generated code and dashboards up to date, type check, lint (warnings
#    fail), format.
# 2. Build.
# 3. Install or start what the tiers need (Prometheus, Docker engine and images, helm,
#    an OCI registry, a Kubernetes built from source, grpcurl and the Go interop peer);
#    each setup script fails loudly when it cannot, and never skips a tier silently.
# 4. Every tier (unit, integration, e2e, helm, k8s, interop) in two jest processes at once
#    (k8s and e2e beside the rest), then a closing line "N passed, N failed".
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
rm -f .tools/jest-results*.json .tools/lane-*.log
# Two lanes at once (TEST_LANES=2, the default), each a jest process running its files one
# at a time (--runInBand): the tiers that run containers (k8s, which mostly waits on its
# cluster, then e2e; in one lane so that the e2e tier's image tags never change while the
# k8s tier loads them), beside the unit, integration, helm and interop tiers.
# TEST_LANES=1, or any argument (passed on to jest), runs one jest process over
# everything. docs/testing.md has the figures.
lane() { # name, then jest arguments; output prefixed with the lane's name
  local name=$1
  shift
  npx --no-install jest --runInBand --json --outputFile=".tools/jest-results-$name.json" "$@" \
    > >(sed -u "s/^/[$name] /") 2> >(sed -u "s/^/[$name] /" >&2)
}
set +e
if [ "$#" -gt 0 ] || [ "${TEST_LANES:-2}" = 1 ]; then
  lanes=(all)
  lane all "$@"
  status=$?
else
  lanes=(containers rest)
  lane containers --selectProjects k8s e2e &
  containers_pid=$!
  lane rest --selectProjects unit integration helm interop &
  rest_pid=$!
  wait "$containers_pid"
  containers_status=$?
  wait "$rest_pid"
  rest_status=$?
  status=$((containers_status > rest_status ? containers_status : rest_status))
fi
set -e
node scripts/jest-summary.js $(printf ".tools/jest-results-%s.json " "${lanes[@]}")
printf 'total time %ss\n' "$(( $(date +%s) - started ))"
exit "$status"
