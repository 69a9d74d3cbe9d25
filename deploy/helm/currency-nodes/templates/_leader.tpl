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

{{/*
The controller's preStop with leader election (a `node -e` script; args: the metrics port's
scheme, the port, the pause in seconds). It asks the pod's own /readyz, 200 only while it
leads: the leader returns at once, because its SIGTERM is the handover (it ends the node
streams and releases the Lease, and a standby leads within a second), so any pause there
only delays the takeover while the old leader keeps streaming. A standby (503), or a check
that gets no answer, pauses as one controller does: in a rollout, which stops every old pod
at once, an old standby then stays to take the Lease from the old leader while the new
pods start. HTTPS on loopback is not verified: only the status code is read.
*/}}
{{- define "currency-nodes.controller.preStopScript" -}}
const [scheme, port, seconds] = process.argv.slice(1);
let pausing = false;
const pause = () => {
  if (pausing) return;
  pausing = true;
  setTimeout(() => process.exit(0), Number(seconds) * 1000);
};
const req = require('node:' + scheme).get(
  { host: '127.0.0.1', port: Number(port), path: '/readyz', timeout: 1000, rejectUnauthorized: false },
  (res) => {
    res.resume();
    if (res.statusCode === 200) process.exit(0);
    pause();
  },
);
req.on('timeout', () => req.destroy(new Error('no answer'))).on('error', pause);
{{- end }}

{{/*
The pre-delete hook's script (templates/controller-stop-hook.yaml; args: the controller
Deployment, its pods' label selector, how long to wait in seconds). With the hook's own
service account it scales the Deployment to 0 and waits until no controller pod is left, so
that the last leader releases the Lease while its Role, RoleBinding and ServiceAccount still
exist. It always exits 0: when it cannot do that, the uninstall goes on and the Lease
expires instead of being released, as without the hook.
*/}}
{{- define "currency-nodes.controller.stopScript" -}}
const fs = require('node:fs');
const https = require('node:https');
const [deployment, selector, waitSeconds] = process.argv.slice(1);
const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
const ns = fs.readFileSync(dir + '/namespace', 'utf8').trim();
const token = fs.readFileSync(dir + '/token', 'utf8').trim();
const ca = fs.readFileSync(dir + '/ca.crt');
const log = (msg) => console.log(new Date().toISOString() + ' ' + msg);
const api = (method, path, body) =>
  new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: process.env.KUBERNETES_SERVICE_HOST,
        port: process.env.KUBERNETES_SERVICE_PORT,
        path,
        method,
        ca,
        timeout: 10000,
        headers: {
          authorization: 'Bearer ' + token,
          accept: 'application/json',
          ...(body && { 'content-type': 'application/merge-patch+json' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s'))).on('error', reject);
    req.end(body);
  });
(async () => {
  const scale = await api(
    'PATCH',
    '/apis/apps/v1/namespaces/' + ns + '/deployments/' + deployment + '/scale',
    JSON.stringify({ spec: { replicas: 0 } }),
  );
  if (scale.status === 404) return log('no Deployment ' + deployment + ': nothing to stop');
  if (scale.status !== 200) {
    const why = 'HTTP ' + scale.status + ': ' + scale.text.slice(0, 300);
    return log('could not scale ' + deployment + ' to 0 (' + why + '); the Lease may expire instead of being released');
  }
  log('scaled ' + deployment + ' to 0; waiting for its pods to stop (at most ' + waitSeconds + ' s)');
  const deadline = Date.now() + Number(waitSeconds) * 1000;
  const pods = '/api/v1/namespaces/' + ns + '/pods?labelSelector=' + encodeURIComponent(selector);
  while (Date.now() < deadline) {
    const r = await api('GET', pods);
    if (r.status === 200 && JSON.parse(r.text).items.length === 0) return log('the controllers have stopped');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  log('controller pods still there after ' + waitSeconds + ' s; going on with the uninstall');
})()
  .catch((err) => log('stopping the controllers failed (' + err.message + '); going on with the uninstall'))
  .finally(() => process.exit(0));
{{- end }}
