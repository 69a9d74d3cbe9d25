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
{{- /* An annotation scraper presents no credentials: "auto" leaves a protected port alone. */}}
{{- $protected := ne .root.Values.security.metrics.webConfigSecret "" }}
{{- if or (eq $mode "always") (and (eq $mode "auto") (not .monitored) (not $protected)) }}
prometheus.io/scrape: "true"
prometheus.io/port: "9464"
prometheus.io/path: /metrics
{{- if eq (include "currency-nodes.metrics.scheme" .root) "https" }}
prometheus.io/scheme: https
{{- end }}
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

{{/*
Security (docs/security.md): TLS on the controller's gRPC port from a kubernetes.io/tls
Secret, client certificates for mutual TLS, bearer tokens from a Secret. Secrets are
mounted read-only as directories (never subPath, which would freeze the files and stop the
reload), mode 0440 and group-owned by fsGroup, each pod getting only the keys it needs.
*/}}
{{- define "currency-nodes.tlsDir" -}}/etc/currency-nodes/tls{{- end }}
{{- define "currency-nodes.clientTlsDir" -}}/etc/currency-nodes/client-tls{{- end }}
{{- define "currency-nodes.authDir" -}}/etc/currency-nodes/auth{{- end }}
{{- define "currency-nodes.metricsWebDir" -}}/etc/currency-nodes/metrics-web{{- end }}

{{/*
The metrics port's protection (security.metrics): METRICS_WEB_CONFIG_FILE from a Secret, for
the controller and the nodes. The kubelet cannot present a client certificate or a password,
so /healthz and /readyz stay open (METRICS_PROBES_OPEN); its HTTPS probes do not verify.
*/}}
{{- define "currency-nodes.metrics.webEnv" -}}
{{- if .Values.security.metrics.webConfigSecret }}
- name: METRICS_WEB_CONFIG_FILE
  value: {{ printf "%s/web-config.yml" (include "currency-nodes.metricsWebDir" .) | quote }}
- name: METRICS_PROBES_OPEN
  value: "true"
{{- end }}
{{- end }}

{{- define "currency-nodes.metrics.webVolumeMount" -}}
{{- if .Values.security.metrics.webConfigSecret }}
- name: metrics-web
  mountPath: {{ include "currency-nodes.metricsWebDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The whole Secret: web-config.yml and the files it names (relative paths resolve beside it). */}}
{{- define "currency-nodes.metrics.webVolume" -}}
{{- with .Values.security.metrics.webConfigSecret }}
- name: metrics-web
  secret:
    secretName: {{ . }}
    defaultMode: 288 # 0440
{{- end }}
{{- end }}

{{/* HTTP or HTTPS on the metrics port: for probes (upper case) and monitors (lower case). */}}
{{- define "currency-nodes.metrics.scheme" -}}
{{- ternary "https" "http" (and (ne .Values.security.metrics.webConfigSecret "") .Values.security.metrics.tls) }}
{{- end }}

{{/*
ServiceMonitor / PodMonitor endpoint settings for a protected metrics port: tlsConfig and
basicAuth from security.metrics.scrape.secret (in the monitors' namespace).
*/}}
{{- define "currency-nodes.metrics.scrapeAuth" -}}
{{- $s := .Values.security.metrics.scrape }}
{{- if and (eq (include "currency-nodes.metrics.scheme" .) "https") $s.secret }}
tlsConfig:
  ca:
    secret:
      name: {{ $s.secret }}
      key: ca.crt
  {{- if $s.clientCertificate }}
  cert:
    secret:
      name: {{ $s.secret }}
      key: tls.crt
  keySecret:
    name: {{ $s.secret }}
    key: tls.key
  {{- end }}
  {{- with $s.serverName }}
  serverName: {{ . }}
  {{- end }}
{{- end }}
{{- if and $s.basicAuth $s.secret }}
basicAuth:
  username:
    name: {{ $s.secret }}
    key: username
  password:
    name: {{ $s.secret }}
    key: password
{{- end }}
{{- end }}

{{/* The token Secret: security.auth.existingSecret, or the one the chart generates. */}}
{{- define "currency-nodes.auth.secretName" -}}
{{- default (printf "%s-auth" (include "currency-nodes.fullname" .)) .Values.security.auth.existingSecret }}
{{- end }}

{{/* The controller's security env vars (with the list's leading "- "), or nothing. */}}
{{- define "currency-nodes.controller.securityEnv" -}}
{{- $tls := .Values.security.tls }}
{{- if $tls.enabled }}
- name: CONTROLLER_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (include "currency-nodes.tlsDir" .) | quote }}
- name: CONTROLLER_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (include "currency-nodes.tlsDir" .) | quote }}
{{- if $tls.mutual.enabled }}
- name: CONTROLLER_TLS_CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" (include "currency-nodes.tlsDir" .) | quote }}
{{- if $tls.mutual.clientCertRoles }}
- name: CONTROLLER_TLS_CLIENT_CERT_ROLES
  value: "true"
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.security.auth.enabled }}
- name: CONTROLLER_NODE_TOKENS_FILE
  value: {{ printf "%s/%s" (include "currency-nodes.authDir" .) .Values.security.auth.nodeTokensKey | quote }}
- name: CONTROLLER_CLI_TOKENS_FILE
  value: {{ printf "%s/cli-token" (include "currency-nodes.authDir" .) | quote }}
{{- if eq .Values.security.auth.require "both" }}
- name: CONTROLLER_AUTH_REQUIRE
  value: "both"
{{- end }}
{{- end }}
{{- include "currency-nodes.metrics.webEnv" . }}
{{- end }}

{{- define "currency-nodes.controller.securityVolumeMounts" -}}
{{- if .Values.security.tls.enabled }}
- name: tls
  mountPath: {{ include "currency-nodes.tlsDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.security.auth.enabled }}
- name: auth
  mountPath: {{ include "currency-nodes.authDir" . }}
  readOnly: true
{{- end }}
{{- include "currency-nodes.metrics.webVolumeMount" . }}
{{- end }}

{{- define "currency-nodes.controller.securityVolumes" -}}
{{- $tls := .Values.security.tls }}
{{- if $tls.enabled }}
- name: tls
  secret:
    secretName: {{ $tls.existingSecret }}
    defaultMode: 288 # 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- /* The CA: to check client certificates, and for a standby to check the leader's. */}}
      {{- if or $tls.mutual.enabled (include "currency-nodes.controller.leaderElection" .) }}
      - key: ca.crt
        path: ca.crt
      {{- end }}
{{- end }}
{{- if .Values.security.auth.enabled }}
- name: auth
  secret:
    secretName: {{ include "currency-nodes.auth.secretName" . }}
    defaultMode: 288 # 0440
    items:
      {{- /* The node tokens file (bound lines); node pods get only node-token, the one they send. */}}
      - key: {{ .Values.security.auth.nodeTokensKey }}
        path: {{ .Values.security.auth.nodeTokensKey }}
      - key: cli-token
        path: cli-token
{{- end }}
{{- include "currency-nodes.metrics.webVolume" . }}
{{- end }}

{{/*
A client's (node, cli) security env vars. Call with (dict "root" $ "prefix" "NODE"|"CLI"
"token" "node-token"|"cli-token"); nodes also get the metrics web config.
*/}}
{{- define "currency-nodes.client.securityEnv" -}}
{{- $tls := .root.Values.security.tls }}
{{- if $tls.enabled }}
- name: {{ .prefix }}_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" (include "currency-nodes.tlsDir" .root) | quote }}
{{- with $tls.serverName }}
- name: {{ $.prefix }}_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- if $tls.mutual.enabled }}
- name: {{ .prefix }}_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (include "currency-nodes.clientTlsDir" .root) | quote }}
- name: {{ .prefix }}_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (include "currency-nodes.clientTlsDir" .root) | quote }}
{{- end }}
{{- end }}
{{- if .root.Values.security.auth.enabled }}
- name: {{ .prefix }}_TOKEN_FILE
  value: {{ printf "%s/%s" (include "currency-nodes.authDir" .root) .token | quote }}
{{- end }}
{{- if eq .prefix "NODE" }}
{{- include "currency-nodes.metrics.webEnv" .root }}
{{- end }}
{{- end }}

{{- define "currency-nodes.client.securityVolumeMounts" -}}
{{- $tls := .root.Values.security.tls }}
{{- if $tls.enabled }}
- name: tls-ca
  mountPath: {{ include "currency-nodes.tlsDir" .root }}
  readOnly: true
{{- if $tls.mutual.enabled }}
- name: client-tls
  mountPath: {{ include "currency-nodes.clientTlsDir" .root }}
  readOnly: true
{{- end }}
{{- end }}
{{- if .root.Values.security.auth.enabled }}
- name: auth
  mountPath: {{ include "currency-nodes.authDir" .root }}
  readOnly: true
{{- end }}
{{- if .metrics }}
{{- include "currency-nodes.metrics.webVolumeMount" .root }}
{{- end }}
{{- end }}

{{/*
Call with (dict "root" $ "token" "node-token"|"cli-token" "clientSecret" "<Secret name>"
["metrics" true: the metrics web config too, for nodes]).
*/}}
{{- define "currency-nodes.client.securityVolumes" -}}
{{- $tls := .root.Values.security.tls }}
{{- if $tls.enabled }}
- name: tls-ca
  secret:
    secretName: {{ $tls.existingSecret }}
    defaultMode: 288 # 0440
    items:
      - key: ca.crt
        path: ca.crt
{{- if $tls.mutual.enabled }}
- name: client-tls
  secret:
    secretName: {{ .clientSecret }}
    defaultMode: 288 # 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}
{{- if .root.Values.security.auth.enabled }}
- name: auth
  secret:
    secretName: {{ include "currency-nodes.auth.secretName" .root }}
    defaultMode: 288 # 0440
    items:
      - key: {{ .token }}
        path: {{ .token }}
{{- end }}
{{- if .metrics }}
{{- include "currency-nodes.metrics.webVolume" .root }}
{{- end }}
{{- end }}
