"""`rtc.node_ip` set to an address of this host (here 127.0.0.1): the Python SDK
connects and decodes. The media socket used to be a wildcard bind whose replies left
from whatever source address the kernel chose, which did not match the address the
client had sent to, so ICE never completed."""

from __future__ import annotations

import asyncio

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from firewall import dropping, media_addrs, needs_nft, ports
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


@needs_nft
def test_node_ip_on_a_wildcard_socket_replies_from_the_address_used() -> None:
    """The 1:1 NAT path: a wildcard media socket advertised as node_ip. Its replies
    must leave from the address each client sent to (IP_PKTINFO); from the kernel's
    own choice (this host's interface address, where the SDK's host candidate is) the
    SDK's ICE never completed. ICE/TCP is dropped so that only UDP can carry it."""
    server = _Server(
        _binary(),
        extra_args=["--node-ip", "127.0.0.1"],
        env={"CORELAY_MEDIA_WILDCARD": "1"},
    )
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        udp, tcp = media_addrs(server)
        assert udp[0].startswith("127.0.0.1:"), "advertised as node_ip"
        with dropping([f"tcp dport {{ {ports(tcp)} }} counter drop"]):
            asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 60))
    finally:
        server.stop()
        _SERVERS.remove(server)
