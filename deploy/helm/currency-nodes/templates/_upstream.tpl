{{/*
Where a node group's prices come from: `upstream` (a group's, merged over node.upstream)
becomes the NODE_UPSTREAM_* variables of services/node/upstream/config.ts (user guide:
docs/upstreams.md). Kind simulated (the default) renders nothing. The headers file (API
keys) and the extra CA come from an existing Secret / ConfigMap mounted read-only as a
directory (never subPath, so a rotated Secret reaches the file the node re-reads), never
from an env var.
*/}}
{{- define "currency-nodes.upstream.headersDir" -}}/etc/currency-nodes/upstream-headers{{- end }}
{{- define "currency-nodes.upstream.caDir" -}}/etc/currency-nodes/upstream-ca{{- end }}

{{/* The keys that mean something only for a real upstream (config.ts REAL_ONLY). */}}
{{- define "currency-nodes.upstream.realOnlyKeys" -}}
url symbol symbols pricePath timePath symbolPath subscribe unsubscribe headersSecret caSecret caConfigMap maxAgeMs
{{- end }}

{{/*
The upstream of a group's merged settings (the output of currency-nodes.node.settings), as
YAML; `kind` is "simulated" when unset. Robust to an older release's values without the
key (helm upgrade --reuse-values).
*/}}
{{- define "currency-nodes.upstream" -}}
{{- $u := deepCopy (default (dict) .upstream) }}
{{- if not $u.kind }}{{ $_ := set $u "kind" "simulated" }}{{ end }}
{{- toYaml $u }}
{{- end }}

{{/* Whether the upstream (YAML of currency-nodes.upstream, as a dict) is real: "true" or "". */}}
{{- define "currency-nodes.upstream.real" -}}
{{- if has .kind (list "http" "websocket") }}true{{ end }}
{{- end }}

{{/*
A value passed literally: Kubernetes expands $(VAR) in env values, and $$ is its escape.
*/}}
{{- define "currency-nodes.upstream.literal" -}}
{{- toString . | replace "$" "$$" | quote }}
{{- end }}

{{/*
The NODE_UPSTREAM_* variables (list items), in config.ts's order, or nothing. Call with the
upstream dict.
*/}}
{{- define "currency-nodes.upstream.env" -}}
{{- if include "currency-nodes.upstream.real" . }}
- name: NODE_UPSTREAM
  value: {{ .kind | quote }}
{{- range $kv := list (list "url" "URL") (list "symbol" "SYMBOL") }}
{{- with index $ (index $kv 0) }}
- name: NODE_UPSTREAM_{{ index $kv 1 }}
  value: {{ include "currency-nodes.upstream.literal" . }}
{{- end }}
{{- end }}
{{- with .symbols }}
{{- $items := list }}
{{- range $pair, $symbol := . }}
{{- $items = append $items (printf "%s=%s" $pair (toString $symbol | trim)) }}
{{- end }}
- name: NODE_UPSTREAM_SYMBOLS
  value: {{ include "currency-nodes.upstream.literal" (join "," $items) }}
{{- end }}
{{- range $kv := list (list "pricePath" "PRICE_PATH") (list "timePath" "TIME_PATH") (list "symbolPath" "SYMBOL_PATH") (list "subscribe" "SUBSCRIBE") (list "unsubscribe" "UNSUBSCRIBE") }}
{{- with index $ (index $kv 0) }}
- name: NODE_UPSTREAM_{{ index $kv 1 }}
  value: {{ include "currency-nodes.upstream.literal" . }}
{{- end }}
{{- end }}
{{- with .headersSecret }}
- name: NODE_UPSTREAM_HEADERS_FILE
  value: {{ printf "%s/headers" (include "currency-nodes.upstream.headersDir" .) | quote }}
{{- end }}
{{- if or .caSecret .caConfigMap }}
- name: NODE_UPSTREAM_CA_FILE
  value: {{ printf "%s/ca.crt" (include "currency-nodes.upstream.caDir" .) | quote }}
{{- end }}
{{- with .timeoutMs }}
- name: NODE_UPSTREAM_TIMEOUT_MS
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- with .maxRps }}
- name: NODE_UPSTREAM_MAX_RPS
  value: {{ toString . | quote }}
{{- end }}
{{- range $kv := list (list "failAfterMs" "FAIL_AFTER_MS") (list "maxAgeMs" "MAX_AGE_MS") }}
{{- with index $ (index $kv 0) }}
- name: NODE_UPSTREAM_{{ index $kv 1 }}
  value: {{ int64 . | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The volume mounts (list items), or nothing. Call with the upstream dict. */}}
{{- define "currency-nodes.upstream.volumeMounts" -}}
{{- if include "currency-nodes.upstream.real" . }}
{{- if .headersSecret }}
- name: upstream-headers
  mountPath: {{ include "currency-nodes.upstream.headersDir" . }}
  readOnly: true
{{- end }}
{{- if or .caSecret .caConfigMap }}
- name: upstream-ca
  mountPath: {{ include "currency-nodes.upstream.caDir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/*
The volumes (list items), or nothing: only the one key of each, as a fixed file name, mode
0440 and group-owned by fsGroup. Call with the upstream dict.
*/}}
{{- define "currency-nodes.upstream.volumes" -}}
{{- if include "currency-nodes.upstream.real" . }}
{{- with .headersSecret }}
- name: upstream-headers
  secret:
    secretName: {{ .name }}
    defaultMode: 288 # 0440
    items:
      - key: {{ .key }}
        path: headers
{{- end }}
{{- with .caSecret }}
- name: upstream-ca
  secret:
    secretName: {{ .name }}
    defaultMode: 288 # 0440
    items:
      - key: {{ .key }}
        path: ca.crt
{{- else }}
{{- with .caConfigMap }}
- name: upstream-ca
  configMap:
    name: {{ .name }}
    defaultMode: 288 # 0440
    items:
      - key: {{ .key }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What the schema cannot say about a group's upstream, because a group's settings are merged
over node.upstream first. Call with (dict "root" $ "index" $i "group" $group).
*/}}
{{- define "currency-nodes.upstream.validate" -}}
{{- $g := include "currency-nodes.node.settings" (dict "root" .root "group" .group) | fromYaml }}
{{- $u := include "currency-nodes.upstream" $g | fromYaml }}
{{- $at := printf "nodeGroups[%d] (%s): upstream" (int .index) .group.name }}
{{- if include "currency-nodes.upstream.real" $u }}
{{- if not $u.url }}
{{- fail (printf "%s.url: required for upstream.kind %s (NODE_UPSTREAM_URL; docs/upstreams.md)" $at $u.kind) }}
{{- end }}
{{- $schemes := ternary (list "http://" "https://") (list "ws://" "wss://") (eq $u.kind "http") }}
{{- if not (or (hasPrefix (index $schemes 0) $u.url) (hasPrefix (index $schemes 1) $u.url)) }}
{{- fail (printf "%s.url: %q must start with %s for upstream.kind %s" $at $u.url (join " or " $schemes) $u.kind) }}
{{- end }}
{{- if not $u.pricePath }}
{{- fail (printf "%s.pricePath: required for upstream.kind %s: where the price is in the JSON, e.g. data.amount (NODE_UPSTREAM_PRICE_PATH)" $at $u.kind) }}
{{- end }}
{{- if eq $u.kind "websocket" }}
{{- if not $u.symbolPath }}
{{- fail (printf "%s.symbolPath: required for upstream.kind websocket: where a message names its instrument, e.g. s (NODE_UPSTREAM_SYMBOL_PATH)" $at) }}
{{- end }}
{{- if regexMatch "\\{(pair|base|quote|symbol)\\}" $u.url }}
{{- fail (printf "%s.url: a websocket upstream is one connection per node, so its URL takes no {pair}, {base}, {quote} or {symbol}; name pairs in upstream.subscribe" $at) }}
{{- end }}
{{- else }}
{{- range list "subscribe" "unsubscribe" }}
{{- if index $u . }}
{{- fail (printf "%s.%s: for upstream.kind websocket only" $at .) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $u.caSecret $u.caConfigMap }}
{{- fail (printf "%s: set caSecret or caConfigMap, not both (one NODE_UPSTREAM_CA_FILE)" $at) }}
{{- end }}
{{- else }}
{{- /* A group's own real-upstream setting under a simulated kind is a forgotten kind. */}}
{{- $own := default (dict) .group.upstream }}
{{- range splitList " " (include "currency-nodes.upstream.realOnlyKeys" .) }}
{{- if index $own . }}
{{- fail (printf "%s.%s is set, but upstream.kind is simulated (the default): set upstream.kind to http or websocket, or remove it" $at .) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
