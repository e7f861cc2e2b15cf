# One entry point for people and CI. `make test` is what CI runs.
CARGO ?= cargo

.PHONY: test tools generate fmt lint unit

test: tools fmt lint unit

tools:
	scripts/install-tools.sh

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

# Regenerates every generated file: CRDs (both copies) and the rendered manifests.
generate:
	$(CARGO) run --quiet -- crd --output-dir crds --output-dir charts/sync-client-operator/files/crds
	scripts/render-deploy.sh
