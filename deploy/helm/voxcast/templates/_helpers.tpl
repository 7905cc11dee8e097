{{/* Chart name, overridable. */}}
{{- define "voxcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, or the release name alone when it already contains the chart name.
Cut to 63 characters because some Kubernetes name fields are limited to that (DNS label).
Component resources append a suffix, so the prefix is cut shorter to leave room for it.
*/}}
{{- define "voxcast.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one component's resources: fullname-component, within 63 characters. */}}
{{- define "voxcast.componentName" -}}
{{- $root := index . 0 }}{{ $component := index . 1 }}
{{- printf "%s-%s" (include "voxcast.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-") $component }}
{{- end }}

{{/* chart-version label value. */}}
{{- define "voxcast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every resource of the release. */}}
{{- define "voxcast.labels" -}}
helm.sh/chart: {{ include "voxcast.chart" . }}
{{ include "voxcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: voxcast
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "voxcast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: (list $ "render"). */}}
{{- define "voxcast.componentLabels" -}}
{{- $root := index . 0 }}
{{- include "voxcast.labels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Selector labels of one component: (list $ "render"). */}}
{{- define "voxcast.componentSelectorLabels" -}}
{{- $root := index . 0 }}
{{- include "voxcast.selectorLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* registry/repository:tag of an image block: (list $ .Values.render.image "suffix"). */}}
{{- define "voxcast.image" -}}
{{- $root := index . 0 }}{{ $image := index . 1 }}{{ $suffix := index . 2 }}
{{- $tag := printf "%s%s" (default $root.Chart.AppVersion $image.tag) $suffix }}
{{- if $image.registry }}
{{- printf "%s/%s:%s" $image.registry $image.repository $tag }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{/* Names of the shared ConfigMap and Secret. */}}
{{- define "voxcast.configName" -}}
{{- include "voxcast.componentName" (list . "config") }}
{{- end }}

{{- define "voxcast.secretName" -}}
{{- default (include "voxcast.componentName" (list . "secret")) .Values.secret.existingSecret }}
{{- end }}

{{/* ServiceAccount of the gateway (the one allowed to watch EndpointSlices). */}}
{{- define "voxcast.gatewayServiceAccount" -}}
{{- include "voxcast.componentName" (list . "gateway") }}
{{- end }}

{{/* Whether the gateway needs Kubernetes API access for render discovery. */}}
{{- define "voxcast.kubernetesDiscovery" -}}
{{- if and (eq .Values.gateway.renderDiscovery "kubernetes") .Values.gateway.rbac.create }}true{{ end }}
{{- end }}

{{/*
A value kept in a release Secret across upgrades: the configured one, else the one already in the
cluster, else a new random one. (list $ secretName key configuredValue)
*/}}
{{- define "voxcast.persistentSecretValue" -}}
{{- $root := index . 0 }}{{ $name := index . 1 }}{{ $key := index . 2 }}{{ $configured := index . 3 }}
{{- if $configured }}
{{- $configured }}
{{- else }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $name }}
{{- if and $existing $existing.data (hasKey $existing.data $key) }}
{{- index $existing.data $key | b64dec }}
{{- else }}
{{- randAlphaNum 48 }}
{{- end }}
{{- end }}
{{- end }}

{{/* VOXCAST_DATABASE_URL from externalDatabase, or empty (SQLite on the catalog claim). */}}
{{- define "voxcast.databaseUrl" -}}
{{- with .Values.externalDatabase }}
{{- if .enabled }}
{{- if .url }}
{{- .url }}
{{- else }}
{{- printf "postgresql+psycopg://%s:%s@%s:%d/%s" (urlquery .user) (urlquery .password) .host (int .port) .database }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Host of the in-chart Redis Service. */}}
{{- define "voxcast.redisHost" -}}
{{- include "voxcast.componentName" (list . "redis") }}
{{- end }}

{{/*
Env entries for the release Secret's keys one component needs: (list $ "catalog"). Every service
builds the same Settings, which refuses the development key in production, so all get the key.
*/}}
{{- define "voxcast.secretEnv" -}}
{{- $root := index . 0 }}{{ $component := index . 1 }}
{{- $existing := $root.Values.secret.existingSecret }}
{{- $keys := list "VOXCAST_SECRET_KEY" }}
{{- if and (eq $component "catalog") (or $existing $root.Values.externalDatabase.enabled) }}
{{- $keys = append $keys "VOXCAST_DATABASE_URL" }}
{{- end }}
{{- if and (eq $component "gateway") (not $root.Values.redis.enabled) (or $existing $root.Values.redis.externalUrl) }}
{{- $keys = append $keys "VOXCAST_REDIS_URL" }}
{{- end }}
{{- range $key := $keys }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ include "voxcast.secretName" $root }}
      key: {{ $key }}
      {{- if and $existing (ne $key "VOXCAST_SECRET_KEY") }}
      optional: true
      {{- end }}
{{- end }}
{{- if and (eq $component "gateway") $root.Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "voxcast.redisHost" $root }}
      key: password
- name: VOXCAST_REDIS_URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "voxcast.redisHost" $root }}:6379/0"
{{- end }}
{{- end }}

{{/* The pod-level parts every voxcast pod shares: pull secrets and security context. */}}
{{- define "voxcast.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* Writable /tmp for a read-only root filesystem: the volume and its mount. */}}
{{- define "voxcast.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "voxcast.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
