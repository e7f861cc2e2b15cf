# syntax=docker/dockerfile:1
# Static, non-root image of the operator.
#   docker build -t sync-client-operator:dev .
# The builder compiles for the musl target of the machine it runs on (x86_64 or aarch64), so
# `docker buildx build --platform linux/amd64,linux/arm64` builds each platform natively or emulated.

FROM rust:1.95-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# ring compiles C and assembly: use the musl C compiler for the musl targets.
ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CC_aarch64_unknown_linux_musl=musl-gcc
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "${target}" \
    && cargo build --release --locked --target "${target}" --bin sync-client-operator \
    && cp "target/${target}/release/sync-client-operator" /sync-client-operator

# distroless static: no shell, no package manager, CA certificates and /etc/passwd for nonroot.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="sync-client-operator" \
      org.opencontainers.image.description="Keeps VMware identity broker SCIM sync-client credentials fresh in Kubernetes Secrets" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /sync-client-operator /usr/local/bin/sync-client-operator
USER 65532:65532
ENV LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sync-client-operator", "run"]
