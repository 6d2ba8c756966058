"""Unpublishing one track must not cost its subscribers their connection: the
subscriber sees `track_unpublished`, stays in the room, and keeps decoding the other
track. Tried for each track in turn, since the m-line that comes first in the
subscriber's SDP is the one whose removal used to end the subscriber session. Bob joins
after Alice published, so his subscriber offer carries her tracks before the data
channels: its first m-line (the BUNDLE tag) is one of her tracks."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc

from conftest import Corelay
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic

WANT_FRAMES = 10


async def unpublish_one(c: Corelay, room: str, remove: rtc.TrackKind.ValueType) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed: asyncio.Queue = asyncio.Queue()
    unpublished: asyncio.Queue = asyncio.Queue()
    bob_left = asyncio.Event()

    @bob.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        subscribed.put_nowait(track)

    @bob.on("track_unpublished")
    def _on_unpublished(publication, participant):  # type: ignore[no-untyped-def]
        unpublished.put_nowait(publication.sid)

    @bob.on("disconnected")
    def _on_disconnected(reason):  # type: ignore[no-untyped-def]
        bob_left.set()

    try:
        await alice.connect(c.url, c.join_token(room, "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token(room, "bob"))
        tracks: dict = {}
        while len(tracks) < 2:
            track = await asyncio.wait_for(subscribed.get(), 15)
            tracks[track.kind] = track
        for track in tracks.values():
            assert await decoded_frames(track, WANT_FRAMES, 10) >= WANT_FRAMES, "before unpublish"

        gone = next(
            p for p in alice.local_participant.track_publications.values() if p.kind == remove
        )
        await alice.local_participant.unpublish_track(gone.sid)
        assert await asyncio.wait_for(unpublished.get(), 10) == gone.sid
        # Long enough for the renegotiation that removes the m-line to finish.
        await asyncio.sleep(1.0)
        assert not bob_left.is_set(), "bob was disconnected by the unpublish"
        assert bob.connection_state == rtc.ConnectionState.CONN_CONNECTED
        kept = next(t for k, t in tracks.items() if k != remove)
        got = await decoded_frames(kept, WANT_FRAMES, 10)
        assert got >= WANT_FRAMES, f"the remaining track decoded {got} frames"
        assert not bob_left.is_set(), "bob was disconnected by the unpublish"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


@pytest.mark.parametrize(
    "remove",
    [rtc.TrackKind.KIND_VIDEO, rtc.TrackKind.KIND_AUDIO],
    ids=["unpublish-video", "unpublish-audio"],
)
def test_unpublish_keeps_subscriber_connected(corelay: Corelay, remove) -> None:  # type: ignore[no-untyped-def]
    name = "video" if remove == rtc.TrackKind.KIND_VIDEO else "audio"
    asyncio.run(asyncio.wait_for(unpublish_one(corelay, f"unpub-{name}", remove), 60))



async def resubscribe(c: Corelay, room: str) -> None:
    """Bob joins late, so alice's first track is his BUNDLE-tag line, which is parked
    (inactive) rather than rejected when he unsubscribes. Subscribing again must bring
    the track back on that line: a second line with the same msid made the SDK's SDP
    parser refuse the offer and abort the process."""
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed: asyncio.Queue = asyncio.Queue()
    bob_left = asyncio.Event()
    bob.on("track_subscribed", lambda track, pub, p: subscribed.put_nowait(track))
    bob.on("disconnected", lambda reason: bob_left.set())
    try:
        await alice.connect(c.url, c.join_token(room, "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token(room, "bob"))
        for _ in range(2):
            await asyncio.wait_for(subscribed.get(), 15)
        pubs = list(bob.remote_participants["alice"].track_publications.values())
        for pub in pubs:
            pub.set_subscribed(False)
        await asyncio.sleep(1.5)
        for pub in pubs:
            pub.set_subscribed(True)
        await asyncio.sleep(3)
        assert not bob_left.is_set(), "bob was disconnected"
        assert bob.connection_state == rtc.ConnectionState.CONN_CONNECTED
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


def test_unsubscribe_and_subscribe_again_keeps_the_sdk_alive(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(resubscribe(corelay, "resubscribe"), 60))
