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
import hashlib
import hmac
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


async def relayed(c: Corelay, port: int) -> tuple[str, str]:
    """Bob decodes through the relay; returns the probe participant's TURN credentials."""
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
    return own[0].username, own[0].credential


def allocate(username: str) -> bytes:
    """A TURN Allocate request naming `username` (no integrity: it is refused before)."""
    user = username.encode()
    attrs = struct.pack("!HHI", 0x0019, 4, 17 << 24)  # REQUESTED-TRANSPORT: UDP
    attrs += struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * (-len(user) % 4)
    return struct.pack("!HHI", 0x0003, len(attrs), 0x2112A442) + os.urandom(12) + attrs


MAGIC = 0x2112A442


def stun(method: int, attrs: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    """A STUN request, signed with the long-term `key` when given."""
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * (-len(v) % 4) for t, v in attrs)
    tid = os.urandom(12)
    if key is not None:
        head = struct.pack("!HHI", method, len(body) + 24, MAGIC) + tid
        body += struct.pack("!HH", 0x0008, 20) + hmac.new(key, head + body, hashlib.sha1).digest()
    return struct.pack("!HHI", method, len(body), MAGIC) + tid + body


def answer(s: socket.socket) -> tuple[int, dict[int, bytes]]:
    """The message type and attributes of the next STUN message on `s`."""
    data = s.recv(2048)
    kind, length = struct.unpack("!HH", data[:4])
    attrs, at = {}, 20
    while at < 20 + length:
        t, n = struct.unpack("!HH", data[at : at + 4])
        attrs[t] = data[at + 4 : at + 4 + n]
        at += 4 + n + (-n % 4)
    return kind, attrs


def error_code(attrs: dict[int, bytes]) -> int:
    raw = attrs[0x0009]
    return (raw[2] & 7) * 100 + raw[3]


def xor_peer(ip: str, port: int) -> bytes:
    addr = struct.unpack("!I", socket.inet_aton(ip))[0] ^ MAGIC
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC >> 16), addr)


def permissions(port: int, username: str, password: str) -> dict[str, int]:
    """Allocates with the given credentials (401 first, for the nonce), then asks for a
    permission towards a private and a loopback peer, and towards this host's own
    address: the error code of each answer (0 for success)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        transport = (0x0019, struct.pack("!I", 17 << 24))
        s.send(stun(0x0003, [transport, (0x0006, username.encode())]))
        kind, attrs = answer(s)
        assert kind == 0x0113 and error_code(attrs) == 401, (hex(kind), attrs)
        realm, nonce = attrs[0x0014], attrs[0x0015]
        key = hashlib.md5(username.encode() + b":" + realm + b":" + password.encode()).digest()
        auth = [(0x0006, username.encode()), (0x0014, realm), (0x0015, nonce)]
        s.send(stun(0x0003, [transport, *auth], key))
        kind, attrs = answer(s)
        assert kind == 0x0103, (hex(kind), attrs)
        codes = {}
        for peer in ("10.1.2.3", "127.0.0.1"):
            s.send(stun(0x0008, [(0x0012, xor_peer(peer, 5000)), *auth], key))
            kind, attrs = answer(s)
            codes[peer] = error_code(attrs) if kind == 0x0118 else 0
        return codes


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
        username, password = asyncio.run(asyncio.wait_for(relayed(c, port), 90))
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
        # Permissions towards private peers are refused (403); 127.0.0.1 is this node's
        # own media address here, which relayed clients must reach.
        before = refused(metrics)
        codes = permissions(port, username, password)
        assert codes == {"10.1.2.3": 403, "127.0.0.1": 0}, codes
        after = refused(metrics)
        assert after["denied_peer"] == before.get("denied_peer", 0) + 1, (before, after)
        logs = server.logs()
        assert "TURN allocation" in logs, "no allocation was made"
        nominated = re.findall(r"ICE nominated send from: \S+ to: \S+:(\d+) ", logs)
        relayed_pairs = [p for p in nominated if RELAY_START <= int(p) <= RELAY_END]
        assert relayed_pairs, f"ICE never nominated a relay address: {nominated}"
    finally:
        server.stop()
        _SERVERS.remove(server)
