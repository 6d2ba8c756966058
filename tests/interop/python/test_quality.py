"""Connection quality through corelay with the official Python rtc SDK: on a clean
loopback link both participants are scored EXCELLENT, and each hears about the other."""

from __future__ import annotations

import asyncio

from livekit import rtc

from conftest import Corelay
from sources import pump_audio

ROOM = "quality-room"


def token(c: Corelay, identity: str) -> str:
    return c.join_token(ROOM, identity)


async def scenario(c: Corelay) -> dict[str, object]:
    alice, bob = rtc.Room(), rtc.Room()
    seen: dict[str, object] = {}
    both = asyncio.Event()

    @bob.on("connection_quality_changed")
    def _on_quality(participant, quality):  # type: ignore[no-untyped-def]
        seen[participant.identity] = quality
        if "alice" in seen and "bob" in seen:
            both.set()

    await bob.connect(c.url, token(c, "bob"))
    await alice.connect(c.url, token(c, "alice"))
    audio = rtc.AudioSource(48000, 1)
    stop = asyncio.Event()
    pump = asyncio.create_task(pump_audio(audio, stop))
    try:
        await alice.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", audio),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        # Scores go out every 5 s once a PC has reported.
        await asyncio.wait_for(both.wait(), 20)
    finally:
        stop.set()
        pump.cancel()
        await alice.disconnect()
        await bob.disconnect()
    return seen


def test_connection_quality_reaches_the_other_side(corelay: Corelay) -> None:
    seen = asyncio.run(scenario(corelay))
    print(f"qualities seen by bob: {seen}")
    excellent = rtc.ConnectionQuality.QUALITY_EXCELLENT
    assert seen["alice"] == excellent, seen
    assert seen["bob"] == excellent, seen
