# syntax=docker/dockerfile:1
#
# scaleset-watch container image: a static (musl) binary on distroless/static, running as
# the distroless "nonroot" user (65532), which the Helm chart's securityContext expects.
#
#   docker build -t scaleset-watch:dev .
#   docker run --rm scaleset-watch:dev crd
#
# Note: the development machines of this project have no Docker engine, so this file is not
# built in CI here; keep it minimal. The builder stage runs on the target platform (BuildKit
# --platform), so `uname -m` picks the matching musl target (x86_64 or aarch64); C code
# (ring) is compiled with musl-tools' musl-gcc (TARGET_CC) so the binary is fully static.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eux; \
    target="$(uname -m)-unknown-linux-musl"; \
    rustup target add "$target"; \
    TARGET_CC=musl-gcc cargo build --release --locked --bin scaleset-watch --target "$target"; \
    install -D -m 0755 "target/$target/release/scaleset-watch" /out/scaleset-watch

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="scaleset-watch" \
      org.opencontainers.image.description="Kubernetes controller that watches the health of Azure VM Scale Sets" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/scaleset-watch /scaleset-watch
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/scaleset-watch"]
CMD ["run"]
