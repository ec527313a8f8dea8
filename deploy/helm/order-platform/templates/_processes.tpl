{{/*
The platform's processes, one entry each, as YAML for `fromYaml`: what each runs, which port it
serves, whether it talks to Temporal and reads the keyring, which databases it opens (fixed by the
code; the values give only the pool sizes) and the most pods it can have. The API, auth and the codec
server are one process each; every pool is one process per listed build (<pool>-<build slug>), all of
whose pods may run at once. The Deployments, Services, PDBs, autoscalers and the connection budget
are all rendered from this one list.
*/}}

{{/* One process's entry. Arguments: root, name, values, kind, command, port, temporal, keyring, databases (db -> pool env var), and for a build's pool: component, label, build. */}}
{{- define "op.process" -}}
{{- $v := .values -}}
{{- $autoscaled := false -}}
{{- $most := $v.replicas -}}
{{- if $v.autoscaling.enabled -}}
{{- $autoscaled = true -}}
{{- $most = $v.autoscaling.maxReplicas -}}
{{- end -}}
{{- if and $autoscaled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail (printf "%s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" (.label | default .name) (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- /* values.schema.json says so too; this holds whatever the schema becomes. */ -}}
{{- if and .build (lt (int (ternary $v.autoscaling.minReplicas $v.replicas $autoscaled)) 1) -}}
{{- fail (printf "%s: at least one pod while the build is listed; a draining build's pinned orders still need its workers of every pool" .label) -}}
{{- end -}}
{{- $surge := int $v.rollout.maxSurge }}
{{ .name }}:
  name: {{ .name }}
  component: {{ .component | default .name }}
  # how the connection budget's messages name it
  label: {{ .label | default .name | quote }}
  kind: {{ .kind }}
  command: {{ .command }}
  port: {{ .port }}
  temporal: {{ .temporal }}
  keyring: {{ .keyring }}
  autoscaled: {{ $autoscaled }}
  replicas: {{ int $v.replicas }}
  {{- if $autoscaled }}
  minReplicas: {{ int $v.autoscaling.minReplicas }}
  maxReplicas: {{ int $v.autoscaling.maxReplicas }}
  {{- end }}
  maxSurge: {{ $surge }}
  {{- /* A rollout runs up to maxSurge pods above the count, each with its own pools. */}}
  maxPods: {{ add (int $most) $surge }}
  databases:
  {{- range $db, $poolEnv := .databases }}
    {{ $db }}:
      poolEnv: {{ $poolEnv }}
      size: {{ required (printf "%s.databasePools.%s is required: the pool size of its %s database" $.valuesPath $db $db) (index $v.databasePools $db) | int }}
  {{- else }} {}
  {{- end }}
  {{- with .build }}
  build:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  values:
    {{- toYaml $v | nindent 4 }}
{{- end -}}

{{- define "op.processes" -}}
{{- $root := . -}}
{{- $v := .Values -}}
{{- if $v.api.enabled }}
{{- include "op.process" (dict "root" $root "name" "api" "valuesPath" "api" "values" $v.api "kind" "http" "command" "api/main.ts" "port" $v.api.port "temporal" true "keyring" true "databases" (dict "orders" "API_DB_POOL_MAX")) }}
{{- end }}
{{- if $v.auth.enabled }}
{{- include "op.process" (dict "root" $root "name" "auth" "valuesPath" "auth" "values" $v.auth "kind" "http" "command" "auth/main.ts" "port" $v.auth.port "temporal" false "keyring" false "databases" (dict "auth" "AUTH_DB_POOL_MAX")) }}
{{- end }}
{{- if $v.codecServer.enabled }}
{{- include "op.process" (dict "root" $root "name" "codec-server" "valuesPath" "codecServer" "values" $v.codecServer "kind" "http" "command" "codec-server/main.ts" "port" $v.codecServer.port "temporal" false "keyring" true "databases" (dict)) }}
{{- end }}
{{- /* Each pool's databases: its own, and the simulations' sandbox ledger for payments and shipping. */}}
{{- $poolDatabases := dict "orders" (list "orders") "inventory" (list "inventory") "payments" (list "payments" "sandbox") "shipping" (list "shipping" "sandbox") }}
{{- /* Every build runs every pool: a pinned order's activities go to its own build's pools. */}}
{{- range $build := include "op.builds" $root | fromJsonArray }}
{{- range $pool := list "orders" "inventory" "payments" "shipping" }}
{{- $dbs := dict }}
{{- range $db := index $poolDatabases $pool }}
{{- $_ := set $dbs $db (printf "%s_DB_POOL_MAX" (upper $db)) }}
{{- end }}
{{- /* pools.<pool> are every build's defaults; builds[i].pools.<pool> overrides them for that build */}}
{{- $values := include "op.deepMerge" (dict "base" (index $v.pools $pool) "over" (index $build.pools $pool | default dict)) | fromJson }}
{{- $b := pick $build "id" "slug" "tag" "digest" "image" }}
{{- include "op.process" (dict "root" $root "name" (printf "%s-%s" $pool $build.slug) "component" (printf "%s-worker" $pool) "label" (printf "%s-worker (build %s)" $pool $build.id) "build" $b "valuesPath" (printf "builds[%d].pools.%s" (int $build.index) $pool) "values" $values "kind" "pool" "command" (printf "workers/%s.ts" $pool) "port" 9464 "temporal" true "keyring" true "databases" $dbs) }}
  pool: {{ $pool }}
{{- end }}
{{- end }}
{{- end -}}
