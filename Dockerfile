# Multi-stage build: a Rust toolchain builds a release binary; the runtime image holds only
# that binary and CA certificates, and runs as an unprivileged user with a read-only root
# filesystem (docker run --read-only works: the exporter writes nothing to disk).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/mailauth-exporter

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mailauth
COPY --from=build /src/target/release/mailauth-exporter /usr/local/bin/mailauth-exporter
COPY config.example.toml /etc/mailauth-exporter/config.example.toml
USER 10001:10001
EXPOSE 9744
ENTRYPOINT ["/usr/local/bin/mailauth-exporter"]
# Mount the real config at /etc/mailauth-exporter/config.toml; secrets as files or env.
# For TLS/basic auth mount a web config (examples/web-config.yml) and its certificate and
# key readable by uid 10001, and add --web.config.file /etc/mailauth-exporter/web.yml.
CMD ["--config", "/etc/mailauth-exporter/config.toml", "--web.listen-address", "0.0.0.0:9744"]
