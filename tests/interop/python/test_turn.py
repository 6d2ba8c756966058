"""The embedded TURN server (`turn.enabled`, TURN over UDP): the JoinResponse names it
with credentials, and a participant whose client may use relay candidates only
(ice_transport_type RELAY) connects and decodes through it. The relayed path is proven
from the server's log (an allocation, ICE nominating the relay address) and its
metrics (datagrams relayed both ways). Allocations with forged or expired credentials,
or past `per_user_relay_allocation_limit` (1 here, while the SDK allocates on every
TURN address it is given), are refused and counted, and the relayed participant is
unaffected."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import struct
import time
import urllib.request

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
    return f"""prometheus:
  port: 0
turn:
  enabled: true
  udp_port: {port}
  tls_port: 0
  relay_range_start: {RELAY_START}
  relay_range_end: {RELAY_END}
  per_user_relay_allocation_limit: 1
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


def allocate(username: str) -> bytes:
    """A TURN Allocate request naming `username` (no integrity: it is refused before)."""
    user = username.encode()
    attrs = struct.pack("!HHI", 0x0019, 4, 17 << 24)  # REQUESTED-TRANSPORT: UDP
    attrs += struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * (-len(user) % 4)
    return struct.pack("!HHI", 0x0003, len(attrs), 0x2112A442) + os.urandom(12) + attrs


def refused(metrics_url: str) -> dict[str, float]:
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    found = re.findall(r'corelay_turn_refused_total\{[^}]*reason="(\w+)"\} (\S+)', text)
    return {reason: float(v) for reason, v in found}


def test_a_relay_only_client_connects_through_the_embedded_turn_server() -> None:
    port = free_udp_port()
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": config(port)})
    _SERVERS.append(server)
    try:
        c = Corelay(server.wait_ready(), API_KEY, API_SECRET)
        asyncio.run(asyncio.wait_for(relayed(c, port), 90))
        metrics = server.metrics_url()
        text = urllib.request.urlopen(metrics, timeout=10).read().decode()
        # bob only subscribes: media reaches him through the relay, RTCP and checks leave.
        for direction, least in (("to_peer", 1), ("to_client", 10)):
            m = re.search(rf'corelay_turn_relayed_packet_total\{{[^}}]*direction="{direction}"\}} (\S+)', text)
            assert m and float(m.group(1)) >= least, (direction, text[-2000:])
        before = refused(metrics)
        forged = base64.urlsafe_b64encode(b"otherkey|PA_x|99999999999").decode().rstrip("=")
        expired = base64.urlsafe_b64encode(b"devkey|PA_x|1").decode().rstrip("=")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            for name in ("bm9ib2R5", forged, expired):
                s.sendto(allocate(name), ("127.0.0.1", port))
        for _ in range(50):
            after = refused(metrics)
            if after.get("expired", 0) > before.get("expired", 0) and after.get(
                "bad_credentials", 0
            ) >= before.get("bad_credentials", 0) + 2:
                break
            time.sleep(0.1)
        assert after["expired"] == before.get("expired", 0) + 1, (before, after)
        # The SDK allocates on every TURN address it was given; one per user is allowed.
        assert after["quota"] >= 1, after
        assert after["bad_credentials"] >= before.get("bad_credentials", 0) + 2, (before, after)
        logs = server.logs()
        assert "TURN allocation" in logs, "no allocation was made"
        nominated = re.findall(r"ICE nominated send from: \S+ to: \S+:(\d+) ", logs)
        relayed_pairs = [p for p in nominated if RELAY_START <= int(p) <= RELAY_END]
        assert relayed_pairs, f"ICE never nominated a relay address: {nominated}"
    finally:
        server.stop()
        _SERVERS.remove(server)
