"""Active speakers with the official Python rtc SDK. The SDK's WebRTC stack measures
each microphone frame and sends the RFC 6464 audio level with every packet; the server
decides who speaks from those levels alone (src/rtc/speaker.rs) and sends
SpeakersChanged deltas, which the SDK turns into `active_speakers_changed`.

Alice publishes a loud sine wave, Carol publishes silence. Bob sees Alice become an
active speaker and never Carol; when Alice falls silent she leaves the list, and when
she is loud again she comes back.
"""

from __future__ import annotations

import asyncio
from typing import Callable

import numpy as np
from livekit import rtc

from conftest import Corelay

ROOM = "speakers-room"
RATE = 48000
SAMPLES = 480  # 10 ms frames
LOUD = 16000  # about -6 dBov: far above LiveKit's active level (-35 dBov)
SPEAK_WITHIN_S = 10


def token(c: Corelay, identity: str) -> str:
    return c.join_token(ROOM, identity)


class Mic:
    """A microphone whose loudness can be switched while it runs."""

    def __init__(self, amplitude: int) -> None:
        self.source = rtc.AudioSource(RATE, 1)
        self.amplitude = amplitude

    async def run(self) -> None:
        t = 0
        while True:
            n = np.arange(SAMPLES) + t
            wave = np.sin(2 * np.pi * 440 * n / RATE) * self.amplitude
            frame = rtc.AudioFrame(wave.astype(np.int16).tobytes(), RATE, 1, SAMPLES)
            await self.source.capture_frame(frame)
            t += SAMPLES


class Speakers:
    """Every active-speaker list Bob was given, in order."""

    def __init__(self, room: rtc.Room) -> None:
        self.lists: list[list[str]] = []
        self.changed = asyncio.Event()

        @room.on("active_speakers_changed")
        def _on_speakers(speakers):  # type: ignore[no-untyped-def]
            self.lists.append([p.identity for p in speakers])
            self.changed.set()

    async def until(
        self, what: str, holds: Callable[[list[str]], bool], timeout: float = SPEAK_WITHIN_S
    ) -> list[str]:
        """The first list from now on for which `holds` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = len(self.lists)
        while True:
            for speakers in self.lists[seen:]:
                if holds(speakers):
                    return speakers
            seen = len(self.lists)
            self.changed.clear()
            left = deadline - loop.time()
            assert left > 0, f"no speaker list where {what} within {timeout}s: {self.lists}"
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def ever(self, identity: str) -> bool:
        return any(identity in speakers for speakers in self.lists)


async def scenario(c: Corelay) -> None:
    alice, bob, carol = rtc.Room(), rtc.Room(), rtc.Room()
    speakers = Speakers(bob)
    await bob.connect(c.url, token(c, "bob"))
    await alice.connect(c.url, token(c, "alice"))
    await carol.connect(c.url, token(c, "carol"))
    loud, silent = Mic(LOUD), Mic(0)
    pumps = [asyncio.create_task(loud.run()), asyncio.create_task(silent.run())]
    try:
        for room, mic in ((alice, loud), (carol, silent)):
            await room.local_participant.publish_track(
                rtc.LocalAudioTrack.create_audio_track("mic", mic.source),
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
            )

        first = await speakers.until("alice speaks", lambda s: "alice" in s)
        assert "carol" not in first, first

        # Alice stops: once her hangover is over she is no longer listed.
        loud.amplitude = 0
        await speakers.until("alice is quiet", lambda s: "alice" not in s)

        # And loud again: back in the list.
        loud.amplitude = LOUD
        await speakers.until("alice speaks again", lambda s: "alice" in s)

        print(f"Bob's active speaker lists: {speakers.lists}")
        # Carol's silence never made her a speaker (nor Bob, who publishes nothing).
        assert not speakers.ever("carol"), speakers.lists
        assert not speakers.ever("bob"), speakers.lists
    finally:
        for p in pumps:
            p.cancel()
        await alice.disconnect()
        await carol.disconnect()
        await bob.disconnect()


def test_loud_publisher_becomes_active_speaker_and_silence_does_not(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(scenario(corelay), 90))
