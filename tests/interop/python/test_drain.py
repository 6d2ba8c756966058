"""Graceful drain: SIGTERM during a call makes the SDK see a clean, final disconnect
(SERVER_SHUTDOWN, no reconnect attempt), health turns 503, and the process exits 0
within the drain timeout."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request

from livekit import api, rtc

from conftest import _binary, _Server, _SERVERS

DRAIN_TIMEOUT_S = 10


async def drain_scenario(server: _Server, url: str) -> None:
    token = (
        api.AccessToken("devkey", "secret")
        .with_identity("alice")
        .with_grants(api.VideoGrants(room_join=True, room="drain"))
        .to_jwt()
    )
    room = rtc.Room()
    reasons: list[int] = []
    gone = asyncio.Event()

    @room.on("disconnected")
    def _on_disconnected(reason):  # type: ignore[no-untyped-def]
        reasons.append(reason)
        gone.set()

    @room.on("reconnecting")
    def _on_reconnecting():  # type: ignore[no-untyped-def]
        reasons.append(-1)

    await room.connect(url, token)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(gone.wait(), DRAIN_TIMEOUT_S)
    assert reasons == [rtc.DisconnectReason.SERVER_SHUTDOWN], reasons
    code = await asyncio.get_running_loop().run_in_executor(
        None, server.proc.wait, DRAIN_TIMEOUT_S
    )
    assert code == 0
    assert time.monotonic() - started < DRAIN_TIMEOUT_S


def test_sigterm_drains_participants_and_exits_zero() -> None:
    server = _Server(_binary(), extra_args=["--drain-timeout", str(DRAIN_TIMEOUT_S)])
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        asyncio.run(drain_scenario(server, url))
    finally:
        server.stop()
        _SERVERS.remove(server)


def test_idle_server_exits_zero_on_sigterm_and_sigint() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = _Server(_binary())
        _SERVERS.append(server)
        try:
            url = server.wait_ready()
            assert urllib.request.urlopen(url + "/").status == 200
            server.proc.send_signal(sig)
            assert server.proc.wait(5) == 0
        finally:
            server.stop()
            _SERVERS.remove(server)
