# syntax=docker/dockerfile:1
#
# scaleset-watch container image: a static (musl) binary and the CA bundle on an empty base,
# running as 65532:65532 (non-root), which the Helm chart's securityContext expects.
#
#   docker build -t scaleset-watch:dev .                     # compiles in the rust image
#   docker buildx build --platform linux/amd64,linux/arm64 .  # what the release workflow does
#   hack/image.sh build TAG FILE                              # here: buildah, no registry
#
# The binary comes from the stage named by BINARY:
# - `compiled` (default): built inside rust:1-bookworm by hack/build-static.sh, for the
#   platform being built (BuildKit --platform), so multi-arch builds need no cross-compiler.
# - `prebuilt`: hack/build-static.sh's output put in the context at prebuilt/ by
#   hack/image.sh, on machines that cannot pull base images. Same script, same final stage.
# BuildKit and buildah build only the stages the final one needs, so neither pulls the
# other path's base image.

ARG BINARY=compiled

FROM rust:1-bookworm AS compiled
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The context is exactly what .dockerignore lets in.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/build-static.sh /out \
 && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS prebuilt
COPY prebuilt/scaleset-watch prebuilt/ca-certificates.crt /out/

FROM ${BINARY} AS binary

FROM scratch
LABEL org.opencontainers.image.title="scaleset-watch" \
      org.opencontainers.image.description="Kubernetes controller that watches the health of Azure VM Scale Sets" \
      org.opencontainers.image.source="https://github.com/scaleset-watch/scaleset-watch" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/scaleset-watch /scaleset-watch
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/scaleset-watch"]
CMD ["run"]
