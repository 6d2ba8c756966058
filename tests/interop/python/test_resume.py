"""Resume (issue 11): a Python participant's signal WebSocket is cut from under it by
a TCP proxy in the test (as a Wi-Fi blip or a proxy restart would). The SDK reconnects
with `reconnect=1`, and corelay resumes the same participant: the SDK reports
`reconnected`, the sid is unchanged, the other participant never sees a leave, media
keeps flowing, and reliable data sent across the cut arrives exactly once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from livekit import rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS, affinity_args
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic, video_tracks

WANT_FRAMES = 10


class CuttableProxy:
    """Forwards TCP connections to `target`; `cut()` drops every open one, as a network
    blip would, while new connections keep working."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.base_events.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.open.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.open.discard(writer)
        self.open.discard(up_writer)

    def cut(self) -> int:
        cut = len(self.open)
        for w in list(self.open):
            w.transport.abort()
        self.open.clear()
        return cut

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def resume_after_cut(c: Corelay, room: str, single_pc: bool, bob_first: bool = False) -> None:
    target = urlparse(c.url)
    proxy = CuttableProxy(target.hostname or "127.0.0.1", target.port or 80)
    await proxy.start()
    alice, bob = rtc.Room(), rtc.Room()
    media = CameraAndMic()
    subscribed = video_tracks(bob)
    reconnected = asyncio.Event()
    bob_saw_leave = asyncio.Event()
    got: dict[str, list[str]] = {"alice": [], "bob": []}

    @bob.on("participant_disconnected")
    def _on_left(participant):  # type: ignore[no-untyped-def]
        bob_saw_leave.set()

    @alice.on("reconnected")
    def _on_reconnected():  # type: ignore[no-untyped-def]
        reconnected.set()

    def on_data(who: str):  # type: ignore[no-untyped-def]
        def handler(packet: rtc.DataPacket) -> None:
            got[who].append(packet.data.decode())

        return handler

    alice.on("data_received", on_data("alice"))
    bob.on("data_received", on_data("bob"))

    try:
        options = rtc.RoomOptions(single_peer_connection=single_pc)
        if bob_first:
            await bob.connect(c.url, c.join_token(room, "bob"), options)
        await alice.connect(f"ws://127.0.0.1:{proxy.port}", c.join_token(room, "alice"), options)
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
        if not bob_first:
            await bob.connect(c.url, c.join_token(room, "bob"), options)
        video = await asyncio.wait_for(subscribed.get(), 15)
        assert await decoded_frames(video, WANT_FRAMES, 10) >= WANT_FRAMES, "before the cut"
        sid = alice.local_participant.sid

        assert proxy.cut() >= 2, "alice's signal connection went through the proxy"
        # Reliable data across the cut, both ways (the data channels stay up).
        await alice.local_participant.publish_data(b"alice-during-cut", reliable=True, topic="gap")
        await bob.local_participant.publish_data(b"bob-during-cut", reliable=True, topic="gap")
        await asyncio.wait_for(reconnected.wait(), 20)

        assert alice.local_participant.sid == sid, "a resume keeps the participant sid"
        assert alice.connection_state == rtc.ConnectionState.CONN_CONNECTED
        got_frames = await decoded_frames(video, WANT_FRAMES, 10)
        assert got_frames >= WANT_FRAMES, f"after the resume bob decoded {got_frames} frames"
        await alice.local_participant.publish_data(b"alice-after", reliable=True, topic="after")
        for _ in range(100):
            if "alice-after" in got["bob"] and "bob-during-cut" in got["alice"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a duplicate would come right behind
        assert got["bob"].count("alice-during-cut") == 1, got
        assert got["bob"].count("alice-after") == 1, got
        assert got["alice"].count("bob-during-cut") == 1, got
        assert not bob_saw_leave.is_set(), "bob saw alice leave: that was a full reconnect"
    finally:
        media.stop()
        await bob.disconnect()
        await alice.disconnect()
        await proxy.stop()


@pytest.mark.parametrize("single_pc", [True, False], ids=["v1", "v0"])
def test_cut_signal_connection_resumes(corelay: Corelay, single_pc: bool) -> None:
    for i in range(2):
        room = f"resume-{'v1' if single_pc else 'v0'}-{i}"
        asyncio.run(asyncio.wait_for(resume_after_cut(corelay, room, single_pc), 90))


def test_resume_on_a_shard_other_than_the_rooms_home(tmp_path: Path) -> None:
    """Two shards and `spread_after = 1`: bob opens the room, alice lands on the other
    shard (a copy of the room) and resumes there."""
    server = _Server(_binary(), extra_args=affinity_args(tmp_path, 2, spread_after=1))
    _SERVERS.append(server)
    try:
        c = Corelay(server.wait_ready(), API_KEY, API_SECRET)
        asyncio.run(asyncio.wait_for(resume_after_cut(c, "resume-spread", True, bob_first=True), 90))
        joined = dict(re.findall(r"participant joined .*identity=(\S+) shard=(\d+)", server.logs()))
        assert joined["alice"] != joined["bob"], joined
        assert "participant resumed" in server.logs()
    finally:
        server.stop()
        _SERVERS.remove(server)
