"""/metrics on the Prometheus port: valid exposition text whose counters move when
media flows between two Python SDK participants."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request

import numpy as np
from livekit import api, rtc

from conftest import _binary, _Server, _SERVERS

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url).read().decode()
    declared = {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            declared[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
            assert family(name, declared) in declared, f"{name} has no # TYPE"
            samples[name + labels] = value
    assert declared.get("livekit_packet_total") == "counter"
    assert declared.get("livekit_participant_total") == "gauge"
    for name in ("livekit_nack_total", "livekit_packet_loss_total", "corelay_channel_drop_total"):
        assert declared.get(name) == "counter", name
    assert declared.get("corelay_shard_busy_seconds_total") == "counter"
    assert declared.get(LATENCY) == "histogram"
    check_histogram(samples, LATENCY)
    return samples


LATENCY = "corelay_forward_latency_seconds"


def family(name: str, declared: dict[str, str]) -> str:
    """A sample's family: its name, or a histogram's without _bucket/_sum/_count."""
    if name in declared:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and declared.get(base) == "histogram":
            return base
    return name


def check_histogram(samples: dict[str, float], name: str) -> None:
    """Buckets in increasing le, cumulative, ending in +Inf equal to _count."""
    buckets = []
    for key, value in samples.items():
        if key.split("{")[0] == name + "_bucket":
            le = re.search(r'le="([^"]+)"', key)
            assert le, key
            buckets.append((float(le.group(1)), value))
    buckets.sort()
    assert buckets and buckets[-1][0] == float("inf"), buckets
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"{name} buckets are not cumulative: {buckets}"
    assert buckets[-1][1] == total(samples, name + "_count")


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    return sum(
        v
        for k, v in samples.items()
        if k.split("{")[0] == name and all(f'{lk}="{lv}"' in k for lk, lv in labels.items())
    )


async def media(url: str, metrics_url: str) -> None:
    def tok(identity: str) -> str:
        grants = api.VideoGrants(room_join=True, room="metrics")
        return api.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()

    before = scrape(metrics_url)
    a, b = rtc.Room(), rtc.Room()
    await b.connect(url, tok("b"))
    await a.connect(url, tok("a"))
    source = rtc.AudioSource(48000, 1)
    await a.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", source),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    # A tone, not silence: Opus DTX would send next to nothing for silence.
    tone = (np.sin(2 * np.pi * 440 * np.arange(480) / 48000) * 8000).astype(np.int16).tobytes()
    end = time.monotonic() + 3
    while time.monotonic() < end:
        await source.capture_frame(rtc.AudioFrame(tone, 48000, 1, 480))
    await asyncio.sleep(1.5)  # shards report once a second
    during = scrape(metrics_url)
    assert total(during, "livekit_participant_total") == 2
    assert total(during, "livekit_room_total") == 1
    assert total(during, "livekit_track_published_total") == 1
    assert total(during, "livekit_track_subscribed_total") == 1
    for direction in ("incoming", "outgoing"):
        assert total(during, "livekit_packet_total", direction=direction) > total(
            before, "livekit_packet_total", direction=direction
        )
    assert total(during, "corelay_forwarded_packet_total") > 50
    assert total(during, "livekit_participant_join_total") == 2
    # Forwarding latency: every forwarded datagram is timed.
    assert total(during, LATENCY + "_count") > total(before, LATENCY + "_count")
    assert total(during, LATENCY + "_sum") > 0
    assert total(during, "corelay_shard_busy_seconds_total") > total(
        before, "corelay_shard_busy_seconds_total"
    )
    # NACK and loss families have a series per direction (zero on a clean loopback).
    for direction in ("incoming", "outgoing"):
        assert any(
            k.startswith("livekit_nack_total{") and f'direction="{direction}"' in k for k in during
        ), direction
        for kind in ("AUDIO", "VIDEO"):
            assert any(
                k.startswith("livekit_packet_loss_total{")
                and f'direction="{direction}"' in k
                and f'type="{kind}"' in k
                for k in during
            ), (direction, kind)
    assert any(
        k.startswith("corelay_channel_drop_total{") and 'channel="webhook"' in k for k in during
    )
    await a.disconnect()
    await b.disconnect()


def test_metrics_move_when_media_flows() -> None:
    server = _Server(_binary(), extra_args=["--config-body", "prometheus:\n  port: 0\n"])
    _SERVERS.append(server)
    try:
        url = server.wait_ready()
        metrics_url = server.metrics_url()
        asyncio.run(asyncio.wait_for(media(url, metrics_url), 60))
    finally:
        server.stop()
        _SERVERS.remove(server)
