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
#    (the k8s tier beside the rest), then a closing line "N passed, N failed".
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
# Two lanes at once (TEST_LANES=2, the default): the k8s tier, which mostly waits on its
# cluster, beside every other tier in a second jest process; each lane runs its files one
# at a time (--runInBand). TEST_LANES=1, or any argument (passed on to jest), runs one
# jest process over everything, as before. docs/testing.md has the figures.
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
  lanes=(k8s rest)
  lane k8s --selectProjects k8s &
  k8s_pid=$!
  lane rest --selectProjects unit integration helm interop e2e &
  rest_pid=$!
  wait "$k8s_pid"
  k8s_status=$?
  wait "$rest_pid"
  rest_status=$?
  status=$((k8s_status > rest_status ? k8s_status : rest_status))
fi
set -e
node scripts/jest-summary.js $(printf ".tools/jest-results-%s.json " "${lanes[@]}")
printf 'total time %ss\n' "$(( $(date +%s) - started ))"
exit "$status"
