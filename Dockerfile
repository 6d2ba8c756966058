# Multi-stage build: compile in the Rust image, run from a small Debian base.
#
# Under Docker:
#   docker run --network host corelay --config /etc/corelay.yaml
# `--network host` keeps the UDP ports the shards advertise reachable without NAT.
# corelay needs no io_uring, locked memory or extra seccomp rights (epoll only).
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
