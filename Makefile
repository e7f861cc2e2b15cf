# One entry point for people and CI. `make test` is what CI runs.
CARGO ?= cargo
# The container engine for `make image` (docker works too).
ENGINE ?= podman
IMAGE ?= localhost/sync-client-operator:dev
# podman: keep no intermediate stage images around.
ENGINE_BUILD_FLAGS := $(if $(filter podman,$(ENGINE)),--layers=false,)

# The static release binary the image holds (and the e2e image tests build into an image):
# glibc linked statically (static-pie), so it runs in a FROM scratch image. The tests expect it
# at this path (tests/e2e/packaging.rs); the Dockerfile's builder stage builds it the same way.
STATIC_TARGET := $(shell uname -m)-unknown-linux-gnu
STATIC_BINARY := target/$(STATIC_TARGET)/release/sync-client-operator

.PHONY: test tools generate fmt lint unit static-binary image

test: tools fmt lint unit

tools:
	scripts/install-tools.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The e2e image tests build the image from the static binary: build it first.
unit: static-binary
	$(CARGO) test --workspace --locked

static-binary:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked \
		--target $(STATIC_TARGET) --bin sync-client-operator

# The operator image from the local static binary, without a Rust base image: the Dockerfile's
# runtime stage with RUNTIME_FILES=local (see the Dockerfile).
image: static-binary
	scripts/image-rootfs.sh $(STATIC_BINARY) /etc/ssl/certs/ca-certificates.crt target/image-rootfs
	CONTAINERS_CONF="$(CURDIR)/tests/containers/containers.conf" \
		$(ENGINE) build $(ENGINE_BUILD_FLAGS) --file Dockerfile --build-arg RUNTIME_FILES=local --tag $(IMAGE) target/image-rootfs

# Regenerates every generated file: CRDs (both copies) and the rendered manifests.
generate:
	$(CARGO) run --quiet -- crd --output-dir crds --output-dir charts/sync-client-operator/files/crds
	scripts/render-deploy.sh
