"""ICE over TCP: with UDP to the server's media ports dropped by a firewall rule this
test makes for itself (an nftables table of its own, removed afterwards), the Python
SDK connects through the server's passive TCP candidates and both sides decode. The
rule's counter shows the SDK did try UDP first. Garbage and an oversized frame on the
TCP port close those connections only, and are counted."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import struct
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS, affinity_args
from firewall import dropping, media_addrs, needs_nft, ports
from sources import alice_to_bob

WANT_FRAMES = 10


def closed_by_server(addr: str, payload: bytes) -> bool:
    """Sends `payload` on a new TCP connection; True once the server closes it."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as s:
        s.sendall(payload)
        try:
            while s.recv(4096):
                pass
        except (ConnectionResetError, socket.timeout):
            return False
    return True


def refused_count(server: _Server) -> int:
    with urllib.request.urlopen(server.metrics_url(), timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^corelay_ice_tcp_refused_total\{[^}]*\} (\S+)$", text, re.M)
    assert m, "no corelay_ice_tcp_refused_total"
    return int(float(m.group(1)))


async def call(c: Corelay) -> None:
    got = await alice_to_bob(c.url, lambda who: c.join_token("ice-tcp", who), WANT_FRAMES)
    assert got >= WANT_FRAMES, f"bob decoded {got} frames over ICE/TCP"


@needs_nft
@pytest.mark.parametrize("shards", [1, 3])
def test_media_flows_over_ice_tcp_when_udp_is_blocked(shards: int, tmp_path: Path) -> None:
    """With 3 shards each listens on its own TCP port; the room lands on one of them."""
    server = _Server(
        _binary(),
        extra_args=affinity_args(tmp_path, shards),
        env={"LIVEKIT_CONFIG": "prometheus:\n  port: 0\n"},
    )
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        udp, tcp = media_addrs(server, shards)
        assert closed_by_server(tcp[0], struct.pack("!H", 20) + os.urandom(20)), "garbage"
        assert closed_by_server(tcp[0], b"\xff\xff" + b"x" * 100), "oversized frame"
        for _ in range(30):
            if refused_count(server) >= 2:
                break
            time.sleep(0.1)
        assert refused_count(server) == 2, "both bad connections are counted"
        with dropping([f"udp dport {{ {ports(udp)} }} counter drop"]) as firewall:
            asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 90))
            assert firewall.dropped()[0] > 0, "the SDK never tried UDP: the rule proved nothing"
    finally:
        server.stop()
        _SERVERS.remove(server)
