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

.PHONY: test tools generate fmt lint deny deny-advisories unit static-binary image

test: tools fmt lint deny unit

tools:
	scripts/install-tools.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# What may enter the dependency graph (deny.toml): licenses, duplicate versions, sources. Offline,
# against the committed Cargo.lock; every warning is an error.
deny:
	.tools/bin/cargo-deny --frozen check --deny warnings licenses bans sources

# Known vulnerabilities, unsound, yanked and unmaintained crates. Not part of `make test`: it clones
# the RustSec advisory database from GitHub, which the test machines cannot reach.
deny-advisories:
	.tools/bin/cargo-deny --locked check --deny warnings advisories

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

# The benchmark (docs/benchmarks.md): the release operator binary against both simulators,
# every scenario, one table. Pick scenarios and sizes with BENCH_ARGS, for a quick run e.g.
# `make bench BENCH_ARGS="--credentials 1000 --scenario issue-small,issue,renew"`.
BENCH_ARGS ?=
.PHONY: bench bench-heaptrack
bench:
	$(CARGO) build --release --locked --bin sync-client-operator
	$(CARGO) run --release --locked --example scale -- $(BENCH_ARGS)

# Where the operator's heap goes with N credentials issued, renewed and idle: heaptrack on a
# release build with line tables (its own target directory). The operator is ended with SIGKILL,
# so what heaptrack reports as leaked is what was live in the settled state; the peak is the
# issue burst. Needs heaptrack (Debian package).
HEAPTRACK_DIR ?= target/heaptrack
bench-heaptrack:
	CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_PROFILE_RELEASE_STRIP=none \
		$(CARGO) build --release --locked --bin sync-client-operator --target-dir $(HEAPTRACK_DIR)
	$(CARGO) build --release --locked --example scale
	rm -f $(HEAPTRACK_DIR)/operator.zst $(HEAPTRACK_DIR)/operator.gz
	$(CARGO) run --release --locked --example scale -- --scenario issue,renew,idle \
		--operator-binary $(HEAPTRACK_DIR)/release/sync-client-operator \
		--operator-wrapper "heaptrack -o $(HEAPTRACK_DIR)/operator" --end-with-sigkill $(BENCH_ARGS)
	heaptrack_print -f $(HEAPTRACK_DIR)/operator.zst --print-leaks=1 --print-peaks=1 \
		--print-allocators=0 --print-temporary=0 -n 25 > $(HEAPTRACK_DIR)/report.txt
	heaptrack_print -f $(HEAPTRACK_DIR)/operator.zst --print-peaks=0 --print-allocators=0 \
		--print-temporary=0 --flamegraph-cost-type leaked -F $(HEAPTRACK_DIR)/settled.stacks
	heaptrack_print -f $(HEAPTRACK_DIR)/operator.zst --print-peaks=0 --print-allocators=0 \
		--print-temporary=0 --flamegraph-cost-type peak -F $(HEAPTRACK_DIR)/peak.stacks
	@echo "heaptrack: $(HEAPTRACK_DIR)/report.txt, settled.stacks, peak.stacks"
