"""ICE over TCP: with UDP to the server's media ports dropped by a firewall rule this
test makes for itself (an nftables table of its own, removed afterwards), the Python
SDK connects through the server's passive TCP candidates and both sides decode. The
rule's counter shows the SDK did try UDP first. Garbage and an oversized frame on the
TCP port close those connections only, and are counted."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
import uuid

import pytest
from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic, video_tracks

WANT_FRAMES = 10
SHARD_STARTED = re.compile(r"shard started .*udp=\[([^\]]*)\] tcp=\[([^\]]*)\]")


def nft(*args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["nft", *args], input=input, capture_output=True, text=True, check=True
    ).stdout


def media_addrs(server: _Server) -> tuple[list[str], list[str]]:
    """The shard's advertised UDP and TCP addresses, from its start-up log line."""
    for _ in range(100):
        m = SHARD_STARTED.search(server.logs())
        if m:
            return m.group(1).split(", "), m.group(2).split(", ")
        time.sleep(0.05)
    pytest.fail(f"no 'shard started' line\n{server.describe()}", pytrace=False)


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
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed = video_tracks(bob)
    try:
        await alice.connect(c.url, c.join_token("ice-tcp", "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token("ice-tcp", "bob"))
        video = await asyncio.wait_for(subscribed.get(), 20)
        got = await decoded_frames(video, WANT_FRAMES, 15)
        assert got >= WANT_FRAMES, f"bob decoded {got} frames over ICE/TCP"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")
def test_media_flows_over_ice_tcp_when_udp_is_blocked() -> None:
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": "prometheus:\n  port: 0\n"})
    _SERVERS.append(server)
    table = f"corelay_test_{uuid.uuid4().hex[:8]}"
    try:
        url = server.wait_ready()
        udp, tcp = media_addrs(server)
        assert closed_by_server(tcp[0], struct.pack("!H", 20) + os.urandom(20)), "garbage"
        assert closed_by_server(tcp[0], b"\xff\xff" + b"x" * 100), "oversized frame"
        for _ in range(30):
            if refused_count(server) >= 2:
                break
            time.sleep(0.1)
        assert refused_count(server) == 2, "both bad connections are counted"
        ports = ", ".join(sorted({a.rsplit(":", 1)[1] for a in udp}))
        nft(
            "-f",
            "-",
            input=f"""table inet {table} {{
                chain input {{
                    type filter hook input priority 0; policy accept;
                    udp dport {{ {ports} }} counter drop
                }}
            }}""",
        )
        asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 90))
        counted = re.search(r"counter packets (\d+)", nft("list", "table", "inet", table))
        assert counted and int(counted.group(1)) > 0, "the SDK never tried UDP: the rule proved nothing"
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
        server.stop()
        _SERVERS.remove(server)
