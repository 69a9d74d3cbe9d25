#!/usr/bin/env bash
# The whole test suite: `npm test`, and what CI runs (.ci/run).
#
# 1. Static checks: generated code and dashboards up to date, type check, lint (warnings
#    fail; it runs alongside the rest of this step), format; and the build.
# 2. Install or start what the tiers need (Prometheus, Docker engine and images, helm,
#    an OCI registry, a Kubernetes built from source, grpcurl and the Go interop peer);
#    each setup script fails loudly when it cannot, and never skips a tier silently.
# 3. The unit tier on every core, then the other tiers (integration, e2e, helm, k8s,
#    interop) in three jest processes at once (TEST_LANES=2: two), then a closing line
#    "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m=== %s\033[0m\n' "$*"; }
started=$(date +%s)

# Lint (type-aware ESLint, about 28 s: the longest check) runs beside the other checks and
# the build, on the second core; its output is shown, and a failure stops the run, once
# they are done.
step "static checks and build (lint alongside)"
mkdir -p .tools
npm run --silent lint > .tools/lint.log 2>&1 &
lint_pid=$!
trap 'kill "$lint_pid" 2> /dev/null || true' EXIT
npm run --silent gen:check
npm run --silent dashboards:check
npm run --silent typecheck
npm run --silent format:check
npm run --silent build
lint_status=0
wait "$lint_pid" || lint_status=$?
trap - EXIT
cat .tools/lint.log
if [ "$lint_status" -ne 0 ]; then
  echo "lint failed (npm run lint exited $lint_status)" >&2
  exit 1
fi

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

mkdir -p .tools
rm -f .tools/jest-results*.json
lane() { # name, the lane's part of the test port range (i/n), then jest arguments
  local name=$1 ports=$2
  shift 2
  TEST_PORT_BLOCK="$ports" npx --no-install jest --json --outputFile=".tools/jest-results-$name.json" "$@" \
    > >(sed -u "s/^/[$name] /") 2> >(sed -u "s/^/[$name] /" >&2)
}
set +e
lanes_wanted="${TEST_LANES:-3}"
if [ "$#" -gt 0 ] || [ "$lanes_wanted" = 1 ]; then
  # TEST_LANES=1, or any argument (passed on to jest): one jest process over everything.
  step "tests: unit, integration, e2e, helm, k8s (stage $K8S_STAGE), interop"
  lanes=(all)
  lane all '' --runInBand "$@"
  status=$?
else
  # The unit tier first, on every core (about 10 s).
  step "tests: unit"
  lanes=(unit)
  lane unit '' --selectProjects unit --maxWorkers=100%
  status=$?
  pids=()
  if [ "$lanes_wanted" != 2 ]; then
    # The default: three jest processes at once, each running its files one at a time
    # (11-12 min warm instead of 13.5-17 with two; docs/testing.md), balanced by the time
    # their files take in the full run:
    #  - cluster: the k8s tier, the e2e registry test (the one e2e file that retags
    #    images: never while the k8s tier loads them) and the interop tier;
    #  - integration: the integration tier but the fleet listing, and compose-upstream;
    #  - mixed: the other e2e files, the helm tier and the fleet listing (cli-fleet).
    step "tests: integration, e2e, helm, k8s (stage $K8S_STAGE), interop in three lanes"
    lanes+=(cluster integration mixed)
    lane cluster 0/3 --runInBand --selectProjects k8s e2e interop \
      --testPathPatterns 'tests/k8s/' 'tests-e2e/registry\.test' 'tests/interop/' &
    pids+=($!)
    lane integration 1/3 --runInBand --selectProjects integration e2e \
      --testPathPatterns 'tests/integration/' 'tests-e2e/compose-upstream\.test' \
      --testPathIgnorePatterns 'tests/integration/cli-fleet\.test' &
    pids+=($!)
    lane mixed 2/3 --runInBand --selectProjects e2e helm integration \
      --testPathPatterns 'tests-e2e/' 'tests/helm/' 'tests/integration/cli-fleet\.test' \
      --testPathIgnorePatterns 'tests-e2e/(registry|compose-upstream)\.test' &
    pids+=($!)
  else
    # TEST_LANES=2: two jest processes at once (13.5-17 min warm), each running its files
    # one at a time: the tiers that run containers (k8s and e2e, one after the other, so
    # that the e2e tier's image tags never change while the k8s tier loads them) beside the
    # integration, helm and interop tiers.
    step "tests: integration, e2e, helm, k8s (stage $K8S_STAGE), interop in two lanes"
    lanes+=(containers rest)
    lane containers 0/2 --runInBand --selectProjects k8s e2e &
    pids+=($!)
    lane rest 1/2 --runInBand --selectProjects integration helm interop &
    pids+=($!)
  fi
  for pid in "${pids[@]}"; do
    wait "$pid"
    s=$?
    status=$((s > status ? s : status))
  done
fi
set -e
node scripts/jest-summary.js $(printf ".tools/jest-results-%s.json " "${lanes[@]}")
printf 'total time %ss\n' "$(( $(date +%s) - started ))"
exit "$status"
