"""A subscriber that joins after the publisher is already sending must get video:
the server has to ask the publisher for a keyframe on the layer it really sends.
Repeated in fresh rooms, with the SDK's default (simulcast) publish options and with a
single layer, because a missed keyframe request only shows in some runs."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc

from conftest import Corelay
from sources import HEIGHT, WIDTH, CameraAndMic, decoded_frames, video_tracks

RUNS = 10
DECODE_WITHIN_S = 10.0
WANT_FRAMES = 5


async def late_join(c: Corelay, room: str, simulcast: bool) -> float:
    """Alice publishes camera and mic; Bob joins a moment later. Returns the seconds
    from Bob's subscription to his WANT_FRAMES-th decoded frame."""
    alice, bob = rtc.Room(), rtc.Room()
    # Big enough for the SDK to send two simulcast layers (q and h) when asked to.
    media = CameraAndMic((640, 360) if simulcast else (WIDTH, HEIGHT))
    subscribed = video_tracks(bob)

    try:
        await alice.connect(c.url, c.join_token(room, "alice"))
        await alice.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", media.audio),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        if not simulcast:
            opts.simulcast = False
        await alice.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("cam", media.video), opts
        )
        # Let the publisher's first keyframe go by before Bob exists.
        await asyncio.sleep(1.0)
        await bob.connect(c.url, c.join_token(room, "bob"))
        track = await asyncio.wait_for(subscribed.get(), 10)
        loop = asyncio.get_running_loop()
        start = loop.time()
        frames = await decoded_frames(track, WANT_FRAMES, DECODE_WITHIN_S)
        if frames < WANT_FRAMES:
            pytest.fail(f"{room}: bob decoded {frames} video frames in {DECODE_WITHIN_S:.0f} s")
        return loop.time() - start
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()


@pytest.mark.parametrize("simulcast", [True, False], ids=["simulcast", "single-layer"])
def test_late_subscriber_decodes_video_every_time(corelay: Corelay, simulcast: bool) -> None:
    async def runs() -> list[float]:
        kind = "sim" if simulcast else "single"
        return [await late_join(corelay, f"late-{kind}-{i}", simulcast) for i in range(RUNS)]

    took = asyncio.run(asyncio.wait_for(runs(), RUNS * 30))
    took.sort()
    print(f"late join to {WANT_FRAMES} frames: median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s")
