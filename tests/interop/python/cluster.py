"""Helpers of the multi-node tests: a real `redis-server` on a free loopback port, and
corelay nodes that register with it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional

import pytest

from conftest import _binary, _Server, _SERVERS

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server (scripts/test installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """`redis-server` on 127.0.0.1:`port`, without persistence; can be stopped and
    started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="corelay-redis-")
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def config(redis: Redis, region: str = "", selector: str = "") -> str:
    text = f"prometheus:\n  port: 0\nredis:\n  address: 127.0.0.1:{redis.port}\n"
    if region:
        text += f"region: {region}\n"
    return text + selector


STARTED: list[_Server] = []


def node(redis: Redis, region: str = "", selector: str = "") -> _Server:
    """A node of the cluster; `stop_all` stops it."""
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": config(redis, region, selector)})
    _SERVERS.append(server)
    STARTED.append(server)
    server.wait_ready()
    return server


def stop_all() -> None:
    while STARTED:
        server = STARTED.pop()
        server.stop()
        if server in _SERVERS:
            _SERVERS.remove(server)


def node_id(server: _Server) -> str:
    for _ in range(100):
        m = re.search(r"joining the cluster.*node=(ND_\w+)", server.logs())
        if m:
            return m.group(1)
        time.sleep(0.05)
    pytest.fail(f"no node id in the log\n{server.describe()}")


def list_nodes(redis: Redis) -> dict[str, dict[str, str]]:
    """`corelay list-nodes`, parsed: node id → column → value."""
    out = subprocess.run(
        [str(_binary()), "--dev", "list-nodes"],
        env={**os.environ, "LIVEKIT_CONFIG": config(redis)},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    lines = out.strip().splitlines()
    header = lines[0].split()
    return {row.split()[0]: dict(zip(header, row.split())) for row in lines[1:]}


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")
