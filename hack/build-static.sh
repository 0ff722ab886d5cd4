#!/usr/bin/env bash
# Builds the release binary that goes into the container image: statically linked (musl),
# for this machine's architecture. Run from the root of a Docker build context, by the
# Dockerfile's `compiled` stage and by hack/image.sh, so both images hold the same build.
#
#   hack/build-static.sh OUT_DIR    writes OUT_DIR/scaleset-watch
#
# Needs musl-gcc (Debian: musl-tools) for ring's C code; adds the musl target with rustup
# when it is missing. Honours CARGO_TARGET_DIR.
set -euo pipefail
out=${1:?usage: hack/build-static.sh OUT_DIR}
target="$(uname -m)-unknown-linux-musl"
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  rustup target add "$target"
fi
command -v musl-gcc >/dev/null || { echo "build-static: musl-gcc (Debian: musl-tools) is required" >&2; exit 1; }
TARGET_CC=musl-gcc cargo build --release --locked --bin scaleset-watch --target "$target"
# Stripped: the symbols are a third of the file and nobody debugs inside the image.
install -D -s -m 0755 "${CARGO_TARGET_DIR:-target}/$target/release/scaleset-watch" "$out/scaleset-watch"
