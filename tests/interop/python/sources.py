"""Synthetic media for the Python interop tests: a moving RGBA pattern at 30 fps, a
440 Hz tone in 10 ms frames, and publishing them as camera and microphone."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

import numpy as np
from livekit import rtc

WIDTH, HEIGHT = 320, 240
RATE = 48000
SAMPLES = 480  # 10 ms


async def pump_video(
    source: rtc.VideoSource,
    stop: Optional[asyncio.Event] = None,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> None:
    """Frames of `size` until `stop` is set (or the task is cancelled)."""
    n = 0
    width, height = size
    while stop is None or not stop.is_set():
        shade = (n * 7) % 255
        data = bytearray([shade, 255 - shade, 128, 255] * (width * height))
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, data))
        n += 1
        await asyncio.sleep(1 / 30)


async def pump_audio(source: rtc.AudioSource, stop: Optional[asyncio.Event] = None) -> None:
    """A tone until `stop` is set (or the task is cancelled); capture_frame paces it."""
    t = 0
    while stop is None or not stop.is_set():
        wave = np.sin(2 * np.pi * 440 * (np.arange(SAMPLES) + t) / RATE) * 8000
        await source.capture_frame(rtc.AudioFrame(wave.astype(np.int16).tobytes(), RATE, 1, SAMPLES))
        t += SAMPLES


async def publish_camera(
    participant: rtc.LocalParticipant, video: rtc.VideoSource, name: str = "cam"
) -> None:
    """Publishes `video` as a single-layer camera track called `name`."""
    await participant.publish_track(
        rtc.LocalVideoTrack.create_video_track(name, video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
    )


async def publish_camera_and_mic(
    participant: rtc.LocalParticipant, video: rtc.VideoSource, audio: rtc.AudioSource
) -> None:
    """Publishes `video` as a single-layer camera and `audio` as the microphone."""
    await publish_camera(participant, video)
    await participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )


class CameraAndMic:
    """A synthetic camera and microphone, pumped until `stop()`."""

    def __init__(self, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        self.video = rtc.VideoSource(*size)
        self.audio = rtc.AudioSource(RATE, 1)
        self._stop = asyncio.Event()
        self._pumps = [
            asyncio.create_task(pump_video(self.video, self._stop, size)),
            asyncio.create_task(pump_audio(self.audio, self._stop)),
        ]

    def stop(self) -> None:
        self._stop.set()
        for p in self._pumps:
            p.cancel()


async def decoded_frames(track: rtc.Track, want: int, timeout: float) -> int:
    """Decodes up to `want` frames of a remote video or audio track; returns how many
    arrived within `timeout` seconds."""
    if track.kind == rtc.TrackKind.KIND_VIDEO:
        stream = rtc.VideoStream(track)
    else:
        stream = rtc.AudioStream(track)
    got = 0

    async def count() -> None:
        nonlocal got
        async for _ in stream:
            got += 1
            if got >= want:
                return

    try:
        await asyncio.wait_for(count(), timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        await stream.aclose()
    return got


def video_tracks(room: rtc.Room) -> "asyncio.Queue[rtc.Track]":
    """The video tracks `room` subscribes to, as they come."""
    tracks: asyncio.Queue = asyncio.Queue()

    @room.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            tracks.put_nowait(track)

    return tracks


async def alice_to_bob(url: str, token: "Callable[[str], str]", want: int = 10) -> int:
    """alice publishes a camera and microphone, bob joins after her and decodes her
    video: returns how many frames he decoded (up to `want`). `token(identity)` gives
    each a join token."""
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed = video_tracks(bob)
    try:
        await alice.connect(url, token("alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(url, token("bob"))
        video = await asyncio.wait_for(subscribed.get(), 20)
        return await decoded_frames(video, want, 15)
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()
