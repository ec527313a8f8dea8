{{/* A process's environment. Arguments: root, p (its entry in op.processes). Secrets only as secretKeyRef or files. */}}
{{- define "op.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $p := .p -}}
# The root filesystem is read-only: tsx's compile cache and anything else that wants a home go to /tmp.
- name: HOME
  value: /tmp
- name: TMPDIR
  value: /tmp
- name: LOG_LEVEL
  value: {{ $v.logLevel | quote }}
{{- with $v.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.tracing.sampleRatio }}
- name: TRACING_SAMPLE_RATIO
  value: {{ . | quote }}
{{- end }}
{{- if eq $p.kind "http" }}
# Processes bind 127.0.0.1 by default, which nothing outside the pod reaches.
- name: HOST
  value: 0.0.0.0
- name: PORT
  value: {{ $p.port | int | quote }}
{{- else }}
- name: METRICS_HOST
  value: 0.0.0.0
- name: METRICS_PORT
  value: {{ $p.port | int | quote }}
# This pod is a version of the Worker Deployment: its build's id as written (a '+' included).
- name: WORKER_DEPLOYMENT_NAME
  value: {{ $v.workerVersioning.deploymentName | quote }}
- name: WORKER_BUILD_ID
  value: {{ $p.build.id | quote }}
# A pool never routes orders to its build, the first one included: an operator ramps and promotes
# (npm run deploy -- promote <id>), so adding a build to the values changes nothing for new orders.
- name: WORKER_SET_CURRENT
  value: never
- name: WORKER_MAX_CONCURRENT_ACTIVITIES
  value: {{ $p.values.maxConcurrentActivities | int | quote }}
{{- with $p.values.maxCachedWorkflows }}
- name: WORKER_MAX_CACHED_WORKFLOWS
  value: {{ . | int | quote }}
{{- end }}
{{- end }}
{{- if $p.temporal }}
{{- include "op.temporalEnv" $root }}
{{- end }}
{{- if $p.keyring }}
- name: PAYLOAD_KEYRING_FILE
  value: {{ printf "%s/%s" (include "op.keyringDir" $root) $v.payloadKeyring.key | quote }}
{{- end }}
{{- range $db, $d := $p.databases }}
- name: {{ upper $db }}_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.databases.secretName }}
      key: {{ upper $db }}_DATABASE_URL
- name: {{ $d.poolEnv }}
  value: {{ $d.size | int | quote }}
{{- end }}
{{- if eq $p.name "api" }}
# Each pool's HTTP endpoint: /healthz for the API's own, and inventory's /products for the catalogue.
# The pool's Service across builds (services.yaml): a build added or removed does not restart the API,
# and a new build whose pods are not ready is not asked.
{{- range $pool := list "orders" "inventory" "payments" "shipping" }}
- name: {{ upper $pool }}_WORKER_URLS
  value: {{ printf "http://%s:9464" (include "op.resourceName" (dict "root" $root "name" (printf "%s-worker" $pool))) | quote }}
{{- end }}
{{- if $v.auth.enabled }}
# Tokens name the auth service by its public URL; the API fetches its signing keys inside the cluster.
- name: AUTH_ISSUER
  value: {{ $v.auth.issuer | quote }}
- name: AUTH_JWKS_URL
  value: {{ printf "http://%s:%d/.well-known/jwks.json" (include "op.resourceName" (dict "root" $root "name" "auth")) (int $v.auth.port) | quote }}
{{- end }}
{{- end }}
{{- if eq $p.name "auth" }}
- name: AUTH_ISSUER
  value: {{ $v.auth.issuer | quote }}
{{- with $v.auth.tokenTtl }}
- name: AUTH_TOKEN_TTL
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if eq $p.name "codec-server" }}
- name: CODEC_CORS_ORIGINS
  value: {{ $v.codecServer.corsOrigins | quote }}
{{- end }}
{{- range $name, $value := $p.values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The Temporal connection, as the Temporal CLI's variables (read with @temporalio/envconfig). */}}
{{- define "op.temporalEnv" -}}
{{- $t := .Values.temporal }}
- name: TEMPORAL_ADDRESS
  value: {{ $t.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ $t.namespace | quote }}
{{- if eq $t.auth "apiKey" }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $t.apiKey.secretName }}
      key: {{ $t.apiKey.key }}
{{- end }}
{{- if $t.tls.enabled }}
- name: TEMPORAL_TLS
  value: "true"
{{- with $t.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- if eq $t.auth "mtls" }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: {{ printf "%s/%s" (include "op.temporalTlsDir" .) $t.tls.certKey | quote }}
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: {{ printf "%s/%s" (include "op.temporalTlsDir" .) $t.tls.keyKey | quote }}
{{- end }}
{{- with $t.tls.caKey }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: {{ printf "%s/%s" (include "op.temporalTlsDir" $) . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes of a process's pod and their mounts. Arguments: root, p. */}}
{{- define "op.volumes" -}}
{{- $v := .root.Values -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpSizeLimit }}
{{- if .p.keyring }}
- name: payload-keyring
  secret:
    secretName: {{ $v.payloadKeyring.secretName }}
    defaultMode: 0440
    items:
      - key: {{ $v.payloadKeyring.key }}
        path: {{ $v.payloadKeyring.key }}
{{- end }}
{{- if and .p.temporal (include "op.temporalTlsFiles" .root) }}
- name: temporal-tls
  secret:
    secretName: {{ $v.temporal.tls.secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "op.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .p.keyring }}
- name: payload-keyring
  mountPath: {{ include "op.keyringDir" .root }}
  readOnly: true
{{- end }}
{{- if and .p.temporal (include "op.temporalTlsFiles" .root) }}
- name: temporal-tls
  mountPath: {{ include "op.temporalTlsDir" .root }}
  readOnly: true
{{- end }}
{{- end -}}
