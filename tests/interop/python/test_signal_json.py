"""Signal frames in protojson, as LiveKit accepts them: a client's text frame switches
its connection to JSON both ways, a binary frame switches it back, and JSON that is
not a SignalRequest ends the connection like bad protobuf does (1007)."""

from __future__ import annotations

import asyncio

from livekit.protocol import rtc as pb

from conftest import Corelay
from raw_signal import RawSignal


async def pong(raw: RawSignal, stamp: int, send) -> str:  # type: ignore[no-untyped-def]
    """Sends a ping with `send` and returns how its pong arrived."""
    await send(pb.SignalRequest(ping_req=pb.Ping(timestamp=stamp)))
    while True:
        r = await raw.expect("pong_resp")
        if r.pong_resp.last_ping_timestamp == stamp:
            return raw.formats[-1]


def test_text_frames_switch_the_connection_to_json_and_back(corelay: Corelay) -> None:
    async def scenario() -> None:
        raw, join = await RawSignal.join(corelay, "json-signal", "jason")
        try:
            assert set(raw.formats) == {"binary"}, "until the client speaks JSON: protobuf, as LiveKit"
            assert await pong(raw, 7, raw.send_json) == "text"
            # Answers in JSON carry whole messages: an update about a newcomer.
            other, _ = await RawSignal.join(corelay, "json-signal", "other")
            try:
                update = await raw.expect("update")
                assert raw.formats[-1] == "text"
                assert "other" in [p.identity for p in update.update.participants]
            finally:
                await other.close()
            assert await pong(raw, 8, raw.send) == "binary"
            assert join.participant.identity == "jason"
        finally:
            await raw.close()

        bad, _ = await RawSignal.join(corelay, "json-signal", "bad-json")
        try:
            await bad.ws.send_str('{"offer": {"sdp": 5, "type": ')
            closed = await bad.wait_closed(10)
            assert closed.code == 1007, closed
        finally:
            await bad.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))
