"""A viewer whose token cannot publish (a broadcast's audience, the common livestream
setup) with the official SDK: it decodes the publisher's video and audio, and once
RoomService grants it publishing, the video it then publishes on the connection it
joined with is decoded by the publisher."""

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

ROOM = "viewers"


def viewer_token(c: Corelay, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM, can_publish=False, can_subscribe=True)
    return (
        api.AccessToken(c.api_key, c.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def next_track(queue: asyncio.Queue, what: str, timeout: float = 10) -> rtc.Track:
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


async def audio_track(room: rtc.Room, timeout: float = 10) -> rtc.Track:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        for p in room.remote_participants.values():
            for pub in p.track_publications.values():
                if pub.kind == rtc.TrackKind.KIND_AUDIO and pub.track is not None:
                    return pub.track
        await asyncio.sleep(0.05)
    raise AssertionError("no audio track")


async def scenario(c: Corelay) -> None:
    alice, viewer = rtc.Room(), rtc.Room()
    viewer_tracks = video_tracks(viewer)
    alice_tracks = video_tracks(alice)
    media = CameraAndMic()
    own = None
    try:
        await alice.connect(c.url, c.join_token(ROOM, "alice"))
        await viewer.connect(c.url, viewer_token(c, "viewer"))
        assert not viewer.local_participant.permissions.can_publish
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        track = await next_track(viewer_tracks, "video track at the viewer")
        got = await decoded_frames(track, 10, 15)
        assert got >= 10, f"the viewer decoded {got} video frames"
        got = await decoded_frames(await audio_track(viewer), 10, 15)
        assert got >= 10, f"the viewer decoded {got} audio frames"

        async with api.LiveKitAPI(c.url, c.api_key, c.api_secret) as lk:
            await lk.room.update_participant(
                api.UpdateParticipantRequest(
                    room=ROOM,
                    identity="viewer",
                    permission=api.ParticipantPermission(
                        can_publish=True, can_subscribe=True, can_publish_data=True
                    ),
                )
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not viewer.local_participant.permissions.can_publish:
            assert loop.time() < deadline, "the grant did not reach the viewer"
            await asyncio.sleep(0.05)
        own = CameraAndMic()
        await publish_camera(viewer.local_participant, own.video)
        track = await next_track(alice_tracks, "the former viewer's video at alice")
        got = await decoded_frames(track, 10, 15)
        assert got >= 10, f"alice decoded {got} frames of the former viewer's video"
    finally:
        media.stop()
        if own:
            own.stop()
        await viewer.disconnect()
        await alice.disconnect()


def test_a_viewer_receives_and_may_publish_after_a_grant(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(scenario(corelay), 90))
