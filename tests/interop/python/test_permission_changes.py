"""Grants changed through RoomService UpdateParticipant change what flows, as in
LiveKit: revoking can_subscribe takes a viewer's tracks away and granting it again
brings them back; revoking can_publish unpublishes, and after a new grant the
publisher can publish again. Frames are counted at each step."""

from __future__ import annotations

import asyncio

from livekit import api, rtc

from conftest import Corelay
from sources import (
    CameraAndMic,
    decoded_frames,
    publish_camera,
    publish_camera_and_mic,
    video_tracks,
)

ROOM = "permission-changes"


def grants(can_publish: bool = True, can_subscribe: bool = True) -> api.ParticipantPermission:
    return api.ParticipantPermission(
        can_publish=can_publish, can_subscribe=can_subscribe, can_publish_data=True
    )


async def set_grants(c: Corelay, identity: str, permission: api.ParticipantPermission) -> None:
    async with api.LiveKitAPI(c.url, c.api_key, c.api_secret) as lk:
        await lk.room.update_participant(
            api.UpdateParticipantRequest(room=ROOM, identity=identity, permission=permission)
        )


async def next_event(queue: asyncio.Queue, what: str, timeout: float = 10) -> object:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


async def frames_stop(track: rtc.Track, within: float = 10) -> bool:
    """True once a whole second passes without a decoded frame of `track`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await decoded_frames(track, 1000, 1.0) == 0:
            return True
    return False


async def scenario(c: Corelay) -> None:
    alice, viewer = rtc.Room(), rtc.Room()
    tracks = video_tracks(viewer)
    unpublished: asyncio.Queue = asyncio.Queue()
    viewer.on("track_unpublished", lambda pub, p: unpublished.put_nowait(pub.sid))
    media = CameraAndMic()
    again = None
    try:
        await alice.connect(c.url, c.join_token(ROOM, "alice"))
        await viewer.connect(c.url, c.join_token(ROOM, "viewer"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        track = await next_event(tracks, "video track")
        assert await decoded_frames(track, 5, 10) >= 5, "no frames before any change"

        await set_grants(c, "viewer", grants(can_subscribe=False))
        assert await frames_stop(track), "frames still flow after can_subscribe was revoked"
        await set_grants(c, "viewer", grants())
        track = await next_event(tracks, "video track after can_subscribe was granted")
        got = await decoded_frames(track, 5, 10)
        assert got >= 5, f"{got} frames after can_subscribe was granted again"

        await set_grants(c, "alice", grants(can_publish=False))
        gone = {await next_event(unpublished, "unpublish after can_publish was revoked") for _ in range(2)}
        assert len(gone) == 2, gone
        assert not viewer.remote_participants["alice"].track_publications
        await set_grants(c, "alice", grants())
        again = CameraAndMic()
        await publish_camera(alice.local_participant, again.video, "cam2")
        track = await next_event(tracks, "video track published after can_publish was granted")
        got = await decoded_frames(track, 5, 10)
        assert got >= 5, f"{got} frames after can_publish was granted again"
    finally:
        media.stop()
        if again:
            again.stop()
        await viewer.disconnect()
        await alice.disconnect()


def test_revoke_and_grant_change_what_flows(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(scenario(corelay), 90))
