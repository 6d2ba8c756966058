"""Hand-driven LiveKit signal connections for tests that misbehave on purpose.

`RawSignal` is a `/rtc` WebSocket (aiohttp) that speaks SignalRequest/SignalResponse
frames itself, so a test can send what no SDK would. `RawTcpWebSocket` goes one level
lower (the WebSocket handshake and frames by hand over a TCP stream) for frames aiohttp
cannot produce: a header announcing more than is sent, or a fragmented message.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import struct
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

import aiohttp
from google.protobuf import json_format
from livekit.protocol import rtc as pb

from conftest import Corelay

# A SignalRequest with a field no version of the protocol has (999, varint): valid
# protobuf, which a server must skip, not fail on.
UNKNOWN_FIELD = b"\xb8\x3e\x01"

CANDIDATE_RE = re.compile(
    r"a=candidate:\S+ \d+ udp \d+ (?P<ip>[0-9a-fA-F.:]+) (?P<port>\d+) typ host", re.I
)


def token(c: Corelay, room: str, identity: str) -> str:
    return c.join_token(room, identity)


def rtc_url(c: Corelay, room: str, identity: str) -> str:
    return f"{c.url}/rtc?access_token={token(c, room, identity)}&protocol=16&sdk=python"


class Closed(NamedTuple):
    """How a connection ended: the close frame's code, or None without one."""

    code: Optional[int]


class RawSignal:
    """A joined participant on a raw `/rtc` WebSocket. A reader task queues every
    SignalResponse and notes how the connection ended."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.http = http
        self.ws = ws
        self.responses: asyncio.Queue[pb.SignalResponse] = asyncio.Queue()
        self.closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        self._ping = 0
        # How each response arrived: "binary" (protobuf) or "text" (protojson).
        self.formats: list[str] = []

    @classmethod
    async def join(
        cls, c: Corelay, room: str, identity: str
    ) -> tuple["RawSignal", pb.JoinResponse]:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(rtc_url(c, room, identity), max_msg_size=0)
        except BaseException:
            await http.close()
            raise
        raw = cls(http, ws)
        first = await raw.next(10)
        assert first.WhichOneof("message") == "join", first
        return raw, first.join

    async def _read(self) -> None:
        code: Optional[int] = None
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    r = pb.SignalResponse()
                    r.ParseFromString(msg.data)
                    self.formats.append("binary")
                    self.responses.put_nowait(r)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    r = json_format.Parse(msg.data, pb.SignalResponse(), ignore_unknown_fields=True)
                    self.formats.append("text")
                    self.responses.put_nowait(r)
            # aiohttp answers a close frame and ends the iteration; the code is kept.
            code = self.ws.close_code
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result(Closed(code if code not in (None, 1006) else None))

    async def send(self, request: pb.SignalRequest) -> None:
        await self.ws.send_bytes(request.SerializeToString())

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def send_json(self, request: pb.SignalRequest) -> None:
        """The request as a protojson text frame."""
        await self.ws.send_str(json_format.MessageToJson(request))

    async def next(self, timeout: float = 10) -> pb.SignalResponse:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def expect(self, kind: str, timeout: float = 10) -> pb.SignalResponse:
        """The next response of one kind; others in between are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = await self.next(max(0.01, deadline - loop.time()))
            if r.WhichOneof("message") == kind:
                return r

    async def offer(self, sdp: str, offer_id: int) -> pb.SessionDescription:
        """Sends a publisher offer and returns the server's answer to it."""
        desc = pb.SessionDescription(type="offer", sdp=sdp, id=offer_id)
        await self.send(pb.SignalRequest(offer=desc))
        return (await self.expect("answer")).answer

    async def ping(self, timeout: float = 10) -> None:
        """A ping round trip. The server handles one connection's requests in order, so
        the pong also means everything sent before it was handled."""
        self._ping += 1
        stamp = self._ping
        await self.send(pb.SignalRequest(ping_req=pb.Ping(timestamp=stamp)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = await self.expect("pong_resp", max(0.01, deadline - loop.time()))
            if r.pong_resp.last_ping_timestamp == stamp:
                return

    async def wait_closed(self, timeout: float = 10) -> Closed:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    async def close(self) -> None:
        try:
            await self.ws.close()
        finally:
            self._reader.cancel()
            await self.http.close()


def host_candidates(sdp: str) -> list[tuple[str, int]]:
    """Every host candidate (ip, port) in an SDP."""
    return [(m["ip"], int(m["port"])) for m in CANDIDATE_RE.finditer(sdp)]


def ice_ufrag(sdp: str) -> str:
    m = re.search(r"^a=ice-ufrag:(\S+)", sdp, re.M)
    assert m, sdp
    return m.group(1)


def is_local_address(ip: str) -> bool:
    """Whether `ip` belongs to this machine (a socket can bind to it)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, 0))
        except OSError:
            return False
    return True


def publisher_offer(video_codec: str = "VP8", audio: bool = False) -> str:
    """A hand-written publisher offer, as a browser would send it, with one video
    m-line that offers only `video_codec` (and optionally Opus audio)."""
    fingerprint = ":".join(f"{b:02X}" for b in os.urandom(32))
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    mids = ["0", "1"] if audio else ["0"]
    lines.append("a=group:BUNDLE " + " ".join(mids))
    transport = [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:rawc",
        "a=ice-pwd:rawclientpassword0123456",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {fingerprint}",
        "a=setup:actpass",
        "a=rtcp-mux",
    ]
    lines += ["m=video 9 UDP/TLS/RTP/SAVPF 96", *transport, "a=mid:0", "a=sendonly"]
    lines += ["a=msid:stream cam-cid", f"a=rtpmap:96 {video_codec}/90000", "a=ssrc:1111 cname:raw"]
    if audio:
        lines += ["m=audio 9 UDP/TLS/RTP/SAVPF 111", *transport, "a=mid:1", "a=sendonly"]
        lines += ["a=msid:stream mic-cid", "a=rtpmap:111 opus/48000/2", "a=ssrc:2222 cname:raw"]
    return "\r\n".join(lines) + "\r\n"


def m_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("m=")]


class RawTcpWebSocket:
    """A WebSocket client written out by hand, for frames aiohttp will not send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, c: Corelay, room: str, identity: str) -> "RawTcpWebSocket":
        url = urlsplit(rtc_url(c, room, identity))
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    @staticmethod
    def frame_header(opcode: int, length: int, fin: bool = True) -> tuple[bytes, bytes]:
        """A masked client frame header for `length` payload bytes, and its mask."""
        first = (0x80 if fin else 0) | opcode
        if length < 126:
            head = struct.pack("!BB", first, 0x80 | length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, length)
        mask = os.urandom(4)
        return head + mask, mask

    @staticmethod
    def masked(payload: bytes, mask: bytes) -> bytes:
        reps = mask * (len(payload) // 4 + 1)
        return bytes(b ^ m for b, m in zip(payload, reps))

    async def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        head, mask = self.frame_header(opcode, len(payload), fin)
        self.writer.write(head + self.masked(payload, mask))
        await self.writer.drain()

    async def send_partial(self, opcode: int, announced: int, payload: bytes) -> None:
        """A frame header announcing `announced` bytes, followed by only `payload`."""
        head, mask = self.frame_header(opcode, announced)
        self.writer.write(head + self.masked(payload, mask))
        await self.writer.drain()

    async def wait_eof(self, timeout: float) -> None:
        """Reads (and discards) until the server ends the connection."""

        async def drain() -> None:
            while await self.reader.read(65536):
                pass

        try:
            await asyncio.wait_for(drain(), timeout)
        except ConnectionError:
            pass  # a reset ends it too

    def close(self) -> None:
        self.writer.close()
