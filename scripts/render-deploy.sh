#!/usr/bin/env bash
# Renders the Helm chart with its default values into plain manifests for users without Helm.
# Usage: scripts/render-deploy.sh [OUTPUT]   (default: deploy/sync-client-operator.yaml)
# Needs .tools/bin/helm (scripts/install-tools.sh) or HELM=/path/to/helm.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
output="${1:-${repo_root}/deploy/sync-client-operator.yaml}"
helm="${HELM:-${repo_root}/.tools/bin/helm}"
namespace="sync-client-operator"
# The Kubernetes version the project targets; the chart's kubeVersion must accept it.
kube_version="1.34.0"

if [[ ! -x "${helm}" ]]; then
    echo "render-deploy: ${helm} not found; run scripts/install-tools.sh" >&2
    exit 1
fi

rendered="$("${helm}" template "${namespace}" "${repo_root}/charts/sync-client-operator" \
    --namespace "${namespace}" --kube-version "${kube_version}")"

cat >"${output}.tmp" <<HEADER
# GENERATED FILE, do not edit: rendered from charts/sync-client-operator with its default values.
# Regenerate with: scripts/render-deploy.sh
#
# Install: kubectl apply --server-side -f deploy/sync-client-operator.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${namespace}
  labels:
    app.kubernetes.io/part-of: sync-client-operator
    # The operator runs under the restricted Pod Security Standard.
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
${rendered}
HEADER
mv -f "${output}.tmp" "${output}"
echo "render-deploy: wrote ${output}"
