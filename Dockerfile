# nasperf: a multi-stage build. The build stage has what compiling needs
# (protoc, libclang for lightgbm3-sys's bindings, CMake >= 3.28 for
# LightGBM's C++); the runtime stage has the binary and the C/C++ runtime it
# links, nothing else: no shell, no package manager, a non-root user.
#
#   docker build -t nasperf:dev .
#
# The runtime base must provide exactly what `ldd nasperf` lists;
# scripts/check-runtime-libs.sh checks that against this file's final FROM.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build

# Debian's cmake (3.25) is too old for LightGBM; the PyPI wheel is current.
# Package versions come from the pinned bookworm base: pinning each .deb
# would break the build at every Debian point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libclang-dev python3-pip \
    && rm -rf /var/lib/apt/lists/* \
    && pip3 install --no-cache-dir --break-system-packages cmake==3.31.6

WORKDIR /src

# Dependencies first, against placeholder sources, so that a change to
# nasperf's code does not recompile LightGBM and every crate.
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/core/Cargo.toml crates/core/Cargo.toml
COPY proto proto
COPY migrations migrations
RUN mkdir -p src benches crates/core/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/pareto.rs \
    && touch src/lib.rs crates/core/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src benches crates/core/src

COPY crates crates
COPY src src
COPY benches benches
# Touch so Cargo sees the real sources as newer than the placeholders.
RUN touch src/main.rs src/lib.rs crates/core/src/lib.rs \
    && cargo build --release --locked --bin nasperf \
    && install -m 0755 target/release/nasperf /nasperf

# glibc, libgcc_s, libstdc++ and libm: what the binary links (see above).
# No HEALTHCHECK: Kubernetes probes the gRPC health service natively, and
# the image has no shell or probe binary to run one.
# checkov:skip=CKV_DOCKER_2:Kubernetes uses native gRPC probes; no probe binary in a distroless image
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /nasperf /usr/local/bin/nasperf
# The embedded store's default place; on Kubernetes a volume (or
# PostgreSQL through DATABASE_URL) instead. Two glibc malloc arenas: with
# one per tokio worker thread, resident memory kept growing for several
# passes of the hostile-input catalogue before it levelled off
# (tests/api/hostile.rs runs the server this way).
ENV NASPERF_LISTEN=0.0.0.0:50051 \
    NASPERF_METRICS_LISTEN=0.0.0.0:9090 \
    NASPERF_LOG_FORMAT=json \
    NASPERF_DATA_DIR=/var/lib/nasperf \
    MALLOC_ARENA_MAX=2
USER 65532:65532
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/nasperf"]
CMD ["serve"]
