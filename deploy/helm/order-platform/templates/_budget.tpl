{{/*
The database connection budget: for each database, the most connections every process could open
at once, summed over the processes that use it: (its most pods: autoscaling.maxReplicas when
autoscaled, else replicas, plus a rollout's maxSurge) x its pool size for that database, plus one
for the migration Job. Each listed build's pools are processes of their own: during a rollout the
old build and the new one may both be at their most pods (the old one busy with its pinned orders,
the new one taking new orders), and that is when a database would run out. Rendered as YAML for
`fromYaml`; budget.yaml fails the render when a total is over maxConnections - reserve, and
publishes the figures in a ConfigMap.
*/}}

{{/* The databases the migration Job connects to (scripts/migrate.ts: every service's, the sandbox, and auth's when it runs). */}}
{{- define "op.migrationDatabases" -}}
{{- $dbs := list "orders" "inventory" "payments" "shipping" "sandbox" -}}
{{- if .Values.auth.enabled -}}{{- $dbs = append $dbs "auth" -}}{{- end -}}
{{- toJson $dbs -}}
{{- end -}}

{{- define "op.budget" -}}
{{- $root := . -}}
{{- $processes := include "op.processes" . | fromYaml -}}
{{- $migrationDbs := ternary (include "op.migrationDatabases" . | fromJsonArray) (list) (and .Values.migrations.enabled true) -}}
{{- $databases := dict -}}
{{- $servers := dict -}}
{{- range $db := list "orders" "inventory" "payments" "shipping" "sandbox" "auth" -}}
{{- $limits := index $root.Values.databases $db -}}
{{- $users := dict -}}
{{- $total := 0 -}}
{{- range $name, $p := $processes -}}
{{- with index $p.databases $db -}}
{{- $connections := mul (int $p.maxPods) (int .size) -}}
{{- $_ := set $users $name (dict "label" $p.label "pods" (int $p.maxPods) "poolSize" (int .size) "connections" $connections) -}}
{{- $total = add $total $connections -}}
{{- end -}}
{{- end -}}
{{- if has $db $migrationDbs -}}
{{- $_ := set $users "migrations" (dict "pods" 1 "poolSize" 1 "connections" 1) -}}
{{- $total = add $total 1 -}}
{{- end -}}
{{- $allowed := sub (int $limits.maxConnections) (int $limits.reserve) -}}
{{- $entry := dict "maxConnections" (int $limits.maxConnections) "reserve" (int $limits.reserve) "allowed" $allowed "total" $total "processes" $users -}}
{{- with $limits.server -}}
{{- $_ := set $entry "server" . -}}
{{- $server := index $servers . | default (dict "databases" (list) "total" 0) -}}
{{- $_ = set $server "databases" (append $server.databases $db) -}}
{{- $_ = set $server "total" (add $server.total $total) -}}
{{- $_ = set $servers . $server -}}
{{- end -}}
{{- $_ := set $databases $db $entry -}}
{{- end -}}
{{- range $name, $server := $servers -}}
{{- $limits := index $root.Values.servers $name -}}
{{- if not $limits -}}
{{- fail (printf "databases.%s.server names %q, which is not under servers: declare servers.%s.maxConnections and reserve" (first $server.databases) $name $name) -}}
{{- end -}}
{{- $_ := set $server "maxConnections" (int $limits.maxConnections) -}}
{{- $_ = set $server "reserve" (int $limits.reserve) -}}
{{- $_ = set $server "allowed" (sub (int $limits.maxConnections) (int $limits.reserve)) -}}
{{- end -}}
{{- toYaml (dict "databases" $databases "servers" $servers) -}}
{{- end -}}

{{/* "api 3 pods x 5 = 15, migration Job 1, orders-worker (build 0.3.0-4f2c1aa) 2 pods x 5 = 10": how a total is made, for messages. */}}
{{- define "op.budgetTerms" -}}
{{- $terms := list -}}
{{- range $name, $u := .processes -}}
{{- if eq $name "migrations" -}}
{{- $terms = append $terms "migration Job 1" -}}
{{- else -}}
{{- $terms = append $terms (printf "%s %d pods x %d = %d" ($u.label | default $name) (int $u.pods) (int $u.poolSize) (int $u.connections)) -}}
{{- end -}}
{{- end -}}
{{- join ", " $terms -}}
{{- end -}}
