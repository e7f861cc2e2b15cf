# syntax=docker/dockerfile:1
# Static, non-root image of the operator: FROM scratch with one static binary, a CA bundle and the
# nonroot user (65532), nothing else (no shell, no libc, no package manager).
#
#   docker build -t sync-client-operator:dev .          (or: podman build ...)
#
# The runtime stage takes its files from the stage named by RUNTIME_FILES:
#   builder (default)  compiles the binary in the Rust image below (needs a registry for it).
#   local              takes a ready root filesystem from the build context instead: a directory
#                      made by scripts/image-rootfs.sh from a locally built static binary, e.g.
#                        make image        (podman build --build-arg RUNTIME_FILES=local target/image-rootfs)
#                      The e2e tests build the image this way, so they build and run the very
#                      runtime stage shipped here.
# Both ways the binary is a static-pie glibc executable built with
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target <arch>-unknown-linux-gnu
# and scripts/image-rootfs.sh lays out the files.
#
# Contract with the chart: the entrypoint is the binary alone; the default command is `run`, and
# the chart's Deployment passes its own args, which start with `run`.
ARG RUNTIME_FILES=builder

# Compiles for the architecture it runs on (x86_64 or aarch64), so
# `docker buildx build --platform linux/amd64,linux/arm64` builds each platform natively or emulated.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-gnu" \
    && RUSTFLAGS="-C target-feature=+crt-static" \
       cargo build --release --locked --target "${target}" --bin sync-client-operator \
    && scripts/image-rootfs.sh "target/${target}/release/sync-client-operator" \
       /etc/ssl/certs/ca-certificates.crt /rootfs

# A root filesystem prepared outside (the build context is that directory).
FROM scratch AS local
COPY . /rootfs/

FROM ${RUNTIME_FILES} AS runtime-files

# The runtime stage: what ships.
FROM scratch
LABEL org.opencontainers.image.title="sync-client-operator" \
      org.opencontainers.image.description="Keeps VMware identity broker SCIM sync-client credentials fresh in Kubernetes Secrets" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=runtime-files /rootfs/ /
USER 65532:65532
ENV LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sync-client-operator"]
CMD ["run"]
