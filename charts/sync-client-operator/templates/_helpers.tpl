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

{{/*
The number of replicas: replicaCount, else the deprecated replicas, else 1. Both set to different
numbers is refused: which one the user meant cannot be told.
*/}}
{{- define "sync-client-operator.replicaCount" -}}
{{- $new := .Values.replicaCount }}
{{- $old := .Values.replicas }}
{{- if not (kindIs "invalid" $new) }}
{{- if and (not (kindIs "invalid" $old)) (ne (int $new) (int $old)) }}
{{- fail (printf "replicaCount (%d) and the deprecated replicas (%d) differ: set only replicaCount" (int $new) (int $old)) }}
{{- end }}
{{- int $new }}
{{- else if not (kindIs "invalid" $old) }}
{{- int $old }}
{{- else }}1
{{- end }}
{{- end }}

{{/*
The image pull Secrets as a YAML list of {name: ...} (empty when none): imagePullSecrets, else the
deprecated image.pullSecrets (names). Both set to different lists is refused.
*/}}
{{- define "sync-client-operator.imagePullSecrets" -}}
{{- $new := .Values.imagePullSecrets | default list }}
{{- $old := list }}
{{- range .Values.image.pullSecrets }}
{{- $old = append $old (dict "name" .) }}
{{- end }}
{{- if and $new $old (ne (toJson $new) (toJson $old)) }}
{{- fail (printf "imagePullSecrets %s and the deprecated image.pullSecrets %s differ: set only imagePullSecrets" (toJson $new) (toJson .Values.image.pullSecrets)) }}
{{- end }}
{{- with (default $old $new) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
"true" when leader election is on: forced by value, or needed by more than one replica. An explicit
false with more than one replica is ignored (the 0.1.0 meaning of false, deprecated; NOTES warns):
two replicas without leader election would both rotate, each revoking the other's credential.
*/}}
{{- define "sync-client-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int (include "sync-client-operator.replicaCount" .)) 1) }}true{{ end }}
{{- end }}

{{/* "true" when leader election is explicitly false but ignored because more than one replica runs. */}}
{{- define "sync-client-operator.leaderElectionFalseIgnored" -}}
{{- if and (eq (toString .Values.leaderElection.enabled) "false") (gt (int (include "sync-client-operator.replicaCount" .)) 1) }}true{{ end }}
{{- end }}

{{- define "sync-client-operator.leaseName" -}}
{{- default (include "sync-client-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
Milliseconds of a Go duration as the values schema admits it (`^([0-9]+(ms|s|m|h))+$`, the
operator's duration format). atoi, not add's own conversion, which reads a leading 0 as octal.
*/}}
{{- define "sync-client-operator.milliseconds" -}}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" . -1 }}
{{- if hasSuffix "ms" . }}
{{- $total = add $total (atoi (trimSuffix "ms" .)) }}
{{- else if hasSuffix "s" . }}
{{- $total = add $total (mul (atoi (trimSuffix "s" .)) 1000) }}
{{- else if hasSuffix "m" . }}
{{- $total = add $total (mul (atoi (trimSuffix "m" .)) 60000) }}
{{- else }}
{{- $total = add $total (mul (atoi (trimSuffix "h" .)) 3600000) }}
{{- end }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
The operator's default lease duration in seconds (`--lease-duration-seconds`), which renewGrace
must stay below when leaseDuration is not set. tests/chart.rs checks it against the binary's --help.
*/}}
{{- define "sync-client-operator.operatorLeaseDurationSeconds" -}}15{{- end }}

{{/* `--lease-duration-seconds` from leaderElection.leaseDuration; empty when unset. */}}
{{- define "sync-client-operator.leaseDurationSeconds" -}}
{{- with .Values.leaderElection.leaseDuration }}
{{- $ms := int64 (include "sync-client-operator.milliseconds" .) }}
{{- if or (mod $ms 1000) (lt $ms 3000) (gt $ms 300000) }}
{{- fail (printf "leaderElection.leaseDuration %q: must be whole seconds from 3s to 5m" .) }}
{{- end }}
{{- div $ms 1000 }}
{{- end }}
{{- end }}

{{/* `--lease-renew-grace-seconds` from leaderElection.renewGrace; empty when unset. */}}
{{- define "sync-client-operator.leaseRenewGraceSeconds" -}}
{{- $lease := include "sync-client-operator.leaseDurationSeconds" . | default (include "sync-client-operator.operatorLeaseDurationSeconds" .) | int64 }}
{{- with .Values.leaderElection.renewGrace }}
{{- $ms := int64 (include "sync-client-operator.milliseconds" .) }}
{{- if or (mod $ms 1000) (lt $ms 1000) (ge $ms (mul $lease 1000)) }}
{{- fail (printf "leaderElection.renewGrace %q: must be whole seconds, at least 1s and below the lease duration (%ds)" . $lease) }}
{{- end }}
{{- div $ms 1000 }}
{{- end }}
{{- end }}

{{/* minIssueInterval, checked against the operator's bounds; empty when unset. */}}
{{- define "sync-client-operator.minIssueInterval" -}}
{{- with .Values.minIssueInterval }}
{{- $ms := int64 (include "sync-client-operator.milliseconds" .) }}
{{- if or (lt $ms 1000) (gt $ms 3600000) }}
{{- fail (printf "minIssueInterval %q: must be from 1s to 1h" .) }}
{{- end }}
{{- . }}
{{- end }}
{{- end }}

{{/* Where the fingerprint key Secret is mounted, and the key's file in it. */}}
{{- define "sync-client-operator.workloadIdentityDir" -}}/var/run/secrets/azure/tokens{{- end }}

{{/* The termination grace period: at least the issue deadline (default 60 s) plus 30 s: the
operator waits one issue deadline plus 15 s (storing the credential and its status) for issues in
flight at SIGTERM, then releases the lease (at most 5 s), and the rest is margin for the exit. A
shorter value (0.1.0's values files say 60) is raised to it: a generate answered after the kill
would revoke the token stored. */}}
{{- define "sync-client-operator.terminationGracePeriodSeconds" -}}
{{- $needed := add (int (default 60 .Values.issueDeadlineSeconds)) 30 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}{{ $needed }}
{{- else }}{{ max (int .Values.terminationGracePeriodSeconds) $needed }}
{{- end }}
{{- end }}

{{- define "sync-client-operator.fingerprintKeyDir" -}}/etc/sync-client-operator/fingerprint-key{{- end }}
{{- define "sync-client-operator.fingerprintKeyFile" -}}{{ include "sync-client-operator.fingerprintKeyDir" . }}/key{{- end }}

{{/* "true" when a PodDisruptionBudget is rendered. */}}
{{- define "sync-client-operator.podDisruptionBudget" -}}
{{- if or .Values.podDisruptionBudget.enabled (gt (int (include "sync-client-operator.replicaCount" .)) 1) }}true{{ end }}
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
- apiGroups: ["syncclient.io"]
  resources: ["entraconnections"]
  verbs: ["get"]
{{- if .clusterWide }}
- apiGroups: ["syncclient.io"]
  resources: ["clusteridentitybrokers"]
  verbs: ["list", "watch"]
- apiGroups: ["syncclient.io"]
  resources: ["clusterentraconnections"]
  verbs: ["get"]
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
