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

{{- define "op.selectorLabels" -}}
app.kubernetes.io/name: {{ include "op.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "op.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "op.selectorLabels" . }}
app.kubernetes.io/version: {{ include "op.imageTag" .root | quote }}
app.kubernetes.io/part-of: order-platform
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "op.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "op.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "op.imageTag" .) -}}
{{- end -}}

{{/* WORKER_BUILD_ID: a new image is a new build unless the values say otherwise. */}}
{{- define "op.buildId" -}}
{{- .Values.workerVersioning.buildId | default (include "op.imageTag" .) -}}
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
