{{/* Names, labels and the values every template shares. */}}

{{- define "op.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name alone when it already says order-platform. */}}
{{- define "op.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A resource of one process: <fullname>-<process>; 45 + "-inventory-worker" stays within 63. */}}
{{- define "op.resourceName" -}}
{{- printf "%s-%s" (include "op.fullname" .root) .name -}}
{{- end -}}

{{/*
Arguments: root, name (the process: its resources are <fullname>-<name>), and for a build's pool
component (<pool>-worker, shared by every build) and build (op.builds' entry). A build's pods carry
its slug, so that its Deployment, Service, PDB and ScaledObject select its pods and no other build's
(a pod two PDBs select cannot be evicted at all).
*/}}
{{- define "op.selectorLabels" -}}
app.kubernetes.io/name: {{ include "op.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component | default .name }}
{{- with .build }}
order-platform.io/build: {{ .slug }}
{{- end }}
{{- end -}}

{{- define "op.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "op.selectorLabels" . }}
app.kubernetes.io/version: {{ (.build).tag | default (include "op.imageTag" .root) | quote }}
app.kubernetes.io/part-of: order-platform
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/*
The image of the unversioned processes (API, auth, codec server) and of the migration Job: image.tag
when set, else the newest build's image (the last one listed), so that they run the newest code and
its migrations have run before any of it starts.
*/}}
{{- define "op.imageTag" -}}
{{- if .Values.image.tag -}}
{{- .Values.image.tag -}}
{{- else if .Values.builds -}}
{{- dig "image" "tag" "" (last .Values.builds) -}}
{{- else -}}
{{- .Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "op.image" -}}
{{- if or .Values.image.tag (not .Values.builds) -}}
{{- printf "%s:%s" .Values.image.repository (include "op.imageTag" .) -}}
{{- else -}}
{{- (last (include "op.builds" . | fromJsonArray)).image -}}
{{- end -}}
{{- end -}}

{{- define "op.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "op.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Where the mounted Secrets appear inside every container. */}}
{{- define "op.keyringDir" -}}/etc/order-platform/keyring{{- end -}}
{{- define "op.temporalTlsDir" -}}/etc/order-platform/temporal-tls{{- end -}}

{{/* The Temporal TLS Secret is mounted when it holds a client certificate (mtls) or a private CA. */}}
{{- define "op.temporalTlsFiles" -}}
{{- $t := .Values.temporal -}}
{{- if and $t.tls.enabled (or (eq $t.auth "mtls") $t.tls.caKey) -}}true{{- end -}}
{{- end -}}

{{/*
Checks the values that depend on each other (values.schema.json checks each one alone), with a
message naming the value to set.
*/}}
{{- define "op.checkValues" -}}
{{- $v := .Values -}}
{{- $_ := required "temporal.address is required: the Temporal frontend's host:port" $v.temporal.address -}}
{{- $_ = required "payloadKeyring.secretName is required: a Secret holding the payload keyring JSON" $v.payloadKeyring.secretName -}}
{{- $_ = required "databases.secretName is required: a Secret with one <NAME>_DATABASE_URL key per database" $v.databases.secretName -}}
{{- if eq $v.temporal.auth "apiKey" -}}
{{- $_ = required "temporal.apiKey.secretName is required with temporal.auth=apiKey" $v.temporal.apiKey.secretName -}}
{{- if not $v.temporal.tls.enabled -}}
{{- fail "temporal.auth=apiKey needs temporal.tls.enabled=true: an API key must not cross the network in clear" -}}
{{- end -}}
{{- end -}}
{{- if eq $v.temporal.auth "mtls" -}}
{{- if not $v.temporal.tls.enabled -}}
{{- fail "temporal.auth=mtls needs temporal.tls.enabled=true" -}}
{{- end -}}
{{- $_ = required "temporal.tls.secretName is required with temporal.auth=mtls" $v.temporal.tls.secretName -}}
{{- end -}}
{{- if and $v.temporal.tls.caKey (not $v.temporal.tls.secretName) -}}
{{- fail "temporal.tls.caKey is set but temporal.tls.secretName is not: name the Secret that holds the CA" -}}
{{- end -}}
{{- if $v.auth.enabled -}}
{{- $_ = required "auth.issuer is required when auth.enabled: the auth service's public URL" $v.auth.issuer -}}
{{- end -}}
{{- if $v.codecServer.enabled -}}
{{- $_ = required "codecServer.corsOrigins is required when codecServer.enabled: the Temporal Web UI's origin" $v.codecServer.corsOrigins -}}
{{- end -}}
{{- end -}}
