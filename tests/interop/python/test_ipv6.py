"""IPv6: a Python SDK client signals over [::1] and, with IPv4 UDP and every TCP
packet to the server's media ports dropped by a firewall table the test makes, its
media can only travel over the server's IPv6 host candidates; both sides decode."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from firewall import dropping, media_addrs, needs_nft, ports
from sources import alice_to_bob

WANT_FRAMES = 10


def v6_url(url: str) -> str:
    port = url.rsplit(":", 1)[1]
    return f"http://[::1]:{port}"


async def call(c: Corelay) -> None:
    got = await alice_to_bob(c.url, lambda who: c.join_token("ipv6", who), WANT_FRAMES)
    assert got >= WANT_FRAMES, f"bob decoded {got} frames over IPv6"


@needs_nft
def test_a_client_on_ipv6_connects_and_decodes() -> None:
    server = _Server(_binary())
    _SERVERS.append(server)
    try:
        url = v6_url(server.wait_ready())
        udp, tcp = media_addrs(server)
        v4 = [a for a in udp if ipaddress.ip_address(a.rsplit(":", 1)[0].strip("[]")).version == 4]
        v6 = [a for a in udp if a not in v4]
        if not v6:
            pytest.skip("this host has no IPv6 address to serve media on")
        rules = [
            f"meta nfproto ipv4 udp dport {{ {ports(v4)} }} counter drop",
            f"tcp dport {{ {ports(tcp)} }} counter drop",
        ]
        with dropping(rules) as firewall:
            asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 90))
            assert firewall.dropped()[0] > 0, "the SDK never tried IPv4: the rule proved nothing"
    finally:
        server.stop()
        _SERVERS.remove(server)
