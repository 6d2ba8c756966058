"""Rooms that span shards (broadcast), with the official Python rtc SDK: a server with
two shards and `spread_after = 1` puts a room's second participant on the other shard,
so alice's and bob's peer connections land on different shards. They must see and hear
each other (decoded frames both ways), exchange data, see each other speak and get each
other's connection quality; late joiners on either shard decode both; an unpublish and
a leave reach the other shard. /metrics shows both shards hosting participants of the
one room. Repeated in a second room, whose home is the other shard."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from typing import Iterator

import pytest
from livekit import api, rtc

from conftest import API_KEY, API_SECRET, Corelay, _binary, _Server, _SERVERS, affinity_args
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic

WANT_FRAMES = 10
WAIT_S = 20


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Corelay, _Server]]:
    server = _Server(
        _binary(),
        extra_args=affinity_args(tmp_path_factory.mktemp("broadcast"), 2, spread_after=1),
        env={"LIVEKIT_CONFIG": "prometheus:\n  port: 0\n"},
    )
    _SERVERS.append(server)
    try:
        yield Corelay(server.wait_ready(), API_KEY, API_SECRET), server
    finally:
        server.stop()
        _SERVERS.remove(server)


def shard_participants(server: _Server) -> dict[str, int]:
    with urllib.request.urlopen(server.metrics_url(), timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r'^corelay_shard_participants\{[^}]*shard="(\d+)"\} (\S+)$', text, re.M)
    return {shard: int(float(n)) for shard, n in found}


def joined_shards(server: _Server, room: str) -> dict[str, int]:
    """identity -> shard, from the server's join log lines for `room`."""
    pattern = rf"participant joined conn=\d+ room={room} identity=(\S+) shard=(\d+)"
    return {who: int(shard) for who, shard in re.findall(pattern, server.logs())}


class Peer:
    """A participant and what it received: tracks by (publisher, kind), data, speaker
    lists, connection qualities, unpublished tracks and departures."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.room = rtc.Room()
        self.tracks: dict[tuple[str, int], rtc.Track] = {}
        self.track_came = asyncio.Event()
        self.data: list[tuple[str, bytes, str]] = []
        self.speakers: list[list[str]] = []
        self.quality: dict[str, object] = {}
        self.unpublished: list[str] = []
        self.left: list[str] = []
        self.metadata: dict[str, str] = {}
        self.disconnected = False
        self.changed = asyncio.Event()
        r = self.room

        @r.on("track_subscribed")
        def _track(track, publication, participant):  # type: ignore[no-untyped-def]
            self.tracks[(participant.identity, track.kind)] = track
            self.track_came.set()

        @r.on("data_received")
        def _data(packet):  # type: ignore[no-untyped-def]
            who = packet.participant.identity if packet.participant else ""
            self.data.append((who, packet.data, packet.topic))
            self.changed.set()

        @r.on("active_speakers_changed")
        def _speakers(speakers):  # type: ignore[no-untyped-def]
            self.speakers.append([p.identity for p in speakers])
            self.changed.set()

        @r.on("connection_quality_changed")
        def _quality(participant, quality):  # type: ignore[no-untyped-def]
            self.quality[participant.identity] = quality
            self.changed.set()

        @r.on("track_unpublished")
        def _unpublished(publication, participant):  # type: ignore[no-untyped-def]
            self.unpublished.append(f"{participant.identity}/{publication.kind}")
            self.changed.set()

        @r.on("participant_disconnected")
        def _left(participant):  # type: ignore[no-untyped-def]
            self.left.append(participant.identity)
            self.changed.set()

        @r.on("participant_metadata_changed")
        def _metadata(participant, old, new):  # type: ignore[no-untyped-def]
            self.metadata[participant.identity] = new
            self.changed.set()

        @r.on("disconnected")
        def _disconnected(reason):  # type: ignore[no-untyped-def]
            self.disconnected = True
            self.changed.set()

    async def until(self, what: str, holds, timeout: float = WAIT_S) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not holds():
            left = deadline - loop.time()
            assert left > 0, f"{self.identity}: no {what} within {timeout}s"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def track(self, publisher: str, kind: int) -> rtc.Track:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while (publisher, kind) not in self.tracks:
            left = deadline - loop.time()
            assert left > 0, f"{self.identity} never subscribed to {publisher}'s {kind}: {self.tracks}"
            self.track_came.clear()
            try:
                await asyncio.wait_for(self.track_came.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self.tracks[(publisher, kind)]

    async def decodes(self, publisher: str, kind: int) -> int:
        return await decoded_frames(await self.track(publisher, kind), WANT_FRAMES, 15)


VIDEO, AUDIO = rtc.TrackKind.KIND_VIDEO, rtc.TrackKind.KIND_AUDIO


async def scenario(c: Corelay, server: _Server, room: str) -> None:
    alice, bob, carol, dave = (Peer(n) for n in ("alice", "bob", "carol", "dave"))
    media = {"alice": CameraAndMic(), "bob": CameraAndMic()}
    peers = [alice, bob, carol, dave]
    try:
        for p in (alice, bob):
            await p.room.connect(c.url, c.join_token(room, p.identity))
            m = media[p.identity]
            await publish_camera_and_mic(p.room.local_participant, m.video, m.audio)
        shards = joined_shards(server, room)
        assert shards["alice"] != shards["bob"], f"one shard for both: {shards}"

        got = await asyncio.gather(
            bob.decodes("alice", VIDEO),
            bob.decodes("alice", AUDIO),
            alice.decodes("bob", VIDEO),
            alice.decodes("bob", AUDIO),
        )
        assert min(got) >= WANT_FRAMES, f"frames bob<-alice v/a, alice<-bob v/a: {got}"

        await alice.room.local_participant.publish_data(
            b"to bob", reliable=True, topic="t", destination_identities=["bob"]
        )
        await bob.room.local_participant.publish_data(b"to all", reliable=True, topic="u")
        await bob.until("data from alice", lambda: ("alice", b"to bob", "t") in bob.data)
        await alice.until("data from bob", lambda: ("bob", b"to all", "u") in alice.data)

        # Both tones are loud: each sees the other (from the other shard) speak.
        await bob.until("alice speaking", lambda: any("alice" in s for s in bob.speakers))
        await alice.until("bob speaking", lambda: any("bob" in s for s in alice.speakers))
        # Scores go out every 5 s once a PC has reported.
        excellent = rtc.ConnectionQuality.QUALITY_EXCELLENT
        await bob.until("alice's quality", lambda: alice.identity in bob.quality, 25)
        await alice.until("bob's quality", lambda: bob.identity in alice.quality, 25)
        assert bob.quality["alice"] == excellent, bob.quality

        for _ in range(30):
            per_shard = shard_participants(server)
            if sorted(per_shard.values()) == [1, 1]:
                break
            await asyncio.sleep(0.2)
        assert sorted(per_shard.values()) == [1, 1], f"participants per shard: {per_shard}"

        # Late joiners: one lands on each shard, and decodes both publishers (a
        # keyframe asked across shards where the publisher is on the other one).
        for p in (carol, dave):
            await p.room.connect(c.url, c.join_token(room, p.identity))
        shards = joined_shards(server, room)
        assert shards["carol"] != shards["dave"], f"late joiners on one shard: {shards}"
        print(f"{room}: shards {shards}, participants per shard {per_shard}")
        got = await asyncio.gather(
            carol.decodes("alice", VIDEO),
            carol.decodes("bob", VIDEO),
            dave.decodes("alice", VIDEO),
            dave.decodes("bob", VIDEO),
        )
        assert min(got) >= WANT_FRAMES, f"carol<-alice, carol<-bob, dave<-alice, dave<-bob: {got}"
        print(f"{room}: late joiners decoded {got}; bob saw qualities {bob.quality}")

        # RoomService sees one room, and acts on participants on either shard.
        async with api.LiveKitAPI(c.url, c.api_key, c.api_secret) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            names = sorted(p.identity for p in listed.participants)
            assert names == ["alice", "bob", "carol", "dave"], names
            rooms = (await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))).rooms
            assert [(r.name, r.num_participants) for r in rooms] == [(room, 4)], rooms
            for who in ("alice", "bob"):
                req = api.UpdateParticipantRequest(room=room, identity=who, metadata=f"{who} on stage")
                await lk.room.update_participant(req)
            await lk.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="dave"))
        for p, other in ((alice, "bob"), (bob, "alice"), (carol, "alice"), (carol, "bob")):
            want = f"{other} on stage"
            await p.until(f"{other}'s metadata", lambda p=p, o=other, w=want: p.metadata.get(o) == w)
        await dave.until("being removed", lambda: dave.disconnected)
        for p in (alice, bob, carol):
            await p.until("dave leaving", lambda p=p: "dave" in p.left)

        # bob unpublishes his camera, then leaves: everyone on both shards hears it.
        camera = next(
            sid
            for sid, pub in bob.room.local_participant.track_publications.items()
            if pub.kind == VIDEO
        )
        await bob.room.local_participant.unpublish_track(camera)
        for p in (alice, carol):
            await p.until("bob's unpublish", lambda p=p: f"bob/{VIDEO}" in p.unpublished)
        media["bob"].stop()
        await bob.room.disconnect()
        for p in (alice, carol):
            await p.until("bob leaving", lambda p=p: "bob" in p.left)
    finally:
        for m in media.values():
            m.stop()
        for p in peers:
            await p.room.disconnect()


def test_participants_on_two_shards_see_hear_and_message_each_other(
    two_shards: tuple[Corelay, _Server],
) -> None:
    c, server = two_shards
    # The second room's home is the other shard (homes go to the shard with fewest).
    for room in ("broadcast-a", "broadcast-b"):
        asyncio.run(asyncio.wait_for(scenario(c, server, room), 120))
        # Joins go by load: the next room starts on an empty node.
        for _ in range(50):
            if not any(shard_participants(server).values()):
                break
            time.sleep(0.2)
