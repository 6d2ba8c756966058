"""A panic while handling one participant's peer connection ends that participant's
session and nothing else on the shard. The panic is injected through the server's
test-only hook (CORELAY_TEST_PANIC_HOOK=1: a data message carrying the marker makes
its session panic while it is drained)."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path

import pytest

from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS, affinity_args
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic

MARKER = b"corelay-test-panic-now"
ROOM = "panic-room"


async def scenario(c: Corelay) -> str:
    alice, bob, carol = rtc.Room(), rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed: asyncio.Queue = asyncio.Queue()
    carol_gone = asyncio.Event()
    bob_gone = asyncio.Event()
    bob_saw_carol_leave = asyncio.Event()

    @bob.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            subscribed.put_nowait(track)

    @bob.on("participant_disconnected")
    def _on_left(participant):  # type: ignore[no-untyped-def]
        if participant.identity == "carol":
            bob_saw_carol_leave.set()

    @bob.on("disconnected")
    def _on_bob_gone(reason):  # type: ignore[no-untyped-def]
        bob_gone.set()

    @carol.on("disconnected")
    def _on_carol_gone(reason):  # type: ignore[no-untyped-def]
        carol_gone.set()

    try:
        await alice.connect(c.url, c.join_token(ROOM, "alice"))
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        await bob.connect(c.url, c.join_token(ROOM, "bob"))
        await carol.connect(c.url, c.join_token(ROOM, "carol"))
        track = await asyncio.wait_for(subscribed.get(), 15)
        assert await decoded_frames(track, 10, 10) >= 10, "bob decodes alice before the panic"

        await carol.local_participant.publish_data(b"hello " + MARKER, reliable=True)
        await asyncio.wait_for(bob_saw_carol_leave.wait(), 10)
        await asyncio.wait_for(carol_gone.wait(), 10)

        got = await decoded_frames(track, 30, 10)
        assert got >= 30, f"bob decoded {got} frames after carol's session panicked"
        assert not bob_gone.is_set()
        return f"bob decoded {got} frames after the panic"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()
        await carol.disconnect()


def panic_count(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url) as r:
        text = r.read().decode()
    line = next(l for l in text.splitlines() if l.startswith("corelay_session_panic_total"))
    return float(line.split()[-1])


@pytest.mark.parametrize("shards", [1, 2], ids=["one-shard", "room-across-two-shards"])
def test_a_panicking_session_is_removed_and_the_shard_goes_on(shards: int, tmp_path: Path) -> None:
    """With two shards and `spread_after = 1` the room spans both: bob, on the other
    shard than alice and carol, keeps decoding alice and hears carol leave."""
    server = _Server(
        _binary(),
        extra_args=[
            "--config-body",
            "prometheus:\n  port: 0\n",
            *affinity_args(tmp_path, shards, spread_after=1),
        ],
        env={"CORELAY_TEST_PANIC_HOOK": "1"},
    )
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        metrics_url = server.metrics_url()
        c = Corelay(url, API_KEY, API_SECRET)
        print(asyncio.run(asyncio.wait_for(scenario(c), 60)))
        if shards == 2:
            joined = dict(re.findall(r"participant joined .*identity=(\S+) shard=(\d+)", server.logs()))
            assert joined["bob"] != joined["alice"] == joined["carol"], joined
        # Shards report their counters once a second.
        deadline = time.monotonic() + 5
        while panic_count(metrics_url) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert panic_count(metrics_url) == 1
        assert "peer connection panicked" in server.logs()
        assert server.proc.poll() is None, "the server is still running"
    finally:
        server.stop()
        _SERVERS.remove(server)
