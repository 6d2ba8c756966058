"""`rtc.node_ip` set to an address of this host (here 127.0.0.1): the Python SDK
connects and decodes. The media socket used to be a wildcard bind whose replies left
from whatever source address the kernel chose, which did not match the address the
client had sent to, so ICE never completed."""

from __future__ import annotations

import asyncio

from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic, video_tracks

WANT_FRAMES = 10


async def call(c: Corelay) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed = video_tracks(bob)

    try:
        await alice.connect(c.url, c.join_token("node-ip", "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token("node-ip", "bob"))
        video = await asyncio.wait_for(subscribed.get(), 15)
        got = await decoded_frames(video, WANT_FRAMES, 10)
        assert got >= WANT_FRAMES, f"bob decoded {got} frames"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


def test_node_ip_of_this_host_connects_and_decodes() -> None:
    server = _Server(_binary(), extra_args=["--node-ip", "127.0.0.1"])
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        asyncio.run(asyncio.wait_for(call(Corelay(url, API_KEY, API_SECRET)), 60))
    finally:
        server.stop()
        _SERVERS.remove(server)
