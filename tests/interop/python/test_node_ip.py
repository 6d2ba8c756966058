"""`rtc.node_ip` set to an address of this host (here 127.0.0.1): the Python SDK
connects and decodes. The media socket used to be a wildcard bind whose replies left
from whatever source address the kernel chose, which did not match the address the
client had sent to, so ICE never completed."""

from __future__ import annotations

import asyncio

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from sources import alice_to_bob

WANT_FRAMES = 10


async def call(c: Corelay) -> None:
    got = await alice_to_bob(c.url, lambda who: c.join_token("node-ip", who), WANT_FRAMES)
    assert got >= WANT_FRAMES, f"bob decoded {got} frames"


def test_node_ip_of_this_host_connects_and_decodes() -> None:
    server = _Server(_binary(), extra_args=["--node-ip", "127.0.0.1"])
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 60))
    finally:
        server.stop()
        _SERVERS.remove(server)
