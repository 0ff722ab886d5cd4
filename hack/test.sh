#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the committed CRD and chart copy,
# unit tests, ARM client tests against the simulator, and end-to-end tests against a real
# kube-apiserver with real kubectl and helm (built from source and cached on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Control plane binaries and promtool (built once, then cached)"
hack/control-plane.sh build
hack/control-plane.sh promtool

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "Committed CRD and the chart's copy are current"
cargo run --quiet -- crd | diff -u crds/scalesetwatches.yaml - \
  || { echo "crds/scalesetwatches.yaml is stale: cargo run -q -- crd > crds/scalesetwatches.yaml"; exit 1; }
hack/sync-chart-crd.sh --check

step "cargo test (unit, simulator, ARM client, chart, end-to-end)"
# End-to-end tests mostly wait on poll intervals, so more threads than cores is right.
RUST_TEST_THREADS=${RUST_TEST_THREADS:-12} cargo test --all-targets --no-fail-fast
