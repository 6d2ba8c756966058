"""`rtc.turn_servers` and `rtc.stun_servers` reach clients in JoinResponse.ice_servers
as LiveKit hands them out: static credentials as configured, a shared `secret` as
TURN REST credentials (`expiry:participant sid`, base64 HMAC-SHA1), STUN servers as
one entry, and no public STUN servers added when none is configured."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from raw_signal import RawSignal

CONFIG = """rtc:
  stun_servers: [stun.example.com:3478]
  turn_servers:
    - host: turn.example.com
      port: 443
      protocol: tls
      secret: north
    - host: 10.0.0.9
      port: 3478
      protocol: udp
      username: alice
      credential: wonder
"""


async def joined(c: Corelay) -> object:
    raw, join = await RawSignal.join(c, "ice-servers", "ice")
    await raw.close()
    return join


def test_join_response_carries_the_configured_ice_servers() -> None:
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": CONFIG})
    _SERVERS.append(server)
    try:
        c = Corelay(server.wait_ready(), API_KEY, API_SECRET)
        before = int(time.time())
        join = asyncio.run(asyncio.wait_for(joined(c), 20))
        sid = join.participant.sid
        rest, static, stun = join.ice_servers
        assert list(rest.urls) == ["turns:turn.example.com:443?transport=tcp"]
        expiry, who = rest.username.split(":", 1)
        assert who == sid and before + 14400 <= int(expiry) <= int(time.time()) + 14400
        mac = hmac.new(b"north", rest.username.encode(), hashlib.sha1).digest()
        assert rest.credential == base64.b64encode(mac).decode()
        assert list(static.urls) == ["turn:10.0.0.9:3478?transport=udp"]
        assert (static.username, static.credential) == ("alice", "wonder")
        assert list(stun.urls) == ["stun:stun.example.com:3478"]
    finally:
        server.stop()
        _SERVERS.remove(server)


def test_no_public_stun_servers_by_default(corelay: Corelay) -> None:
    join = asyncio.run(asyncio.wait_for(joined(corelay), 20))
    assert list(join.ice_servers) == []
