"""Firewall rules a test makes for itself: an nftables table of its own that drops
chosen traffic to its server's media ports, removed afterwards. Needs root and nft."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from typing import Iterator

import pytest

from conftest import _Server

# IPv6 addresses come bracketed, so the lists run to the last `]` of their field.
SHARD_STARTED = re.compile(r"shard started .*? udp=\[(.*)\] tcp=\[(.*)\]\s*$", re.M)

usable = os.geteuid() == 0 and shutil.which("nft") is not None
needs_nft = pytest.mark.skipif(not usable, reason="needs root and nft")


def nft(*args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["nft", *args], input=input, capture_output=True, text=True, check=True
    ).stdout


def media_addrs(server: _Server, shards: int = 1) -> tuple[list[str], list[str]]:
    """Every shard's advertised UDP and TCP addresses, from their start-up log lines."""
    for _ in range(100):
        found = SHARD_STARTED.findall(server.logs())
        if len(found) >= shards:
            udp = [a for u, _ in found for a in u.split(", ")]
            tcp = [a for _, t in found for a in t.split(", ")]
            return udp, tcp
        time.sleep(0.05)
    pytest.fail(f"not {shards} 'shard started' lines\n{server.describe()}", pytrace=False)


def ports(addrs: list[str]) -> str:
    """`a, b` for an nft set: the distinct ports of `addrs`."""
    return ", ".join(sorted({a.rsplit(":", 1)[1] for a in addrs}))


class Dropping:
    """An nft table whose `hook` chain (input or output) holds `rules` (each one ending
    in `counter drop`)."""

    def __init__(self, rules: list[str], hook: str = "input") -> None:
        self.table = f"corelay_test_{uuid.uuid4().hex[:8]}"
        body = "\n".join(rules)
        nft(
            "-f",
            "-",
            input=f"table inet {self.table} {{\n chain {hook} {{\n"
            f"  type filter hook {hook} priority 0; policy accept;\n{body}\n }}\n}}",
        )

    def dropped(self) -> list[int]:
        """Packets each rule dropped so far, in order."""
        listing = nft("list", "table", "inet", self.table)
        return [int(n) for n in re.findall(r"counter packets (\d+)", listing)]

    def remove(self) -> None:
        subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)


@contextlib.contextmanager
def dropping(rules: list[str], hook: str = "input") -> Iterator[Dropping]:
    table = Dropping(rules, hook)
    try:
        yield table
    finally:
        table.remove()
