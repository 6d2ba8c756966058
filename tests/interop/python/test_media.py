"""Media through corelay with the official Python rtc SDK: two participants, one
publishes video, audio and data; the other decodes frames and receives the data."""

from __future__ import annotations

import asyncio

from livekit import api, rtc

from conftest import Corelay
from sources import CameraAndMic, publish_camera_and_mic

ROOM = "media-room"
WANT_VIDEO_FRAMES = 60
WANT_AUDIO_FRAMES = 20


def token(c: Corelay, identity: str) -> str:
    return c.join_token(ROOM, identity)


async def count_frames(stream, want: int, got: list[int], span: list[float]) -> None:
    loop = asyncio.get_running_loop()
    async for _ in stream:
        if got[0] == 0:
            span.append(loop.time())
        got[0] += 1
        if got[0] >= want:
            span.append(loop.time())
            return


async def scenario(c: Corelay) -> None:
    alice, bob, carol = rtc.Room(), rtc.Room(), rtc.Room()
    subscribed: asyncio.Queue = asyncio.Queue()
    bob_data: asyncio.Queue = asyncio.Queue()
    carol_data: asyncio.Queue = asyncio.Queue()
    left: asyncio.Event = asyncio.Event()
    alice_speaking: asyncio.Event = asyncio.Event()

    @bob.on("active_speakers_changed")
    def _on_speakers(speakers):  # type: ignore[no-untyped-def]
        if any(s.identity == "alice" for s in speakers):
            alice_speaking.set()

    @bob.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        subscribed.put_nowait(track)

    @bob.on("data_received")
    def _on_bob_data(packet):  # type: ignore[no-untyped-def]
        bob_data.put_nowait(packet)

    @carol.on("data_received")
    def _on_carol_data(packet):  # type: ignore[no-untyped-def]
        carol_data.put_nowait(packet)

    @bob.on("participant_disconnected")
    def _on_left(participant):  # type: ignore[no-untyped-def]
        if participant.identity == "alice":
            left.set()

    await bob.connect(c.url, token(c, "bob"))
    await carol.connect(c.url, token(c, "carol"))
    await alice.connect(c.url, token(c, "alice"))

    media = CameraAndMic()
    try:
        await publish_camera_and_mic(alice.local_participant, media.video, media.audio)

        tracks = {}
        while len(tracks) < 2:
            track = await asyncio.wait_for(subscribed.get(), 20)
            tracks[track.kind] = track
        video_frames, audio_frames = [0], [0]
        video_span: list[float] = []
        await asyncio.wait_for(
            asyncio.gather(
                count_frames(
                    rtc.VideoStream(tracks[rtc.TrackKind.KIND_VIDEO]),
                    WANT_VIDEO_FRAMES,
                    video_frames,
                    video_span,
                ),
                count_frames(
                    rtc.AudioStream(tracks[rtc.TrackKind.KIND_AUDIO]),
                    WANT_AUDIO_FRAMES,
                    audio_frames,
                    [],
                ),
            ),
            30,
        )
        print(f"decoded video frames={video_frames[0]} audio frames={audio_frames[0]}")
        assert video_frames[0] >= WANT_VIDEO_FRAMES
        # Delta frames flow, not only keyframes: the publisher sends 30 fps and sends
        # a keyframe only when asked, so keyframes alone would be about 2 per second.
        fps = (WANT_VIDEO_FRAMES - 1) / (video_span[1] - video_span[0])
        print(f"decoded video at {fps:.1f} fps")
        assert fps >= 6, f"only {fps:.1f} fps decoded"
        assert audio_frames[0] >= WANT_AUDIO_FRAMES

        # Alice's tone is loud: she shows up among Bob's active speakers.
        await asyncio.wait_for(alice_speaking.wait(), 10)

        # Data with a topic reaches only the named destination.
        await alice.local_participant.publish_data(
            b"for bob", reliable=True, topic="chat", destination_identities=["bob"]
        )
        await alice.local_participant.publish_data(b"for all", reliable=True, topic="all")
        first = await asyncio.wait_for(bob_data.get(), 10)
        assert (first.data, first.topic) == (b"for bob", "chat")
        assert first.participant.identity == "alice"
        second = await asyncio.wait_for(bob_data.get(), 10)
        assert second.data == b"for all"
        only = await asyncio.wait_for(carol_data.get(), 10)
        assert only.data == b"for all", "carol must not get the packet addressed to bob"
    finally:
        media.stop()

    await alice.disconnect()
    await asyncio.wait_for(left.wait(), 10)
    await bob.disconnect()
    await carol.disconnect()


def test_python_participants_exchange_media_and_data(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(scenario(corelay), 90))


async def live_admin(c: Corelay) -> None:
    room = "admin-room"

    def tok(identity: str) -> str:
        return c.join_token(room, identity)

    alice, bob = rtc.Room(), rtc.Room()
    muted: asyncio.Event = asyncio.Event()
    metadata: asyncio.Queue = asyncio.Queue()
    bob_gone: asyncio.Event = asyncio.Event()

    @bob.on("track_muted")
    def _on_muted(participant, publication):  # type: ignore[no-untyped-def]
        if participant.identity == "alice":
            muted.set()

    @bob.on("participant_metadata_changed")
    def _on_meta(participant, old, new):  # type: ignore[no-untyped-def]
        metadata.put_nowait((participant.identity, new))

    @bob.on("disconnected")
    def _on_disconnected(reason):  # type: ignore[no-untyped-def]
        bob_gone.set()

    await bob.connect(c.url, tok("bob"))
    await alice.connect(c.url, tok("alice"))
    audio = rtc.AudioSource(48000, 1)
    publication = await alice.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    lk = api.LiveKitAPI(c.url, c.api_key, c.api_secret)
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        assert sorted(p.identity for p in listed.participants) == ["alice", "bob"]
        # publish_track returns on TrackPublishedResponse; the track is listed once the
        # publisher's offer carrying its m-line has been answered.
        for _ in range(100):
            got = await lk.room.get_participant(
                api.RoomParticipantIdentity(room=room, identity="alice")
            )
            if got.tracks:
                break
            await asyncio.sleep(0.1)
        assert got.sid.startswith("PA_")
        assert [t.sid for t in got.tracks] == [publication.sid]

        await lk.room.mute_published_track(
            api.MuteRoomTrackRequest(room=room, identity="alice", track_sid=publication.sid, muted=True)
        )
        await asyncio.wait_for(muted.wait(), 10)

        await lk.room.update_participant(
            api.UpdateParticipantRequest(room=room, identity="alice", metadata="from-api")
        )
        who, new = await asyncio.wait_for(metadata.get(), 10)
        assert (who, new) == ("alice", "from-api")

        await lk.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="bob"))
        await asyncio.wait_for(bob_gone.wait(), 10)
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        assert [p.identity for p in listed.participants] == ["alice"]
    finally:
        await lk.aclose()
        await alice.disconnect()


def test_room_service_acts_on_live_participants(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(live_admin(corelay), 60))


async def resume_refused(c: Corelay) -> None:
    import aiohttp
    from livekit.protocol import rtc as rtcpb

    token = (
        api.AccessToken(c.api_key, c.api_secret)
        .with_identity("resumer")
        .with_grants(api.VideoGrants(room_join=True, room=ROOM))
        .to_jwt()
    )
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{c.url}/rtc?access_token={token}&reconnect=1&sid=PA_unknown")
        first = rtcpb.SignalResponse()
        first.ParseFromString((await ws.receive()).data)
        assert first.WhichOneof("message") == "leave"
        assert first.leave.reason == 6  # STATE_MISMATCH
        assert first.leave.action == 2  # RECONNECT: the SDK does a full reconnect
        await ws.close()


def test_resume_is_answered_with_full_reconnect(corelay: Corelay) -> None:
    asyncio.run(asyncio.wait_for(resume_refused(corelay), 20))
