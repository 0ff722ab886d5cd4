{{/*
Chart name, truncated to 63 characters (DNS label limit).
*/}}
{{- define "scaleset-watch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, used as the prefix of every resource name and as the Lease name.
*/}}
{{- define "scaleset-watch.fullname" -}}
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

{{/*
Chart label value.
*/}}
{{- define "scaleset-watch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the lifetime of a release (Deployment selectors are immutable).
*/}}
{{- define "scaleset-watch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scaleset-watch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Kubernetes recommended labels.
*/}}
{{- define "scaleset-watch.labels" -}}
helm.sh/chart: {{ include "scaleset-watch.chart" . }}
{{ include "scaleset-watch.selectorLabels" . }}
app.kubernetes.io/version: {{ include "scaleset-watch.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: scaleset-watch
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Image tag (defaults to the chart appVersion).
*/}}
{{- define "scaleset-watch.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Full image reference; a digest wins over the tag.
*/}}
{{- define "scaleset-watch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "scaleset-watch.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "scaleset-watch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scaleset-watch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false (the name of an existing ServiceAccount)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespaces whose ScaleSetWatches may use the controller's own Azure identity, comma-separated
(SSW_AMBIENT_NAMESPACES): empty when disabled; by default only where the controller is meant to
serve, never every namespace.
*/}}
{{- define "scaleset-watch.ambientNamespaces" -}}
{{- $a := .Values.ambientCredentials }}
{{- if not $a.enabled }}
{{- else if $a.namespaces }}
{{- join "," $a.namespaces }}
{{- else }}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}
{{- end }}

{{/*
Cross-field validation that values.schema.json cannot express with a clear message.
Included from the Deployment so it runs for every render.
*/}}
{{- define "scaleset-watch.validate" -}}
{{- $id := .Values.azure.identity }}
{{- if and (eq $id.mode "workload") (not $id.clientId) }}
{{- fail "azure.identity.clientId is required when azure.identity.mode=workload: set it to the client ID (UUID) of the managed identity or app registration that has a federated credential for this ServiceAccount (system:serviceaccount:<namespace>:<serviceAccount.name>)" }}
{{- end }}
{{- if and (eq $id.mode "clientSecret") (not $id.existingSecret) }}
{{- fail "azure.identity.existingSecret is required when azure.identity.mode=clientSecret: the name of a Secret in the release namespace with the keys azure.identity.secretKeys.{tenantId,clientId,clientSecret}" }}
{{- end }}
{{- if and (ne $id.mode "workload") $id.tenantId }}
{{- fail "azure.identity.tenantId is only used with azure.identity.mode=workload (clientSecret mode reads the tenant from existingSecret)" }}
{{- end }}
{{- if and (eq $id.mode "clientSecret") $id.clientId }}
{{- fail "azure.identity.clientId is not used with azure.identity.mode=clientSecret (the client ID comes from existingSecret)" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true (otherwise every replica polls Azure and writes status)" }}
{{- end }}
{{- end }}
