"""`/rtc/v1`: the Python SDK with its default options signals on v1 with one peer
connection (no fallback to `/rtc`), publishes, subscribes early and late, exchanges
data, unpublishes and publishes again; `single_peer_connection=False` still gets v0.
Bad `join_request` values get 400 with a reason, never a crash."""

from __future__ import annotations

import asyncio
import base64
import gzip
import re
import socket
import time
import urllib.request
from urllib.error import HTTPError
from urllib.parse import quote

from typing import Iterator

import pytest
from livekit import rtc
from livekit.protocol import rtc as pb

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic, video_tracks

WANT = 5


@pytest.fixture
def server() -> Iterator[_Server]:
    """A server of this test's own: its log says what the joins used."""
    s = _Server(_binary())
    _SERVERS.append(s)
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()
        _SERVERS.remove(s)


def client(s: _Server) -> Corelay:
    return Corelay(s.wait_ready(), API_KEY, API_SECRET)


def joins(s: _Server, room: str, want: int) -> dict[str, str]:
    """identity → signal path ("v0"/"v1") of every join in `room`, from the server log
    (which may lag a little: waits for `want` joins)."""
    pattern = re.compile(rf'participant joined conn=\d+ room={room} identity=(\S+) .*signal="(v\d)"')
    for _ in range(50):
        found = {m.group(1): m.group(2) for m in pattern.finditer(s.logs())}
        if len(found) >= want:
            break
        time.sleep(0.1)
    return found


def peer_connections(s: _Server) -> list[str]:
    """The role of every peer connection the server created, from its log."""
    return re.findall(r"peer connection created conn=\d+ role=(\w+)", s.logs())


async def next_item(queue: asyncio.Queue, what: str, timeout: float = 15) -> object:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


async def v1_scenario(c: Corelay, room: str) -> None:
    alice, bob, carol = rtc.Room(), rtc.Room(), rtc.Room()
    media = CameraAndMic()
    bob_tracks, carol_tracks = video_tracks(bob), video_tracks(carol)
    got: dict[str, asyncio.Queue] = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
    for name, room_ in (("alice", alice), ("bob", bob)):
        room_.on("data_received", lambda p, name=name: got[name].put_nowait(p.data))
    try:
        await alice.connect(c.url, c.join_token(room, "alice"))
        await bob.connect(c.url, c.join_token(room, "bob"))  # subscribes early
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        early = await next_item(bob_tracks, "video track for bob")
        assert await decoded_frames(early, WANT, 10) >= WANT, "bob (early) decodes"

        await carol.connect(c.url, c.join_token(room, "carol"))  # subscribes late
        late = await next_item(carol_tracks, "video track for carol")
        assert await decoded_frames(late, WANT, 10) >= WANT, "carol (late) decodes"

        await alice.local_participant.publish_data(b"alice-to-bob", reliable=True)
        await bob.local_participant.publish_data(b"bob-to-alice", reliable=True)
        assert await next_item(got["bob"], "data for bob") == b"alice-to-bob"
        assert await next_item(got["alice"], "data for alice") == b"bob-to-alice"

        # Unpublish the camera and publish a new one: subscribers get the new track.
        cam = next(
            p.sid
            for p in alice.local_participant.track_publications.values()
            if p.kind == rtc.TrackKind.KIND_VIDEO
        )
        await alice.local_participant.unpublish_track(cam)
        await alice.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("cam2", media.video),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
        )
        again = await next_item(bob_tracks, "bob's track after the new publication")
        assert await decoded_frames(again, WANT, 10) >= WANT, "bob decodes the new camera"
        again = await next_item(carol_tracks, "carol's track after the new publication")
        assert await decoded_frames(again, WANT, 10) >= WANT, "carol decodes the new camera"
    finally:
        media.stop()
        for r in (carol, bob, alice):
            await r.disconnect()


def test_default_sdk_uses_v1_with_one_peer_connection(server: _Server) -> None:
    asyncio.run(v1_scenario(client(server), "v1-room"))
    assert joins(server, "v1-room", 3) == {"alice": "v1", "bob": "v1", "carol": "v1"}
    roles = peer_connections(server)
    assert roles == ["Single"] * 3, roles
    assert "path=/rtc/v1 status=404" not in server.logs()


async def v0_scenario(c: Corelay, room: str) -> None:
    options = rtc.RoomOptions(single_peer_connection=False)
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    tracks = video_tracks(bob)
    try:
        await alice.connect(c.url, c.join_token(room, "alice"), options)
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token(room, "bob"), options)
        track = await next_item(tracks, "video track over v0")
        assert await decoded_frames(track, WANT, 10) >= WANT
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


def test_v0_when_the_sdk_is_told_so(server: _Server) -> None:
    asyncio.run(v0_scenario(client(server), "v0-room"))
    assert joins(server, "v0-room", 2) == {"alice": "v0", "bob": "v0"}
    assert "Single" not in peer_connections(server)


def join_request(req: pb.JoinRequest, compress: bool) -> str:
    body = req.SerializeToString()
    wrapped = pb.WrappedJoinRequest(
        compression=pb.WrappedJoinRequest.GZIP if compress else pb.WrappedJoinRequest.NONE,
        join_request=gzip.compress(body) if compress else body,
    )
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()


def validate(c: Corelay, param: str | None) -> tuple[int, str]:
    url = f"{c.url}/rtc/v1/validate?access_token={c.join_token('v1-validate', 'x')}"
    if param is not None:
        url += "&join_request=" + quote(param)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except HTTPError as e:
        return e.code, e.read().decode()


def test_join_request_decoding_and_bad_values(corelay: Corelay) -> None:
    good = pb.JoinRequest(
        connection_settings=pb.ConnectionSettings(auto_subscribe=True),
        publisher_offer=pb.SessionDescription(type="offer", sdp="v=0\r\n" * 50),
    )
    for compress in (False, True):
        padded = join_request(good, compress)
        assert validate(corelay, padded) == (200, "success")
        assert validate(corelay, padded.rstrip("="))[0] == 200, "padding is optional"

    bomb = pb.WrappedJoinRequest(
        compression=pb.WrappedJoinRequest.GZIP,
        join_request=gzip.compress(b"\0" * (16 << 20)),
    )
    bad = {
        "missing": None,
        "not base64": "%%%not-base64%%%",
        "not a WrappedJoinRequest": base64.urlsafe_b64encode(b"\xff\xff\xff").decode(),
        "gzip bomb": base64.urlsafe_b64encode(bomb.SerializeToString()).decode(),
        "over the size cap": "A" * (50 * 1024),
    }
    for what, param in bad.items():
        status, body = validate(corelay, param)
        assert status == 400, (what, status, body)
        assert "join_request" in body, (what, body)
    # The server is still fine.
    assert validate(corelay, join_request(good, True))[0] == 200


def upgrade_status(c: Corelay, path_and_query: str) -> tuple[int, str]:
    """The status line and body of a WebSocket upgrade request the server refuses."""
    host, port = c.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            (
                f"GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n"
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 4:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.settimeout(1)
        try:
            while chunk := s.recv(4096):
                data += chunk
        except OSError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")


async def resume_with_a_foreign_sid(c: Corelay) -> None:
    a, b = rtc.Room(), rtc.Room()
    try:
        await a.connect(c.url, c.join_token("v1-resume-a", "alice"))
        await b.connect(c.url, c.join_token("v1-resume-b", "alice"))
        sid_a, sid_b = a.local_participant.sid, b.local_participant.sid
        assert sid_a != sid_b
        token_b = c.join_token("v1-resume-b", "alice")
        for label, sid in (("room a's sid", sid_a), ("an unknown sid", "PA_nobody")):
            req = pb.JoinRequest(reconnect=True, participant_sid=sid)
            path = f"/rtc/v1?access_token={token_b}&join_request={join_request(req, True)}"
            status, body = upgrade_status(c, path)
            assert status == 400, (label, status, body)
            assert sid in body, body
        # The bad resumes changed nothing: both still connected.
        await asyncio.sleep(0.5)
        assert a.connection_state == rtc.ConnectionState.CONN_CONNECTED
        assert b.connection_state == rtc.ConnectionState.CONN_CONNECTED
        bad = f"/rtc/v1?access_token={token_b}&join_request=%25%25"
        assert upgrade_status(c, bad)[0] == 400, "a bad join_request on the upgrade itself"
    finally:
        await a.disconnect()
        await b.disconnect()


def test_resume_naming_another_participants_sid_is_refused(corelay: Corelay) -> None:
    asyncio.run(resume_with_a_foreign_sid(corelay))
