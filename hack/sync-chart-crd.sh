#!/usr/bin/env bash
# Copy the generated CRD (crds/scalesetwatches.yaml, itself the output of
# `cargo run -q -- crd`) into the Helm chart's crds/ directory, byte for byte.
#
#   hack/sync-chart-crd.sh          copy
#   hack/sync-chart-crd.sh --check  exit 1 (and show a diff) if the copy is stale
#
# tests/chart.rs fails when the two files differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/crds/scalesetwatches.yaml"
DST="$ROOT/charts/scaleset-watch/crds/scalesetwatches.yaml"

[[ -f $SRC ]] || { echo "sync-chart-crd: $SRC not found" >&2; exit 1; }

case "${1:-}" in
  --check)
    if cmp -s "$SRC" "$DST"; then
      exit 0
    fi
    echo "sync-chart-crd: $DST is out of date; run hack/sync-chart-crd.sh" >&2
    diff -u "$DST" "$SRC" >&2 || true
    exit 1
    ;;
  "")
    mkdir -p "$(dirname "$DST")"
    cp -f "$SRC" "$DST"
    echo "sync-chart-crd: copied crds/scalesetwatches.yaml -> charts/scaleset-watch/crds/" >&2
    ;;
  *)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
