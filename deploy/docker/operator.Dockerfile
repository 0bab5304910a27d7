# The operator: `docker build -f deploy/docker/operator.Dockerfile -t gyre/gyre-operator:0.1.0 .`
# (from the repository root). Multi-stage, non-root, slim Debian runtime.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gyre-operator --bin gyre-operator

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gyre-operator /usr/local/bin/gyre-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gyre-operator"]
CMD ["run"]
