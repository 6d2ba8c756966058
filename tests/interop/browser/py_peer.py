"""Python participant for browser.test.mjs (run by the test, not by pytest).

Usage: py_peer.py URL TOKEN

Connects with the livekit rtc SDK, publishes a 320x240 camera track
(simulcast=False) fed at ~30 fps, and counts the decoded frames of the first
remote video track it subscribes to (the browser's camera). Once it has
WANT_FRAMES frames, or after DEADLINE_S seconds, it prints one JSON line
{"identities": [...], "frames": N, "fps": F, ...} on stdout. It then keeps publishing
until its stdin is closed (the test closes it once the browser side has been
checked, so the browser still has a video to decode) or LINGER_S seconds pass,
and exits. Diagnostics go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time

import numpy as np  # noqa: F401  (the rtc SDK needs it for frames)
from livekit import rtc

WIDTH, HEIGHT = 320, 240
WANT_FRAMES = 20
DEADLINE_S = 40.0
LINGER_S = 60.0


def err(msg: str) -> None:
    print(f"[py_peer] {msg}", file=sys.stderr, flush=True)


async def pump_video(source: rtc.VideoSource) -> None:
    n = 0
    while True:
        shade = (n * 7) % 255
        data = bytearray([shade, 255 - shade, 128, 255] * (WIDTH * HEIGHT))
        source.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, data))
        n += 1
        await asyncio.sleep(1 / 30)


async def stdin_closed() -> None:
    """Returns once stdin reaches EOF. A daemon thread does the blocking read, so
    a still-open stdin can never keep the process from exiting."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def reader() -> None:
        while sys.stdin.buffer.read1(4096):
            pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=reader, daemon=True).start()
    await done.wait()


async def main(url: str, token: str) -> int:
    room = rtc.Room()
    video_tracks: asyncio.Queue = asyncio.Queue()
    started = time.monotonic()

    @room.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        err(f"subscribed {track.kind} {publication.sid} from {participant.identity}")
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            video_tracks.put_nowait((track, participant.identity))

    @room.on("participant_connected")
    def _on_participant(participant):  # type: ignore[no-untyped-def]
        err(f"participant connected {participant.identity}")

    await room.connect(url, token)
    err(f"connected as {room.local_participant.identity} in {time.monotonic() - started:.2f}s")

    source = rtc.VideoSource(WIDTH, HEIGHT)
    pump = asyncio.create_task(pump_video(source))
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("py-cam", source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
    )
    err("published py-cam")

    frames = 0
    first_frame_s = None
    last_frame_s = None
    width = height = 0
    from_identity = None

    async def count() -> None:
        nonlocal frames, first_frame_s, last_frame_s, width, height, from_identity
        track, from_identity = await video_tracks.get()
        async for event in rtc.VideoStream(track):
            if frames == 0:
                first_frame_s = time.monotonic() - started
            frames += 1
            last_frame_s = time.monotonic() - started
            width, height = event.frame.width, event.frame.height
            if frames >= WANT_FRAMES:
                return

    remaining = DEADLINE_S - (time.monotonic() - started)
    try:
        await asyncio.wait_for(count(), max(remaining, 1.0))
    except asyncio.TimeoutError:
        err(f"deadline: only {frames} frames after {DEADLINE_S}s")

    result = {
        "identities": sorted(p.identity for p in room.remote_participants.values()),
        "frames": frames,
        "from": from_identity,
        "width": width,
        "height": height,
        "first_frame_s": None if first_frame_s is None else round(first_frame_s, 3),
        # decode rate between the first and the last counted frame
        "fps": (
            round((frames - 1) / (last_frame_s - first_frame_s), 1)
            if frames > 1 and last_frame_s > first_frame_s
            else 0.0
        ),
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    print(json.dumps(result), flush=True)

    try:
        await asyncio.wait_for(stdin_closed(), LINGER_S)
    except asyncio.TimeoutError:
        err(f"stdin still open after {LINGER_S}s, leaving")
    pump.cancel()
    await room.disconnect()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    status = asyncio.run(main(sys.argv[1], sys.argv[2]))
    # The SDK's tokio threads may call into Python while the interpreter finalizes;
    # ended by pthread_exit, their forced unwind through `extern "C"` frames aborts the
    # process (SIGABRT, "panic in a function that cannot unwind") after a clean
    # disconnect. The work is done and flushed: leave without finalizing, as conftest.py.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
