"""Grants are enforced on every subscribe path: a participant whose token lacks
can_subscribe cannot subscribe through UpdateSubscription (the SDK's
`set_subscribed`), while one with the grant can, in the same room."""

from __future__ import annotations

import asyncio

from livekit import api, rtc

from conftest import Corelay
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic

ROOM = "permissions-room"


def token(c: Corelay, identity: str, can_subscribe: bool) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM, can_subscribe=can_subscribe)
    return (
        api.AccessToken(c.api_key, c.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def scenario(c: Corelay) -> None:
    alice = rtc.Room()
    viewers = {"granted": rtc.Room(), "denied": rtc.Room()}
    subscribed: dict[str, asyncio.Queue] = {name: asyncio.Queue() for name in viewers}
    for name, room in viewers.items():
        room.on("track_subscribed", lambda track, pub, p, n=name: subscribed[n].put_nowait(track))
    media = CameraAndMic()
    try:
        await alice.connect(c.url, c.join_token(ROOM, "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        no_auto = rtc.RoomOptions(auto_subscribe=False)
        for name, room in viewers.items():
            await room.connect(c.url, token(c, name, name == "granted"), options=no_auto)
        for name, room in viewers.items():
            alice_remote = None
            for _ in range(100):
                alice_remote = room.remote_participants.get("alice")
                if alice_remote and len(alice_remote.track_publications) == 2:
                    break
                await asyncio.sleep(0.1)
            assert alice_remote, f"{name} does not see alice"
            for pub in alice_remote.track_publications.values():
                pub.set_subscribed(True)

        track = await asyncio.wait_for(subscribed["granted"].get(), 10)
        got = await decoded_frames(track, 5, 10)
        assert got >= 5, f"the granted viewer decoded {got} frames"
        await asyncio.sleep(2)
        assert subscribed["denied"].empty(), "a viewer without can_subscribe got a track"
    finally:
        media.stop()
        for room in viewers.values():
            await room.disconnect()
        await alice.disconnect()


def test_update_subscription_needs_can_subscribe(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(scenario(corelay), 60))
