{{/*
Leader election of the controller (docs/leader-election.md): on with 2 or more replicas.
*/}}
{{- define "currency-nodes.controller.leaderElection" -}}
{{- if ge (int .Values.controller.replicas) 2 }}true{{ end }}
{{- end }}

{{- define "currency-nodes.controller.leaseName" -}}
{{- default (include "currency-nodes.controller.fullname" .) .Values.controller.leaderElection.leaseName }}
{{- end }}

{{/* The controller's election variables (an env list), when election is on. */}}
{{- define "currency-nodes.controller.leaderElectionEnv" -}}
{{- if include "currency-nodes.controller.leaderElection" . }}
{{- $le := .Values.controller.leaderElection }}
- name: CONTROLLER_LEADER_ELECTION
  value: kubernetes
- name: CONTROLLER_LEASE_NAME
  value: {{ include "currency-nodes.controller.leaseName" . | quote }}
- name: CONTROLLER_LEASE_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# The pod name: unique among the replicas, and what `kubectl get lease` shows as holder.
- name: CONTROLLER_LEADER_IDENTITY
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: CONTROLLER_LEASE_DURATION_MS
  value: {{ $le.leaseDurationMs | int | quote }}
- name: CONTROLLER_LEASE_RENEW_DEADLINE_MS
  value: {{ $le.renewDeadlineMs | int | quote }}
- name: CONTROLLER_LEASE_RETRY_PERIOD_MS
  value: {{ $le.retryPeriodMs | int | quote }}
# Warm standby: a standby watches the leader's prices through the Service (which routes to
# the ready controller, the leader), as a CLI would: with TLS and tokens on, with the CLI's
# CA, client certificate and token (CLI_* variables, mounted like the CLI pod's).
- name: CONTROLLER_FOLLOW_ADDR
  value: {{ include "currency-nodes.controller.address" . | quote }}
{{- with (include "currency-nodes.client.securityEnv" (dict "root" . "prefix" "CLI" "token" "cli-token") | trim) }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volume mounts for following with mutual TLS (the CLI's client certificate), or nothing. */}}
{{- define "currency-nodes.controller.followVolumeMounts" -}}
{{- $tls := .Values.security.tls }}
{{- if and (include "currency-nodes.controller.leaderElection" .) $tls.enabled $tls.mutual.enabled }}
- name: follow-client-tls
  mountPath: {{ include "currency-nodes.clientTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "currency-nodes.controller.followVolumes" -}}
{{- $tls := .Values.security.tls }}
{{- if and (include "currency-nodes.controller.leaderElection" .) $tls.enabled $tls.mutual.enabled }}
- name: follow-client-tls
  secret:
    secretName: {{ $tls.mutual.cliSecret }}
    defaultMode: 288 # 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}

{{/* Spread the replicas over Kubernetes nodes unless the values say how. */}}
{{- define "currency-nodes.controller.scheduling" -}}
{{- $c := .Values.controller }}
{{- $elect := include "currency-nodes.controller.leaderElection" . }}
{{- if $c.affinity }}
affinity:
  {{- toYaml $c.affinity | nindent 2 }}
{{- else if $elect }}
# Preferred, not required: a one-node cluster (or a surge during a rollout) still schedules.
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "currency-nodes.selectorLabels" (dict "root" $ "component" "controller") | nindent 14 }}
{{- end }}
{{- if $c.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $c.topologySpreadConstraints | nindent 2 }}
{{- else if $elect }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "currency-nodes.selectorLabels" (dict "root" $ "component" "controller") | nindent 8 }}
{{- end }}
{{- end }}
