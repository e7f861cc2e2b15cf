#!/usr/bin/env bash
# Assembles the root filesystem of the operator image: the static binary, a CA bundle and the
# nonroot user. The Dockerfile's builder stage and local image builds (make image, the e2e image
# tests) both use it, so every image holds the same files.
# Usage: scripts/image-rootfs.sh BINARY CA_BUNDLE OUTPUT_DIR
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 BINARY CA_BUNDLE OUTPUT_DIR" >&2
    exit 2
fi
binary="$1"
ca_bundle="$2"
output="$3"

for file in "${binary}" "${ca_bundle}"; do
    if [[ ! -f "${file}" ]]; then
        echo "image-rootfs: ${file} not found" >&2
        exit 1
    fi
done
# The image has no libc or loader: only a statically linked binary can start in it.
if command -v file >/dev/null && ! file --brief --dereference "${binary}" | grep -q 'static'; then
    echo "image-rootfs: ${binary} is not statically linked: $(file --brief --dereference "${binary}")" >&2
    exit 1
fi

if ! command -v strip >/dev/null; then
    echo "image-rootfs: strip not found (install binutils)" >&2
    exit 1
fi

rm -rf "${output}"
install -D -m 0755 "${binary}" "${output}/usr/local/bin/sync-client-operator"
# Symbols are a quarter of the binary and of no use in the image.
strip "${output}/usr/local/bin/sync-client-operator"
install -D -m 0644 "${ca_bundle}" "${output}/etc/ssl/certs/ca-certificates.crt"
# The same user as distroless' nonroot and the chart's runAsUser; no login shell exists.
install -d -m 0755 "${output}/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    >"${output}/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"${output}/etc/group"
chmod 0644 "${output}/etc/passwd" "${output}/etc/group"
echo "image-rootfs: wrote ${output}"
