"""`rtc.allow_tcp_fallback` (on by default, as LiveKit's): a client whose connection
fails over UDP while its signal connection is up is steered to ICE/TCP on its next join.

The failure is an MTU black hole this test makes for itself (an nftables table of its
own, removed afterwards): UDP datagrams over 300 bytes from the server's media port are
dropped. ICE's small checks pass, so ICE picks the UDP pair, and DTLS's certificate
flight never arrives: the SDK's first attempt times out (15 s) and it retries by
itself. Without steering the retry picks UDP again and fails the same way (checked by
hand with `allow_tcp_fallback: false`: all three attempts failed); steered, the server
offers only its TCP candidate and the call decodes, with the rule still in place."""

from __future__ import annotations

import asyncio
import re

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from firewall import dropping, media_addrs, needs_nft, ports
from sources import alice_to_bob

CONFIG = "prometheus:\n  port: 0\n"
STEERED = re.compile(r"ICE fallback.*identity=(\w+).*preference=Tcp")


@needs_nft
def test_a_client_whose_udp_fails_is_steered_to_ice_tcp() -> None:
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": CONFIG})
    _SERVERS.append(server)
    try:
        c = Corelay(server.wait_ready(), API_KEY, API_SECRET)
        udp, _tcp = media_addrs(server)
        black_hole = f"udp sport {{ {ports(udp)} }} udp length > 300 counter drop"
        with dropping([black_hole], hook="output") as firewall:
            got = asyncio.run(
                asyncio.wait_for(alice_to_bob(c.url, lambda who: c.join_token("fallback", who)), 120)
            )
            assert got >= 10, f"bob decoded {got} frames after being steered to ICE/TCP"
            assert firewall.dropped()[0] > 0, "nothing was dropped: the rule proved nothing"
        steered = set(STEERED.findall(server.logs()))
        assert steered == {"alice", "bob"}, f"steered: {steered}\n{server.describe()}"
    finally:
        server.stop()
        _SERVERS.remove(server)
