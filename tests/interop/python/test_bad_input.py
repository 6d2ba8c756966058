"""Bad input costs the sender, never the server.

In each test Alice (Python rtc SDK) publishes video and audio and Bob decodes her video
while a third party, Mallory, misbehaves: garbage datagrams at the media ports, malformed
and oversized signal frames, a second connection with her identity, out-of-turn requests,
an offer with no codec the server has. After each, Alice's video still reaches Bob, Alice
and Bob stay connected, and only Mallory's own connection is refused or closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from typing import AsyncIterator, Awaitable, Callable

from livekit import api, rtc
from livekit.protocol import models as mpb
from livekit.protocol import rtc as pb

from conftest import Corelay
from sources import HEIGHT, WIDTH, publish_camera_and_mic, pump_audio, pump_video
from raw_signal import (
    UNKNOWN_FIELD,
    RawSignal,
    RawTcpWebSocket,
    host_candidates,
    ice_ufrag,
    is_local_address,
    m_lines,
    publisher_offer,
    token,
)

MB = 1024 * 1024
# The server's signal read timeout is 30 s: a socket it closes sooner was refused, not
# waited on.
REFUSED_WITHIN_S = 10


class Media:
    """Alice → Bob video, counted as Bob decodes it."""

    def __init__(self, alice: rtc.Room, bob: rtc.Room) -> None:
        self.alice = alice
        self.bob = bob
        self.frames = 0

    async def keeps_flowing(self, more: int = 15, timeout: float = 20) -> None:
        """Bob decodes `more` further frames of Alice's video, and both stay connected."""
        loop = asyncio.get_running_loop()
        start, deadline = self.frames, loop.time() + timeout
        while self.frames < start + more:
            assert loop.time() < deadline, f"video stalled at {self.frames} frames"
            await asyncio.sleep(0.05)
        for room in (self.alice, self.bob):
            assert room.connection_state == rtc.ConnectionState.CONN_CONNECTED
        assert "alice" in self.bob.remote_participants


@contextlib.asynccontextmanager
async def media_room(c: Corelay, room: str) -> AsyncIterator[Media]:
    alice, bob = rtc.Room(), rtc.Room()
    video_track: asyncio.Future = asyncio.get_running_loop().create_future()

    @bob.on("track_subscribed")
    def _on_track(track, publication, participant):  # type: ignore[no-untyped-def]
        if track.kind == rtc.TrackKind.KIND_VIDEO and not video_track.done():
            video_track.set_result(track)

    media = Media(alice, bob)

    async def count() -> None:
        async for _ in rtc.VideoStream(await video_track):
            media.frames += 1

    await bob.connect(c.url, token(c, room, "bob"))
    await alice.connect(c.url, token(c, room, "alice"))
    video, audio = rtc.VideoSource(WIDTH, HEIGHT), rtc.AudioSource(48000, 1)
    tasks = [asyncio.create_task(f) for f in (pump_video(video), pump_audio(audio), count())]
    try:
        await publish_camera_and_mic(alice.local_participant, video, audio)
        await asyncio.wait_for(asyncio.shield(video_track), 20)
        await media.keeps_flowing(more=10)
        yield media
    finally:
        for t in tasks:
            t.cancel()
        await alice.disconnect()
        await bob.disconnect()


async def participant_gone(c: Corelay, room: str, sid: str, timeout: float = 10) -> None:
    """The participant `sid` is no longer in the room (polled through RoomService)."""
    lk = api.LiveKitAPI(c.url, c.api_key, c.api_secret)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            if all(p.sid != sid for p in listed.participants):
                return
            assert loop.time() < deadline, f"{sid} still listed: {listed}"
            await asyncio.sleep(0.1)
    finally:
        await lk.aclose()


def run(c: Corelay, room: str, case: Callable[[Media], Awaitable[None]]) -> None:
    async def scenario() -> None:
        async with media_room(c, room) as media:
            await case(media)
            await media.keeps_flowing()

    asyncio.run(asyncio.wait_for(scenario(), 120))


# a. Datagrams ---------------------------------------------------------------------------


def stun(username: bytes, body_len_delta: int = 0, integrity: bool = True) -> bytes:
    """A STUN binding request with USERNAME (and a MESSAGE-INTEGRITY that is wrong)."""
    attrs = struct.pack("!HH", 0x0006, len(username)) + username
    attrs += b"\x00" * (-len(username) % 4)
    if integrity:
        attrs += struct.pack("!HH", 0x0008, 20) + os.urandom(20)
    head = struct.pack("!HHI", 0x0001, len(attrs) + body_len_delta, 0x2112A442)
    return head + os.urandom(12) + attrs


def rtp(pt: int = 96, seq: int = 1, ext: bool = False) -> bytes:
    first = 0x90 if ext else 0x80
    head = struct.pack("!BBHII", first, pt, seq, seq * 3000, 0x1234_5678)
    if ext:  # a one-byte-header extension block that claims more words than follow
        head += struct.pack("!HH", 0xBEDE, 40) + b"\x10\xff"
    return head + os.urandom(40)


def garbage(ufrag: str) -> list[bytes]:
    """Random bytes in every datagram class, truncated and lying STUN, fake RTP/RTCP/DTLS."""
    out = [b"", b"\x00", b"\x80", os.urandom(19), os.urandom(20), os.urandom(9000)]
    for first in (0x00, 0x01, 0x16, 0x17, 0x80, 0x81, 0x90, 0xC8):
        for n in (1, 2, 12, 13, 20, 100, 1200, 2048, 2049):
            out.append(bytes([first]) + os.urandom(n))
    valid_user = f"{ufrag}:rawc".encode()
    for cut in (2, 8, 20, 23, 30):
        out.append(stun(valid_user)[:cut])
    out += [
        stun(valid_user, body_len_delta=64),  # says its body is longer than it is
        stun(valid_user, body_len_delta=-3),
        stun(b"\xff\xfe:not-utf8"),
        stun(b"unknownufrag:x"),
        stun(b"", integrity=False),
        struct.pack("!HHI", 0x0001, 0xFFFF, 0x2112A442) + os.urandom(12),
    ]
    out += [rtp(), rtp(pt=111, ext=True), rtp(pt=0, seq=65535), rtp()[:11]]
    out += [
        b"\x81\xc8\x00\x06" + os.urandom(8),  # RTCP SR, shorter than its length
        b"\x8f\xcd\xff\xff" + os.urandom(8),  # a PLI claiming 256 KiB
        b"\x16\xfe\xfd" + os.urandom(10) + b"\x3f\xff" + os.urandom(30),  # DTLS lying
        b"\x17\xfe\xfd" + os.urandom(60),
    ]
    return out


def test_garbage_datagrams_leave_media_flowing(corelay: Corelay) -> None:
    room = "bad-udp"

    async def case(media: Media) -> None:
        mallory, _ = await RawSignal.join(corelay, room, "mallory")
        try:
            offer = (await mallory.expect("offer")).offer.sdp
            ufrag = ice_ufrag(offer)
            # Only this machine's own addresses: the candidates the server advertises.
            targets = [a for a in host_candidates(offer) if is_local_address(a[0])]
            assert targets, offer
            for ip, port in targets:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                with socket.socket(family, socket.SOCK_DGRAM) as s:
                    # First a STUN request naming Mallory's own ufrag: that makes this
                    # socket a known flow, so what follows reaches her session itself.
                    s.sendto(stun(f"{ufrag}:rawc".encode()), (ip, port))
                    for _ in range(3):
                        for d in garbage(ufrag):
                            s.sendto(d, (ip, port))
                    for seq in range(500):  # a burst of fake RTP
                        s.sendto(rtp(seq=seq), (ip, port))
            await media.keeps_flowing()
            await mallory.ping()  # her signal connection is untouched too
        finally:
            await mallory.close()

    run(corelay, room, case)


# b., c. Signal frames ---------------------------------------------------------------------

MALFORMED = [
    b"\xff\xff\xff",  # a varint that never ends
    b"\x0f",  # wire type 7 does not exist
    b"\x0a\x05ab",  # offer: 5 bytes announced, 2 sent
    b"\x0a\xff\xff\xff\xff\x0f",  # offer: 4 GiB announced
    b"\x0a\x02\xff\xff",  # offer: a SessionDescription that is not one
]


def test_malformed_protobuf_closes_only_that_connection(corelay: Corelay) -> None:
    room = "bad-protobuf"

    async def case(media: Media) -> None:
        for i, frame in enumerate(MALFORMED):
            mallory, join = await RawSignal.join(corelay, room, f"mallory-{i}")
            try:
                await mallory.send_raw(frame)
                closed = await mallory.wait_closed(REFUSED_WITHIN_S)
                # LiveKit ends the signal connection on a frame it cannot decode;
                # corelay says why: 1007, invalid payload data.
                assert closed.code == 1007, (frame, closed)
                await participant_gone(corelay, room, join.participant.sid)
            finally:
                await mallory.close()
            await media.keeps_flowing(more=5)

    run(corelay, room, case)


def test_oversized_frames_are_refused_without_buffering(corelay: Corelay) -> None:
    room = "bad-size"

    async def case(media: Media) -> None:
        # A whole 3 MB binary frame (the limit is LiveKit's 2 MiB).
        mallory, join = await RawSignal.join(corelay, room, "mallory-big")
        try:
            with contextlib.suppress(ConnectionError):
                await mallory.send_raw(os.urandom(3 * MB))
            closed = await mallory.wait_closed(REFUSED_WITHIN_S)
            assert closed.code in (None, 1009), closed  # 1009: message too big
            await participant_gone(corelay, room, join.participant.sid)
        finally:
            await mallory.close()
        await media.keeps_flowing(more=5)

        # A header announcing 3 MB followed by 1 KiB: refused on the header, so the
        # server closes without waiting for (or reserving room for) the rest.
        raw = await RawTcpWebSocket.connect(corelay, room, "mallory-header")
        try:
            await raw.send_partial(0x2, 3 * MB, os.urandom(1024))
            await raw.wait_eof(REFUSED_WITHIN_S)
        finally:
            raw.close()

        # One message in 512 KiB fragments, each under the limit, 3 MB in all.
        raw = await RawTcpWebSocket.connect(corelay, room, "mallory-fragments")
        try:
            with contextlib.suppress(ConnectionError):
                for i in range(6):
                    await raw.send_frame(0x2 if i == 0 else 0x0, os.urandom(MB // 2), fin=i == 5)
            await raw.wait_eof(REFUSED_WITHIN_S)
        finally:
            raw.close()

    run(corelay, room, case)


# d. A second connection with the same identity, repeated and unexpected requests -------


def test_same_identity_replaces_the_old_connection(corelay: Corelay) -> None:
    room = "bad-duplicate"

    async def case(media: Media) -> None:
        first, _ = await RawSignal.join(corelay, room, "mallory")
        second, join = await RawSignal.join(corelay, room, "mallory")
        try:
            # LiveKit: the new connection wins, the old one is told why and closed.
            leave = (await first.expect("leave")).leave
            assert leave.reason == mpb.DisconnectReason.DUPLICATE_IDENTITY
            assert leave.action == pb.LeaveRequest.Action.DISCONNECT
            await first.wait_closed(REFUSED_WITHIN_S)
            await second.ping()
            lk = api.LiveKitAPI(corelay.url, corelay.api_key, corelay.api_secret)
            try:
                listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            finally:
                await lk.aclose()
            mallories = [p.sid for p in listed.participants if p.identity == "mallory"]
            assert mallories == [join.participant.sid]

            # The same offer twice: each is answered, with its own id (a renegotiation).
            offer = publisher_offer(audio=True)
            for offer_id in (1, 2):
                answer = await second.offer(offer, offer_id)
                assert answer.id == offer_id and answer.type == "answer"

            # Requests that make no sense now, or name what does not exist: ignored,
            # as LiveKit does; the connection goes on.
            nope = ["TR_nope"]
            for junk in [
                pb.SignalRequest(),  # no message at all
                pb.SignalRequest(subscription=pb.UpdateSubscription(track_sids=nope, subscribe=True)),
                pb.SignalRequest(mute=pb.MuteTrackRequest(sid="TR_nope", muted=True)),
                pb.SignalRequest(track_setting=pb.UpdateTrackSettings(track_sids=nope, disabled=True)),
                pb.SignalRequest(trickle=pb.TrickleRequest(candidateInit="not a candidate")),
                pb.SignalRequest(trickle=pb.TrickleRequest(candidateInit="{}", target=1)),
                pb.SignalRequest(answer=pb.SessionDescription(type="answer", sdp="garbage", id=77)),
            ]:
                await second.send(junk)
            await second.send_raw(UNKNOWN_FIELD)
            await second.ping()
            assert not second.closed.done()
        finally:
            await first.close()
            await second.close()

    run(corelay, room, case)


# e. A publisher offer with no codec the server supports ---------------------------------


def test_offer_without_a_supported_codec_publishes_nothing(corelay: Corelay) -> None:
    room = "bad-codec"

    async def case(media: Media) -> None:
        updated: asyncio.Queue = asyncio.Queue()

        @media.bob.on("participant_metadata_changed")
        def _on_meta(participant, old, new):  # type: ignore[no-untyped-def]
            updated.put_nowait((participant.identity, new))

        mallory, _ = await RawSignal.join(corelay, room, "mallory")
        lk = api.LiveKitAPI(corelay.url, corelay.api_key, corelay.api_secret)
        try:
            await mallory.send(
                pb.SignalRequest(
                    add_track=pb.AddTrackRequest(
                        cid="cam-cid", name="cam", type=mpb.TrackType.VIDEO,
                        source=mpb.TrackSource.CAMERA, width=WIDTH, height=HEIGHT,
                    )
                )
            )
            assert (await mallory.expect("track_published")).track_published.cid == "cam-cid"
            offer = publisher_offer(video_codec="FOOCODEC")
            answer = await mallory.offer(offer, 1)
            # The refusal is in the answer, as with LiveKit: the m-line is rejected (port 0).
            video = [m for m in m_lines(answer.sdp) if m.startswith("m=video")]
            assert len(video) == 1 and video[0].split()[1] == "0", answer.sdp
            await mallory.ping()

            # No track was published: not in the API, and never shown to Bob. The
            # metadata update is sent after anything the offer caused, so once Bob has
            # it he would have seen such a track.
            who = api.RoomParticipantIdentity(room=room, identity="mallory")
            got = await lk.room.get_participant(who)
            assert list(got.tracks) == [], got
            await lk.room.update_participant(
                api.UpdateParticipantRequest(room=room, identity="mallory", metadata="after-offer")
            )
            while (await asyncio.wait_for(updated.get(), 10)) != ("mallory", "after-offer"):
                pass
            assert dict(media.bob.remote_participants["mallory"].track_publications) == {}
        finally:
            await lk.aclose()
            await mallory.close()

    run(corelay, room, case)


# e. A client that stops reading ----------------------------------------------------------


def test_a_client_that_stops_reading_is_dropped(corelay: Corelay) -> None:
    """Mallory joins and never reads again while the room's updates pile up for her: the
    server gives up on her (a signal write may take 5 s) instead of buffering them."""
    room = "bad-deaf"

    async def case(media: Media) -> None:
        deaf = await RawTcpWebSocket.connect(corelay, room, "mallory-deaf")
        deaf.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lk = api.LiveKitAPI(corelay.url, corelay.api_key, corelay.api_secret)
        try:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            sid = next(p.sid for p in listed.participants if p.identity == "mallory-deaf")
            # Each metadata change is a ParticipantUpdate of ~30 KB to everyone.
            blob = "x" * 30_000
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            updates = 0
            while True:
                for _ in range(20):
                    await lk.room.update_participant(
                        api.UpdateParticipantRequest(room=room, identity="bob", metadata=f"{updates}{blob}")
                    )
                    updates += 1
                listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
                if all(p.sid != sid for p in listed.participants):
                    break
                assert loop.time() < deadline, f"mallory still listed after {updates} updates"
                await asyncio.sleep(0.2)
        finally:
            await lk.aclose()
            deaf.close()
        await media.keeps_flowing(more=5)

    run(corelay, room, case)
