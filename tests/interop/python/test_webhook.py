"""Webhooks: corelay's events for a join/publish/leave sequence, received by a small
HTTP sink the test starts and verified by the official livekit-api WebhookReceiver."""

from __future__ import annotations

import asyncio
import http.server
import queue
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
from livekit import api, rtc

from conftest import _binary, _Server, _SERVERS, affinity_args


class Sink(http.server.BaseHTTPRequestHandler):
    received: "queue.Queue[tuple[str, str, str]]" = queue.Queue()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.received.put(
            (body, self.headers.get("Authorization", ""), self.headers.get("Content-Type", ""))
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def join_token(room: str, identity: str) -> str:
    return (
        api.AccessToken("devkey", "secret")
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def call(url: str) -> None:
    room = rtc.Room()
    await room.connect(url, join_token("hooks", "alice"))
    source = rtc.AudioSource(48000, 1)
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    tone = (np.sin(2 * np.pi * 440 * np.arange(480) / 48000) * 8000).astype(np.int16).tobytes()
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        await source.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))
    await room.disconnect()


def start_with_hooks(
    handler: type[http.server.BaseHTTPRequestHandler],
    config: str = "",
    extra_args: Optional[list[str]] = None,
) -> tuple[http.server.ThreadingHTTPServer, _Server, api.WebhookReceiver]:
    """An HTTP sink served by `handler`, and a corelay that sends its webhooks there
    (with `config` added to its config and `extra_args` to its command line)."""
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{sink.server_address[1]}/hook"
    config += f"webhook:\n  api_key: devkey\n  urls:\n    - {hook_url}\n"
    server = _Server(_binary(), extra_args=["--config-body", config, *(extra_args or [])])
    _SERVERS.append(server)
    return sink, server, api.WebhookReceiver(api.TokenVerifier("devkey", "secret"))


def test_webhooks_verify_with_the_official_receiver() -> None:
    sink, server, receiver = start_with_hooks(Sink)
    want = ["room_started", "participant_joined", "track_published", "participant_left"]
    seen: list[str] = []
    try:
        url = server.wait_ready()
        asyncio.run(asyncio.wait_for(call(url), 60))
        deadline = time.monotonic() + 15
        while not set(want) <= set(seen) and time.monotonic() < deadline:
            try:
                body, auth, content_type = Sink.received.get(timeout=0.5)
            except queue.Empty:
                continue
            assert content_type == "application/webhook+json"
            event = receiver.receive(body, auth)  # raises unless signature and hash match
            assert event.id.startswith("EV_")
            assert event.room.name == "hooks"
            if event.event in ("participant_joined", "participant_left", "track_published"):
                assert event.participant.identity == "alice"
            if event.event == "track_published":
                assert event.track.sid.startswith("TR_")
            seen.append(event.event)
        for name in want:
            assert name in seen, f"{name} not received; got {seen}"
        # Order as LiveKit sends them for one participant.
        assert seen.index("room_started") < seen.index("participant_joined")
        assert seen.index("participant_joined") < seen.index("track_published")
        assert seen.index("track_published") < seen.index("participant_left")
    finally:
        server.stop()
        _SERVERS.remove(server)
        sink.shutdown()



class SpreadSink(Sink):
    received: "queue.Queue[tuple[str, str, str]]" = queue.Queue()


async def two_publishers(url: str) -> None:
    """alice, then bob (on the other shard), each publish a microphone; both leave."""
    rooms = []
    for who in ("alice", "bob"):
        room = rtc.Room()
        await room.connect(url, join_token("spread-hooks", who))
        source = rtc.AudioSource(48000, 1)
        await room.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", source),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        rooms.append(room)
    await asyncio.sleep(1)
    for room in rooms:
        await room.disconnect()


def test_a_room_across_two_shards_sends_each_webhook_once(tmp_path: Path) -> None:
    """Two shards and `spread_after = 1`: alice and bob are on different shards. Room
    webhooks come once (from the room's home), participant and track ones once each
    (from the participant's own shard), never from the shard that holds a proxy."""
    config = "room:\n  empty_timeout: 1\n  departure_timeout: 1\n"
    sink, server, receiver = start_with_hooks(
        SpreadSink, config, affinity_args(tmp_path, 2, spread_after=1)
    )
    seen: list[tuple[str, str]] = []
    try:
        url = server.wait_ready()
        asyncio.run(asyncio.wait_for(two_publishers(url), 60))
        deadline = time.monotonic() + 15
        quiet_until = None
        while time.monotonic() < deadline:
            if quiet_until and time.monotonic() > quiet_until:
                break
            try:
                body, auth, _ = SpreadSink.received.get(timeout=0.5)
            except queue.Empty:
                continue
            event = receiver.receive(body, auth)
            assert event.room.name == "spread-hooks"
            seen.append((event.event, event.participant.identity if event.participant else ""))
            if event.event == "room_finished":
                # Anything sent twice would follow within a second.
                quiet_until = time.monotonic() + 1.5
        joined = re.findall(r"participant joined .*identity=(\S+) shard=(\d+)", server.logs())
        assert len({shard for _, shard in joined}) == 2, joined
        counts = Counter(seen)
        want = {
            ("room_started", ""): 1,
            ("participant_joined", "alice"): 1,
            ("participant_joined", "bob"): 1,
            ("track_published", "alice"): 1,
            ("track_published", "bob"): 1,
            ("track_unpublished", "alice"): 1,
            ("track_unpublished", "bob"): 1,
            ("participant_left", "alice"): 1,
            ("participant_left", "bob"): 1,
            ("room_finished", ""): 1,
        }
        assert dict(counts) == want, seen
    finally:
        server.stop()
        _SERVERS.remove(server)
        sink.shutdown()


class SlowSink(http.server.BaseHTTPRequestHandler):
    """An endpoint that takes 0.4 s per event, so that events are still queued when the
    server is told to stop."""

    received: "queue.Queue[tuple[str, str]]" = queue.Queue()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        time.sleep(0.4)
        self.received.put((body, self.headers.get("Authorization", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def test_drain_delivers_the_webhooks_still_queued() -> None:
    sink, server, receiver = start_with_hooks(SlowSink)
    try:
        url = server.wait_ready()
        asyncio.run(asyncio.wait_for(call(url), 60))
        # Stop at once: at 0.4 s per delivery, most of the events are still queued.
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        seen = []
        while not SlowSink.received.empty():
            body, auth = SlowSink.received.get()
            seen.append(receiver.receive(body, auth).event)
        for name in ["room_started", "participant_joined", "track_published", "participant_left"]:
            assert name in seen, f"{name} lost at drain; delivered: {seen}"
    finally:
        server.stop()
        _SERVERS.remove(server)
        sink.shutdown()
