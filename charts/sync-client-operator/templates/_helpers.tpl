{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sync-client-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources. */}}
{{- define "sync-client-operator.fullname" -}}
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

{{- define "sync-client-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sync-client-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sync-client-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sync-client-operator.labels" -}}
helm.sh/chart: {{ include "sync-client-operator.chart" . }}
{{ include "sync-client-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: sync-client-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sync-client-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sync-client-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sync-client-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced by value, or needed by more than one replica. */}}
{{- define "sync-client-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "sync-client-operator.leaseName" -}}
{{- default (include "sync-client-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* "true" when a PodDisruptionBudget is rendered. */}}
{{- define "sync-client-operator.podDisruptionBudget" -}}
{{- if or .Values.podDisruptionBudget.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{/*
The operator's Kubernetes API permissions: the ONE list of what it calls, rendered into the
ClusterRole (cluster-wide mode) or the Role (namespace mode). The e2e suite compares these rules
with the calls the operator really makes; change both together.
Argument: a dict with "clusterWide" (bool). Cluster-scoped resources (ClusterIdentityBrokers, and
namespaces for their namespaceSelector) are only listed cluster-wide: a Role cannot grant them.
Secrets have no delete: owned Secrets are garbage-collected with their SyncClientCredential.
*/}}
{{- define "sync-client-operator.rbac.operatorRules" -}}
- apiGroups: ["syncclient.io"]
  resources: ["syncclientcredentials"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["syncclient.io"]
  resources: ["identitybrokers"]
  verbs: ["list", "watch"]
- apiGroups: ["syncclient.io"]
  resources: ["syncclientcredentials/status", "identitybrokers/status"]
  verbs: ["patch"]
{{- if .clusterWide }}
- apiGroups: ["syncclient.io"]
  resources: ["clusteridentitybrokers"]
  verbs: ["list", "watch"]
- apiGroups: ["syncclient.io"]
  resources: ["clusteridentitybrokers/status"]
  verbs: ["patch"]
{{- end }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
{{- if .clusterWide }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets"]
  verbs: ["patch"]
{{- end }}

{{/* Leader election: the Lease in the release namespace only. */}}
{{- define "sync-client-operator.rbac.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "patch"]
{{- end }}
