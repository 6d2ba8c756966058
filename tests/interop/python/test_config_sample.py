"""The documented config-sample.yaml starts a working server (with test ports), and a
malformed config stops the binary with a message naming the key and the file."""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request

from livekit import api

from conftest import REPO_ROOT, _binary, _Server, _SERVERS

SAMPLE = REPO_ROOT / "config-sample.yaml"


def test_config_sample_starts_and_serves_the_api() -> None:
    server = _Server(_binary(), extra_args=["--config", str(SAMPLE), "--bind", "127.0.0.1"], dev=False)
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        assert urllib.request.urlopen(url + "/").read() == b"OK"

        async def list_rooms() -> None:
            lk = api.LiveKitAPI(url, "APIkey1", "replace-with-a-secret-of-at-least-32-characters")
            try:
                await lk.room.create_room(api.CreateRoomRequest(name="sample"))
                rooms = await lk.room.list_rooms(api.ListRoomsRequest())
                assert [r.name for r in rooms.rooms] == ["sample"]
            finally:
                await lk.aclose()

        asyncio.run(list_rooms())
    finally:
        server.stop()
        _SERVERS.remove(server)


def test_malformed_config_names_key_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: 7880\nrtc:\n  port_range_start: 70000\nkeys:\n  k: short\n")
    done = subprocess.run(
        [str(_binary()), "--config", str(bad)], capture_output=True, text=True, timeout=20
    )
    assert done.returncode != 0
    message = done.stderr
    assert "bad.yaml" in message and "rtc.port_range_start" in message, message
    assert "panicked" not in message and "RUST_BACKTRACE" not in message
