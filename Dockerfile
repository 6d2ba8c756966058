# Multi-stage build: compile in the Rust image, run from a small Debian base.
#
# glommio needs io_uring and locked memory. Under Docker:
#   docker run --network host --ulimit memlock=-1:-1 \
#     --security-opt seccomp=unconfined corelay --config /etc/corelay.yaml
# `--network host` keeps the UDP ports the shards advertise reachable without NAT;
# the default seccomp profile of older Docker versions blocks io_uring_setup.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin corelay

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /nonexistent corelay
COPY --from=build /src/target/release/corelay /usr/local/bin/corelay
COPY core-affinity.toml /etc/corelay/core-affinity.toml
COPY config-sample.yaml /etc/corelay/config-sample.yaml
USER corelay
# 7880 HTTP/WebSocket, 7881 ICE/TCP, 7882 ICE/UDP (single-port mode), 50000-60000 ICE/UDP range
EXPOSE 7880 7881 7882/udp 50000-60000/udp
ENTRYPOINT ["/usr/local/bin/corelay", "--core-affinity", "/etc/corelay/core-affinity.toml"]
