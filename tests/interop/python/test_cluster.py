"""Many nodes through a real `redis-server` (started on a free loopback port): rooms are
placed on one node, a participant or API caller that reaches another node is relayed to
it, nodes that die or drain leave the registry, and a Redis outage degrades the cluster
instead of stopping calls in progress."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import os
import queue
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Iterator

import pytest
from livekit import api, rtc

from cluster import Redis, list_nodes, needs_redis, node, node_id, stop_all, wait_for
from conftest import API_KEY, API_SECRET, Corelay, _Server
from sources import CameraAndMic, decoded_frames, publish_camera_and_mic

# Two regions far apart: a room goes to the node in the region of the node asked.
REGIONS = """node_selector:
  kind: regionaware
  sort_by: rooms
  regions:
    - name: west
      lat: 37.6
      lon: -121.0
    - name: east
      lat: 50.1
      lon: 8.7
"""
BY_ROOMS = """node_selector:
  kind: any
  sort_by: rooms
  algorithm: lowest
"""
WANT = 10


@pytest.fixture
def redis() -> Iterator[Redis]:
    """A fresh redis-server; the nodes a test started are stopped after it."""
    r = Redis()
    try:
        yield r
    finally:
        stop_all()
        r.close()


def client(server: _Server) -> Corelay:
    return Corelay(server.wait_ready(), API_KEY, API_SECRET)


def twirp(server: _Server, fn):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        async with api.LiveKitAPI(server.wait_ready(), API_KEY, API_SECRET) as lk:
            return await fn(lk)

    return asyncio.run(asyncio.wait_for(run(), 30))


def room_names(server: _Server) -> set[str]:
    return {r.name for r in twirp(server, lambda lk: lk.room.list_rooms(api.ListRoomsRequest())).rooms}


def two_regions(redis: Redis) -> tuple[_Server, _Server]:
    return node(redis, "west", REGIONS), node(redis, "east", REGIONS)


async def call_across(west: Corelay, east: Corelay, room: str) -> dict[str, int]:
    """alice joins through `west`, bob through `east`; both publish a camera and a
    microphone and send each other data. What each received of the other."""
    alice, bob = rtc.Room(), rtc.Room()
    tracks: dict[str, asyncio.Queue] = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
    data: dict[str, asyncio.Queue] = {"alice": asyncio.Queue(), "bob": asyncio.Queue()}
    for who, room_ in (("alice", alice), ("bob", bob)):
        room_.on("track_subscribed", lambda t, _p, _q, who=who: tracks[who].put_nowait(t))
        room_.on("data_received", lambda pkt, who=who: data[who].put_nowait(pkt.data))
    media = [CameraAndMic(), CameraAndMic()]
    got: dict[str, int] = {}
    try:
        await alice.connect(west.url, west.join_token(room, "alice"))
        await bob.connect(east.url, east.join_token(room, "bob"))
        await publish_camera_and_mic(alice.local_participant, media[0].video, media[0].audio)
        await publish_camera_and_mic(bob.local_participant, media[1].video, media[1].audio)
        for who in ("alice", "bob"):
            for _ in range(2):
                track = await asyncio.wait_for(tracks[who].get(), 20)
                kind = "video" if track.kind == rtc.TrackKind.KIND_VIDEO else "audio"
                got[f"{who} {kind}"] = await decoded_frames(track, WANT, 15)
        await alice.local_participant.publish_data(b"to bob", reliable=True)
        await bob.local_participant.publish_data(b"to alice", reliable=True)
        got["bob data"] = int(await asyncio.wait_for(data["bob"].get(), 10) == b"to bob")
        got["alice data"] = int(await asyncio.wait_for(data["alice"].get(), 10) == b"to alice")
        return got
    finally:
        for m in media:
            m.stop()
        await bob.disconnect()
        await alice.disconnect()


class Hooks(http.server.BaseHTTPRequestHandler):
    """Records (node, event, identity) for each webhook; the URL path names the node."""

    got: "queue.Queue[tuple[str, str, str]]" = queue.Queue()
    receiver = api.WebhookReceiver(api.TokenVerifier(API_KEY, API_SECRET))

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        event = self.receiver.receive(body, self.headers.get("Authorization", ""))
        self.got.put((self.path.strip("/"), event.event, event.participant.identity))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@needs_redis
def test_participants_on_two_nodes_see_hear_and_exchange_data(redis: Redis) -> None:
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    hooks = f"http://127.0.0.1:{sink.server_address[1]}"

    def webhook(name: str) -> str:
        return f"webhook:\n  api_key: {API_KEY}\n  urls:\n    - {hooks}/{name}\n"

    west = node(redis, "west", REGIONS + webhook("west"))
    east = node(redis, "east", REGIONS + webhook("east"))
    try:
        got = asyncio.run(asyncio.wait_for(call_across(client(west), client(east), "cross"), 120))
        for what in ("alice video", "alice audio", "bob video", "bob audio"):
            assert got.get(what, 0) >= WANT, got
        assert got["alice data"] == got["bob data"] == 1, got
        # The room went to the west node (alice's, west's region): bob was relayed.
        assert "room placed" in west.logs()
        assert "signal connection relayed to the room's node" in east.logs()
        assert "participant joined" not in east.logs(), "bob's session must run on west"
        # Webhooks come once per event, from the node that hosts the room.
        events: list[tuple[str, str, str]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(e[1] == "participant_left" for e in events) < 2:
            try:
                events.append(Hooks.got.get(timeout=0.5))
            except queue.Empty:
                pass
        joined = sorted(who for _, e, who in events if e == "participant_joined")
        assert joined == ["alice", "bob"], events
        assert [e for _, e, _ in events].count("room_started") == 1, events
        assert {n for n, _, _ in events} == {"west"}, events
    finally:
        sink.shutdown()


@needs_redis
def test_room_service_on_one_node_acts_on_another_nodes_rooms(redis: Redis) -> None:
    west, east = two_regions(redis)
    w = client(west)
    twirp(west, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="west-room")))
    twirp(east, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="east-room")))
    # By region: each room is on the node it was created through.
    nodes = wait_for(
        lambda: (n := list_nodes(redis)) and all(v["ROOMS"] == "1" for v in n.values()) and n,
        10,
        "one room per node in list-nodes",
    )
    assert set(nodes) == {node_id(west), node_id(east)}
    assert room_names(east) == room_names(west) == {"west-room", "east-room"}

    async def scenario() -> None:
        alice = rtc.Room()
        got: asyncio.Queue = asyncio.Queue()
        alice.on("data_received", lambda pkt: got.put_nowait(pkt.data))
        metadata: asyncio.Queue = asyncio.Queue()
        alice.on("room_metadata_changed", lambda _old, new: metadata.put_nowait(new))
        left = asyncio.Event()
        alice.on("disconnected", lambda _reason: left.set())
        await alice.connect(w.url, w.join_token("west-room", "alice"))
        async with api.LiveKitAPI(east.wait_ready(), API_KEY, API_SECRET) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room="west-room"))
            assert [p.identity for p in listed.participants] == ["alice"]
            one = await lk.room.get_participant(
                api.RoomParticipantIdentity(room="west-room", identity="alice")
            )
            assert one.sid == alice.local_participant.sid
            await lk.room.update_room_metadata(
                api.UpdateRoomMetadataRequest(room="west-room", metadata="from east")
            )
            assert await asyncio.wait_for(metadata.get(), 10) == "from east"
            await lk.room.send_data(
                api.SendDataRequest(room="west-room", data=b"via east", kind=api.DataPacket.RELIABLE)
            )
            assert await asyncio.wait_for(got.get(), 10) == b"via east"
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room="west-room", identity="alice")
            )
            await asyncio.wait_for(left.wait(), 10)
            with pytest.raises(api.TwirpError):
                await lk.room.list_participants(api.ListParticipantsRequest(room="no-such-room"))
        await alice.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 60))
    twirp(east, lambda lk: lk.room.delete_room(api.DeleteRoomRequest(room="west-room")))
    assert room_names(west) == {"east-room"}


@needs_redis
def test_rooms_go_to_the_node_with_fewest_rooms_and_list_nodes_shows_them(redis: Redis) -> None:
    a, b = node(redis, selector=BY_ROOMS), node(redis, selector=BY_ROOMS)
    for i in range(4):
        twirp(a, lambda lk, i=i: lk.room.create_room(api.CreateRoomRequest(name=f"load-{i}")))
        # The next choice must see this room in the registry.
        wait_for(
            lambda: sum(int(v["ROOMS"]) for v in list_nodes(redis).values()) == i + 1,
            10,
            f"{i + 1} rooms in list-nodes",
        )
    nodes = list_nodes(redis)
    assert {k: v["ROOMS"] for k, v in nodes.items()} == {node_id(a): "2", node_id(b): "2"}, nodes
    for v in nodes.values():
        assert v["STATE"] == "serving" and int(v["CPUS"]) >= 1, nodes
    assert room_names(b) == {f"load-{i}" for i in range(4)}


@needs_redis
def test_a_killed_nodes_rooms_go_and_its_clients_land_elsewhere(redis: Redis) -> None:
    west, east = two_regions(redis)
    twirp(east, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="doomed")))
    assert "doomed" in room_names(west)
    gone = node_id(east)
    os.killpg(east.proc.pid, signal.SIGKILL)
    east.proc.wait()
    # Within the 5 s expiry (plus a heartbeat).
    wait_for(lambda: "doomed" not in room_names(west), 7, "the dead node's room to leave ListRooms")
    wait_for(lambda: list_nodes(redis)[gone]["STATE"] == "gone", 7, "the dead node to expire")
    w = client(west)
    got = asyncio.run(asyncio.wait_for(call_across(w, w, "doomed"), 90))
    assert got.get("bob video", 0) >= WANT, got
    assert "doomed" in room_names(west)


@needs_redis
def test_a_draining_node_leaves_the_registry_first(redis: Redis) -> None:
    a, b = node(redis), node(redis)
    wait_for(lambda: len(list_nodes(redis)) == 2, 5, "two nodes registered")
    leaving = node_id(b)
    os.killpg(b.proc.pid, signal.SIGTERM)
    wait_for(lambda: leaving not in list_nodes(redis), 3, "the draining node to deregister")


def health(server: _Server) -> int:
    with urllib.request.urlopen(server.wait_ready() + "/", timeout=5) as r:
        return r.status


def upgrade_status(server: _Server, token: str) -> tuple[int, str]:
    """A WebSocket upgrade to /rtc: the HTTP status and body of the answer."""
    host = server.wait_ready().removeprefix("http://")
    conn = http.client.HTTPConnection(host, timeout=10)
    conn.request(
        "GET",
        f"/rtc?access_token={token}",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    r = conn.getresponse()
    return r.status, r.read().decode(errors="replace")


@needs_redis
def test_a_redis_outage_keeps_calls_and_health_and_recovers(redis: Redis) -> None:
    west, east = two_regions(redis)
    w, e = client(west), client(east)

    async def scenario() -> None:
        alice, bob = rtc.Room(), rtc.Room()
        tracks: asyncio.Queue = asyncio.Queue()
        bob.on(
            "track_subscribed",
            lambda t, _p, _q: tracks.put_nowait(t) if t.kind == rtc.TrackKind.KIND_VIDEO else None,
        )
        media = CameraAndMic()
        frames = 0

        async def count(track: rtc.Track) -> None:
            nonlocal frames
            async for _ in rtc.VideoStream(track):
                frames += 1

        try:
            await alice.connect(w.url, w.join_token("steady", "alice"))
            await publish_camera_and_mic(alice.local_participant, media.video, media.audio)
            await bob.connect(e.url, e.join_token("steady", "bob"))
            counter = asyncio.create_task(count(await asyncio.wait_for(tracks.get(), 20)))
            await asyncio.sleep(2)
            before = frames
            redis.stop()
            for _ in range(10):
                await asyncio.sleep(1)
                assert await asyncio.to_thread(health, west) == 200
                assert await asyncio.to_thread(health, east) == 200
            during = frames - before
            assert during >= 60, f"bob decoded {during} frames in 10 s without Redis"
            # A room no node hosts cannot be placed without Redis: a clear refusal.
            status, body = await asyncio.to_thread(upgrade_status, east, e.join_token("new", "carol"))
            assert status == 503 and "cannot place room" in body, (status, body)
            redis.start()
            await asyncio.to_thread(
                wait_for, lambda: len(list_nodes(redis)) == 2, 10, "both nodes registered again"
            )
            counter.cancel()
        finally:
            media.stop()
            await bob.disconnect()
            await alice.disconnect()

    asyncio.run(asyncio.wait_for(scenario(), 120))
    # A new cross-node call works again.
    got = asyncio.run(asyncio.wait_for(call_across(w, e, "after-outage"), 120))
    assert got.get("bob video", 0) >= WANT and got.get("alice video", 0) >= WANT, got
    assert "redis reachable again" in west.logs()


@needs_redis
def test_validate_on_any_node_knows_rooms_hosted_elsewhere(redis: Redis) -> None:
    no_auto_create = REGIONS + "room:\n  auto_create: false\n"
    west, east = node(redis, "west", no_auto_create), node(redis, "east", no_auto_create)
    e = client(east)
    twirp(west, lambda lk: lk.room.create_room(api.CreateRoomRequest(name="only-west")))

    def validate(room: str) -> int:
        url = f"{e.url}/rtc/validate?access_token={e.join_token(room, 'v')}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code

    assert validate("only-west") == 200
    assert validate("nowhere") == 404
