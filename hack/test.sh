#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the committed CRD and chart copy,
# unit tests, ARM client tests against the simulator, end-to-end tests against a real
# kube-apiserver with real kubectl and helm (built from source and cached on first use), and
# the chart's pods on a real node (kubelet + containerd) with the image built from Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Control plane and node binaries, node packages, promtool (built once, then cached)"
hack/control-plane.sh build
hack/control-plane.sh promtool

step "The image's static release binary, built in the Docker build context (incremental)"
hack/image.sh binary

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Committed CRD and the chart's copy are current"
cargo run --quiet --bin scaleset-watch -- crd | diff -u crds/scalesetwatches.yaml - \
  || { echo "crds/scalesetwatches.yaml is stale: cargo run -q -- crd > crds/scalesetwatches.yaml"; exit 1; }
hack/sync-chart-crd.sh --check

step "cargo test --workspace (the simulator crate; the product's unit, ARM client, chart, end-to-end)"
# End-to-end tests mostly wait on poll intervals, so more threads than cores is right.
RUST_TEST_THREADS=${RUST_TEST_THREADS:-12} cargo test --workspace --all-targets --no-fail-fast
