{{/*
Chart name, truncated to 63 characters (a label value's limit).
*/}}
{{- define "currency-nodes.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: "<release>-<chart name>", or the release name when it already contains the
chart name. Truncated so that "<fullname>-node-<group>" stays a DNS label (the schema caps
group names at 20 characters).
*/}}
{{- define "currency-nodes.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 37 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 37 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "currency-nodes.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Names of the objects. */}}
{{- define "currency-nodes.controller.fullname" -}}
{{- printf "%s-controller" (include "currency-nodes.fullname" .) }}
{{- end }}
{{- define "currency-nodes.cli.fullname" -}}
{{- printf "%s-cli" (include "currency-nodes.fullname" .) }}
{{- end }}
{{/* Call with (dict "root" $ "group" $group). */}}
{{- define "currency-nodes.node.fullname" -}}
{{- printf "%s-node-%s" (include "currency-nodes.fullname" .root) .group.name }}
{{- end }}

{{/* The controller's gRPC address as nodes and the CLI reach it. */}}
{{- define "currency-nodes.controller.address" -}}
{{- printf "%s:%d" (include "currency-nodes.controller.fullname" .) (int .Values.controller.service.grpcPort) }}
{{- end }}

{{/*
Selector labels (immutable on a Deployment: never add to them).
Call with (dict "root" $ "component" "controller").
*/}}
{{- define "currency-nodes.selectorLabels" -}}
app.kubernetes.io/name: {{ include "currency-nodes.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with .group }}
currency-nodes/node-group: {{ . }}
{{- end }}
{{- end }}

{{/*
Standard labels on every object. Call with (dict "root" $ "component" "..." ["group" "..."]).
*/}}
{{- define "currency-nodes.labels" -}}
helm.sh/chart: {{ include "currency-nodes.chart" .root }}
{{ include "currency-nodes.selectorLabels" . }}
{{- if .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "currency-nodes.name" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The metadata.annotations block (commonAnnotations plus extra ones), with its leading newline
and indentation, or nothing. Use as {{- include "currency-nodes.annotations" (dict "root" $ "extra" map) }}.
*/}}
{{- define "currency-nodes.annotations" -}}
{{- $a := merge (deepCopy (default (dict) .extra)) (deepCopy (default (dict) .root.Values.commonAnnotations)) }}
{{- with $a }}
{{ "  annotations:" }}
    {{- toYaml . | nindent 4 }}
{{- end }}
{{- end }}

{{- define "currency-nodes.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "currency-nodes.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference of a role: [registry/]repository(:tag|@digest). The tag defaults to the
global image.tag, then the chart's appVersion. Call with (dict "root" $ "image" .Values.controller.image).
*/}}
{{- define "currency-nodes.image" -}}
{{- $registry := default .root.Values.image.registry .image.registry }}
{{- $repo := .image.repository }}
{{- if $registry }}{{ $repo = printf "%s/%s" $registry $repo }}{{ end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (toString (default (default .root.Chart.AppVersion .root.Values.image.tag) .image.tag)) }}
{{- end }}
{{- end }}

{{- define "currency-nodes.imagePullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{/* Security contexts: the role's settings merged over the global ones. Call with (dict "root" $ "role" <role values>). */}}
{{- define "currency-nodes.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.podSecurityContext) (deepCopy (default (dict) .role.podSecurityContext))) }}
{{- end }}
{{- define "currency-nodes.containerSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.containerSecurityContext) (deepCopy (default (dict) .role.containerSecurityContext))) }}
{{- end }}

{{/* The writable /tmp of every container (the root filesystem is read-only). */}}
{{- define "currency-nodes.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolumeSizeLimit }}
{{- end }}
{{- define "currency-nodes.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment shared by every container: LOG_LEVEL, the OTEL_* settings, then the global
extraEnv. Call with (dict "root" $ "logLevel" "<role's level or empty>").
*/}}
{{- define "currency-nodes.commonEnv" -}}
- name: LOG_LEVEL
  value: {{ default .root.Values.logLevel .logLevel | quote }}
{{- with .root.Values.otel }}
{{- if .enabled }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: OTEL_TRACES_EXPORTER
  value: {{ .tracesExporter | quote }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
{{- end }}
{{- $attrs := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- range $k, $v := .resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Whether the monitoring.coreos.com/v1 kind is served and wanted: "true" or "". */}}
{{- define "currency-nodes.serviceMonitor.enabled" -}}
{{- if and .Values.metrics.serviceMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor") }}true{{ end }}
{{- end }}
{{- define "currency-nodes.podMonitor.enabled" -}}
{{- if and .Values.metrics.podMonitor.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PodMonitor") }}true{{ end }}
{{- end }}
{{- define "currency-nodes.prometheusRule.enabled" -}}
{{- if and .Values.metrics.prometheusRule.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1/PrometheusRule") }}true{{ end }}
{{- end }}

{{/*
Prometheus scrape annotations (the fallback when no ServiceMonitor/PodMonitor scrapes the
pod). Call with (dict "root" $ "monitored" "<true or empty>").
*/}}
{{- define "currency-nodes.scrapeAnnotations" -}}
{{- $mode := .root.Values.metrics.scrapeAnnotations }}
{{- if or (eq $mode "always") (and (eq $mode "auto") (not .monitored)) }}
prometheus.io/scrape: "true"
prometheus.io/port: "9464"
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
A node group's settings: the group merged over the `node` defaults (maps deeply, lists and
scalars replaced). Call with (dict "root" $ "group" $group); returns YAML.
*/}}
{{- define "currency-nodes.node.settings" -}}
{{- $defaults := deepCopy .root.Values.node }}
{{- $group := deepCopy .group }}
{{- toYaml (mergeOverwrite $defaults $group) }}
{{- end }}
