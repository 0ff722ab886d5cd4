#!/usr/bin/env bash
# The product image, from ./Dockerfile, built on this machine with buildah: no Docker engine,
# no registry. The binary is built by hack/build-static.sh in a copy of the Docker build
# context (so a context that cannot compile fails here as it would in `docker build`), then
# the Dockerfile's `prebuilt` path puts it on the same empty base as a registry build.
#
#   hack/image.sh context DIR       copy exactly what .dockerignore lets in into DIR (emptied
#                                   first; modification times kept, so cargo stays incremental)
#   hack/image.sh binary            copy the context to target/docker-context and build the
#                                   binary there (target/docker-context/prebuilt/scaleset-watch)
#   hack/image.sh build TAG FILE    the above, then build localhost/scaleset-watch:TAG and write
#                                   it to FILE as a docker-archive (what `ctr images import` reads)
#
# Environment: SSW_CACHE_DIR (buildah's storage lives in $SSW_CACHE_DIR/buildah).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${SSW_CACHE_DIR:-$HOME/.cache/scaleset-watch}"
IMAGE_REPO=localhost/scaleset-watch

log() { echo "image: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The paths .dockerignore lets in. Only the allow-list form is understood (`*`, then `!path`
# lines, no wildcards): anything else is refused rather than approximated.
allowed_paths() {
  local line first=1
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"}
    [[ -z $line ]] && continue
    if ((first)); then
      [[ $line == '*' ]] || die ".dockerignore must start with '*' (an allow-list); got: $line"
      first=0
      continue
    fi
    [[ $line == '!'* && $line != *[*?\[]* && $line != *..* ]] \
      || die "unsupported .dockerignore line (only '!path' is understood): $line"
    line=${line#!}
    line=${line#/}
    echo "${line%/}"
  done <"$root/.dockerignore"
}

cmd_context() {
  local dir=${1:?usage: hack/image.sh context DIR} p
  case $(realpath -m "$dir") in / | "$root" | "$HOME") die "refusing to empty $dir" ;; esac
  rm -rf "$dir"
  mkdir -p "$dir"
  while IFS= read -r p; do
    [[ -e $root/$p ]] || continue
    (cd "$root" && cp -a --parents "$p" "$dir/")
  done < <(allowed_paths)
}

ctx="$root/target/docker-context"

# Leaves the lock (fd 9) held: callers go on using the context.
cmd_binary() {
  mkdir -p "$root/target"
  # One build at a time: they share the context directory and the cargo target directory.
  exec 9>"$root/target/docker-context.lock"
  flock 9
  cmd_context "$ctx"
  log "building the release binary in the Docker build context (first time: several minutes)"
  # Run from `cargo test`, this script inherits cargo's and rustup's per-run variables; the
  # build must not see them, or the same build from a shell and from a test rebuilds each
  # time.
  local v
  for v in $(compgen -e); do
    case $v in
      CARGO | CARGO_PKG_* | CARGO_MANIFEST_* | CARGO_CRATE_* | CARGO_BIN_* | CARGO_PRIMARY_PACKAGE \
        | CARGO_TARGET_TMPDIR | LD_LIBRARY_PATH | RUSTUP_TOOLCHAIN | RUSTUP_TOOLCHAIN_SOURCE \
        | RUST_RECURSION_COUNT) unset "$v" ;;
    esac
  done
  (cd "$ctx" && CARGO_TARGET_DIR="$root/target/docker-build" hack/build-static.sh prebuilt) \
    || die "the Docker build context does not compile"
}

cmd_build() {
  local tag=${1:-} out=${2:-}
  [[ -n $tag && -n $out ]] || die "usage: hack/image.sh build TAG FILE"
  [[ $tag != latest ]] || die "use a versioned tag (pods pull 'latest' images with Always)"
  command -v buildah >/dev/null || die "buildah is required (Debian: buildah)"
  cmd_binary
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/prebuilt/" || die "no CA bundle on this machine"
  local b=(buildah --root "$CACHE_DIR/buildah/root" --runroot "$CACHE_DIR/buildah/runroot"
    --storage-driver vfs)
  "${b[@]}" bud -q --build-arg BINARY=prebuilt -f "$root/Dockerfile" \
    -t "$IMAGE_REPO:$tag" "$ctx" >/dev/null || die "buildah bud failed"
  rm -f "$out"
  "${b[@]}" push -q "$IMAGE_REPO:$tag" "docker-archive:$out:$IMAGE_REPO:$tag" >/dev/null \
    || die "buildah push failed"
  # Keep buildah's storage from growing by one image per tag.
  "${b[@]}" rmi -f "$IMAGE_REPO:$tag" >/dev/null 2>&1 || true
  log "$IMAGE_REPO:$tag -> $out"
}

case ${1:-} in
  context) shift; cmd_context "$@" ;;
  binary) cmd_binary ;;
  build) shift; cmd_build "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
