{{/*
Checks that values.schema.json cannot express. Each failure names the value and says what
is wrong. Included once, from controller-deployment.yaml.
*/}}
{{- define "currency-nodes.validate" -}}
{{- $seen := dict }}
{{- range $i, $g := .Values.nodeGroups }}
{{- if hasKey $seen $g.name }}
{{- fail (printf "nodeGroups[%d].name: %q is used by more than one node group; names must be unique" $i $g.name) }}
{{- end }}
{{- $_ := set $seen $g.name true }}
{{- end }}
{{- range $i, $g := .Values.nodeGroups }}
{{- $interval := toString (default $.Values.node.priceIntervalMs $g.priceIntervalMs) }}
{{- $parts := splitList "-" $interval }}
{{- if and (eq (len $parts) 2) (gt (atoi (index $parts 0)) (atoi (index $parts 1))) }}
{{- fail (printf "nodeGroups[%d] (%s): priceIntervalMs %q has MIN greater than MAX" $i $g.name $interval) }}
{{- end }}
{{- include "currency-nodes.upstream.validate" (dict "root" $ "index" $i "group" $g) }}
{{- end }}
{{- $c := .Values.controller }}
{{- if and (gt (int $c.preStopSleepSeconds) 0) (le (int $c.terminationGracePeriodSeconds) (int $c.preStopSleepSeconds)) }}
{{- fail (printf "controller.terminationGracePeriodSeconds (%d) must be greater than controller.preStopSleepSeconds (%d), or the controller is killed before it shuts down cleanly" (int $c.terminationGracePeriodSeconds) (int $c.preStopSleepSeconds)) }}
{{- end }}
{{- if and .Values.otel.enabled (eq .Values.otel.tracesExporter "otlp") (not .Values.otel.endpoint) }}
{{- fail "otel.endpoint: required when otel.enabled is true and otel.tracesExporter is otlp (e.g. http://otel-collector.observability:4317)" }}
{{- end }}
{{- $m := .Values.security.metrics }}
{{- if and $m.webConfigSecret (not $m.scrape.secret) (or (include "currency-nodes.serviceMonitor.enabled" .) (and (include "currency-nodes.podMonitor.enabled" .) .Values.nodeGroups)) }}
{{- fail "security.metrics.scrape.secret: required when security.metrics.webConfigSecret protects the metrics port and a ServiceMonitor or PodMonitor is rendered (without the CA and credentials in it every target is down); or switch the monitors off" }}
{{- end }}
{{- $a := .Values.security.auth }}
{{- if and $a.enabled (not $a.existingSecret) (ne $a.nodeTokensKey "node-token") }}
{{- fail (printf "security.auth.nodeTokensKey: %q names a key of your own Secret; the Secret the chart generates has only node-token and cli-token: set security.auth.existingSecret too" $a.nodeTokensKey) }}
{{- end }}
{{- if and .Values.tests.enabled (not .Values.nodeGroups) }}
{{- fail "tests.enabled: the helm test expects nodes, but nodeGroups is empty; add a node group or set tests.enabled=false" }}
{{- end }}
{{- end }}
