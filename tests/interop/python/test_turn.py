"""The embedded TURN server (`turn.enabled`, TURN over UDP): the JoinResponse names it
with credentials, and a participant whose client may use relay candidates only
(ice_transport_type RELAY) connects and decodes through it. The relayed path is proven
from the server's log: an allocation, and ICE nominating the relay address."""

from __future__ import annotations

import asyncio
import re
import socket

from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from raw_signal import RawSignal
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic, video_tracks

RELAY_START, RELAY_END = 41000, 41999
WANT = 5


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def config(port: int) -> str:
    return f"""turn:
  enabled: true
  udp_port: {port}
  tls_port: 0
  relay_range_start: {RELAY_START}
  relay_range_end: {RELAY_END}
"""


async def relayed(c: Corelay, port: int) -> None:
    raw, join = await RawSignal.join(c, "turn", "probe")
    await raw.close()
    own = [s for s in join.ice_servers if any(f":{port}?transport=udp" in u for u in s.urls)]
    assert own, list(join.ice_servers)
    assert own[0].username and own[0].credential

    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    tracks = video_tracks(bob)
    relay_only = rtc.RoomOptions(
        rtc_config=rtc.RtcConfiguration(ice_transport_type=rtc.IceTransportType.TRANSPORT_RELAY)
    )
    try:
        await alice.connect(c.url, c.join_token("turn", "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token("turn", "bob"), relay_only)
        track = await asyncio.wait_for(tracks.get(), 20)
        got = await decoded_frames(track, WANT, 15)
        assert got >= WANT, f"bob decoded {got} frames through the relay"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


def test_a_relay_only_client_connects_through_the_embedded_turn_server() -> None:
    port = free_udp_port()
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": config(port)})
    _SERVERS.append(server)
    try:
        c = Corelay(server.wait_ready(), API_KEY, API_SECRET)
        asyncio.run(asyncio.wait_for(relayed(c, port), 90))
        logs = server.logs()
        assert "TURN allocation" in logs, "no allocation was made"
        nominated = re.findall(r"ICE nominated send from: \S+ to: \S+:(\d+) ", logs)
        relayed_pairs = [p for p in nominated if RELAY_START <= int(p) <= RELAY_END]
        assert relayed_pairs, f"ICE never nominated a relay address: {nominated}"
    finally:
        server.stop()
        _SERVERS.remove(server)
