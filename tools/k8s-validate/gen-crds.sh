#!/usr/bin/env bash
# Regenerates crds/: the CustomResourceDefinitions of the prometheus-operator kinds the chart
# uses, produced from the operator's Go types (the module pinned in go.mod) by controller-gen,
# as the operator's own CRDs are. Run after bumping either (go generate ./...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
CONTROLLER_GEN=sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOFLAGS=-mod=mod go run "$CONTROLLER_GEN" crd \
  paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
  output:crd:dir="$tmp"
for kind in servicemonitors podmonitors prometheusrules; do
  cp "$tmp/monitoring.coreos.com_$kind.yaml" "crds/monitoring.coreos.com_$kind.yaml"
done
# The repository's format check (prettier) covers YAML; format the generated files to match.
(cd ../.. && npx --no-install prettier --log-level warn --write tools/k8s-validate/crds)
