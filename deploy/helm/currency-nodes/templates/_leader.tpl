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
{{- if not (or .Values.security.tls.enabled .Values.security.auth.enabled) }}
# Warm standby: a standby watches the leader's prices through the Service (which routes to
# the ready controller, the leader). Not set with TLS or tokens on: see the chart README.
- name: CONTROLLER_FOLLOW_ADDR
  value: {{ include "currency-nodes.controller.address" . | quote }}
{{- end }}
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
