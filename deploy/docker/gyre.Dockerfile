# The Gyre edge: `docker build -f deploy/docker/gyre.Dockerfile -t gyre/gyre:0.1.0 .`
# (from the repository root). Multi-stage: build with the Rust toolchain, run on a slim Debian
# as a non-root user with nothing but the binary and CA certificates.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gyre-edge --bin gyre

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gyre /usr/local/bin/gyre
USER 65532:65532
EXPOSE 8000 9000
ENTRYPOINT ["/usr/local/bin/gyre"]
CMD ["--config", "/etc/gyre/config.json"]
