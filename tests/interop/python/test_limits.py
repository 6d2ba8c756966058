"""`limit.*` keys do what LiveKit's do: an identity longer than
max_participant_identity_length gets 400, a node past num_tracks refuses joins with
503 (the SDK's connect fails, /rtc/validate says why), and subscription_limit_video
caps a viewer's video subscriptions, the waiting one starting when a slot frees."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.error
import urllib.request
from typing import Iterator

import pytest
from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from sources import CameraAndMic, decoded_frames, pump_video, video_tracks


@contextlib.contextmanager
def server_with(limits: str) -> Iterator[Corelay]:
    """A dev server whose config holds `limits` (YAML lines under `limit:`)."""
    body = "limit:\n" + "".join(f"  {line}\n" for line in limits.splitlines())
    server = _Server(_binary(), env={"LIVEKIT_CONFIG": body})
    _SERVERS.append(server)
    try:
        yield Corelay(server.wait_ready(), API_KEY, API_SECRET)
    finally:
        server.stop()
        _SERVERS.remove(server)


def validate(c: Corelay, token: str) -> tuple[int, str]:
    url = f"{c.url}/rtc/validate?access_token={token}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def node_limit(c: Corelay) -> None:
    status, message = validate(c, c.join_token("limits", "x" * 9))
    assert status == 400 and "identity length exceeds limits" in message, (status, message)

    alice = rtc.Room()
    media = CameraAndMic()
    try:
        await alice.connect(c.url, c.join_token("limits", "alice"))
        await alice.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("cam", media.video),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
        )
        # The shards report once a second.
        bob_token = c.join_token("limits", "bob")
        for _ in range(50):
            status, message = validate(c, bob_token)
            if status == 503:
                break
            await asyncio.sleep(0.1)
        assert status == 503 and "limit" in message, (status, message)
        with pytest.raises(rtc.ConnectError):
            await rtc.Room().connect(c.url, bob_token, rtc.RoomOptions(connect_timeout=5))
    finally:
        media.stop()
        await alice.disconnect()


def test_identity_length_and_node_track_limit() -> None:
    with server_with("num_tracks: 1\nmax_participant_identity_length: 8") as c:
        asyncio.run(asyncio.wait_for(node_limit(c), 60))


async def subscription_limit(c: Corelay) -> None:
    cams = {name: rtc.Room() for name in ("cam-a", "cam-b")}
    viewer = rtc.Room()
    tracks = video_tracks(viewer)
    stop = asyncio.Event()
    sources = {name: rtc.VideoSource(320, 240) for name in cams}
    pumps = [asyncio.create_task(pump_video(s, stop)) for s in sources.values()]
    try:
        await viewer.connect(c.url, c.join_token("sub-limit", "viewer"))
        for name, room in cams.items():
            await room.connect(c.url, c.join_token("sub-limit", name))
            await room.local_participant.publish_track(
                rtc.LocalVideoTrack.create_video_track(name, sources[name]),
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
            )
        first = await asyncio.wait_for(tracks.get(), 15)
        assert await decoded_frames(first, 5, 10) >= 5
        await asyncio.sleep(2)
        assert tracks.empty(), "a second video track came past subscription_limit_video: 1"

        owner = next(
            p.identity
            for p in viewer.remote_participants.values()
            if any(pub.track is first for pub in p.track_publications.values())
        )
        await cams[owner].disconnect()
        second = await asyncio.wait_for(tracks.get(), 15)
        assert second is not first
        got = await decoded_frames(second, 5, 10)
        assert got >= 5, f"{got} frames of the track that waited for the slot"
    finally:
        stop.set()
        for p in pumps:
            p.cancel()
        for room in cams.values():
            await room.disconnect()
        await viewer.disconnect()


def test_subscription_limit_video() -> None:
    with server_with("subscription_limit_video: 1") as c:
        asyncio.run(asyncio.wait_for(subscription_limit(c), 60))
