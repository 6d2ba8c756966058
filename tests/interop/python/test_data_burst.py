"""A reliable data burst larger than a subscriber's SCTP buffer (str0m's 128 KiB) arrives
whole and in order: what the buffer cannot take waits on the server instead of being
dropped and counted as delivered."""

from __future__ import annotations

import asyncio

from livekit import rtc

from conftest import Corelay

MESSAGES = 60
SIZE = 14_000  # bytes; 60 of them are ~840 kB, several times the SCTP buffer


async def burst(c: Corelay, room: str) -> None:
    alice, bob = rtc.Room(), rtc.Room()
    got: list[int] = []
    done = asyncio.Event()

    @bob.on("data_received")
    def _on_data(packet: rtc.DataPacket) -> None:
        got.append(int.from_bytes(packet.data[:4], "big"))
        if len(got) >= MESSAGES:
            done.set()

    try:
        await bob.connect(c.url, c.join_token(room, "bob"))
        await alice.connect(c.url, c.join_token(room, "alice"))
        await asyncio.sleep(0.5)  # bob's subscriber data channels open
        for i in range(MESSAGES):
            payload = i.to_bytes(4, "big") + bytes([i % 251]) * (SIZE - 4)
            await alice.local_participant.publish_data(payload, reliable=True, topic="burst")
        try:
            await asyncio.wait_for(done.wait(), 20)
        except asyncio.TimeoutError:
            pass
        assert got == list(range(MESSAGES)), f"bob got {len(got)} of {MESSAGES}: {got}"
    finally:
        await bob.disconnect()
        await alice.disconnect()


def test_reliable_burst_beyond_the_sctp_buffer_arrives_whole(corelay: Corelay) -> None:
    for i in range(2):
        asyncio.run(asyncio.wait_for(burst(corelay, f"burst-{i}"), 60))
