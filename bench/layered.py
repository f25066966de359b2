"""Two-layer publishers and measuring subscribers for weak-link tests and the bench (issue 13).

Publisher side (`LayeredSource`): the four video layers a publisher sends on one connection, plus a
microphone, as aiortc tracks that return PRE-ENCODED VP8 (`av.Packet`): aiortc's RTCRtpSender then
only packetises (its own VP8 encoder cannot go below 250 kbit/s, far above the low layers).

  camera      640x360  30 fps  ~1 Mbit/s   colour bars + noise band (sources.CameraPictures)
  camera_low  320x180  15 fps  ~150 kbit/s the same picture, smaller
  screen      1280x720 15 fps  ~1 Mbit/s   a static text slide: 16 px glyphs (5x7 font at 2x),
                                           pointer moving in the title bar (static text does not
                                           fill 1.5 Mbit/s; a keyframe is ~30 KB)
  screen_low  640x360  5 fps   ~60-80 kbit/s  the same slide at half size (8 px glyphs)

Frames are encoded once per process with PyAV's libvpx (sources.Vp8Encoder), a few seconds per
layer, and replayed in a loop. The loop holds a keyframe every `keyframe_interval` seconds, and a
keyframe request (PLI/FIR from the server) makes the next frame sent the loop's first keyframe.
screen_low's interval is 5 s, not 1 s: a 640x360 text keyframe is ~16 KB even at libvpx's lowest
quality (128 kbit, twice the layer's budget for a second), and it takes a few delta frames at
60 kbit/s to make the text sharp again: one keyframe a second would keep it unreadable and at
~160 kbit/s. (Measured: 1 s gives 159 kbit/s, 5 s gives ~80 kbit/s.)

The keyframe request is seen by wrapping the sender's `_send_keyframe` per instance: aiortc 1.16's
RTCRtpSender._handle_rtcp_packet calls self._send_keyframe() on PLI and FIR, and with pre-encoded
packets the flag it sets (__force_keyframe) is never read. `check_aiortc()` fails loudly if that
method goes away.

Readability: `TextSlide` knows where every glyph is; `readability(decoded, layer)` compares each
glyph cell of a decoded frame with the uncompressed reference at that layer's size (normalised
cross-correlation) and returns the fraction of glyphs that match. READABLE (0.9 of glyphs at
NCC >= 0.75) is calibrated in tests/test_layered.py: encoded frames after a few deltas pass; a
Gaussian blur of 1 px (at 640x360) or 4x blockiness fails.

Subscriber side (`TrackMeter`, `Meter`): per received aiortc track, decoded frames per second over a
window, frame sizes (which tell the layer), the latest frame as numpy, RTP bytes/packets received,
and for audio the longest gap (see TrackMeter.longest_gap). These decode: fine for a handful of
measuring peers, not for a load generator (peers.py counts without decoding).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.sources import CameraPictures, Vp8Encoder

VIDEO_CLOCK = 90000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


@dataclass(frozen=True)
class Layer:
    name: str
    width: int
    height: int
    fps: int
    bitrate: int
    keyframe_interval: float  # seconds between keyframes in the replayed loop
    loop_seconds: float  # length of the pre-encoded loop (a multiple of keyframe_interval)


LAYERS = {
    layer.name: layer
    for layer in [
        Layer("camera", 640, 360, 30, 1_000_000, 1.0, 2.0),
        Layer("camera_low", 320, 180, 15, 120_000, 2.0, 4.0),  # a browser's 320x180 stays under its 150k cap
        Layer("screen", 1280, 720, 15, 1_500_000, 1.0, 2.0),
        Layer("screen_low", 640, 360, 5, 60_000, 5.0, 10.0),
    ]
}
#: (source, frame size) -> layer name: what a decoded frame's size means. The size alone is
#: ambiguous (camera and screen_low are both 640x360): the slot tells the source.
LAYER_OF_SIZE = {(layer.name.split("_")[0], (layer.width, layer.height)): layer.name for layer in LAYERS.values()}


def check_aiortc() -> None:
    """The one private aiortc name the publisher relies on."""
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        raise RuntimeError("aiortc RTCRtpSender._send_keyframe is gone: keyframe requests unseen")


# ----------------------------------------------------------------------------------- the slide
_FONT = {  # 5x7, rows top to bottom
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "N": "10001 11001 10101 10011 10001 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "0": "01110 10011 10101 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00110 01000 10000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
}
GLYPHS = {c: np.array([[b == "1" for b in row] for row in rows.split()]) for c, rows in _FONT.items()}
PAPER, INK, BAR = 245, 20, 60


class TextSlide:
    """A 1280x720 grey slide: a title bar (where the pointer moves) and lines of 16 px glyphs
    (the 5x7 font at 2x in 12x16 cells, lines every 40 px), in words of 2-8 glyphs.

    `glyphs` lists (x, y, char) at 1280x720; `reference(w, h)` is the slide at a layer's size
    (area-averaged, so 1 px strokes at 640x360), the truth a decoded frame is compared with."""

    WIDTH, HEIGHT, TITLE = 1280, 720, 64

    def __init__(self, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        chars = list(GLYPHS)
        image = np.full((self.HEIGHT, self.WIDTH), PAPER, np.uint8)
        image[: self.TITLE] = BAR
        self.glyphs: list[tuple[int, int, str]] = []
        for y in range(112, self.HEIGHT - 48, 40):
            x = 64
            while x < self.WIDTH - 120:
                for _ in range(int(rng.integers(2, 9))):
                    char = chars[int(rng.integers(len(chars)))]
                    image[y : y + 14, x : x + 10][np.kron(GLYPHS[char], np.ones((2, 2), bool))] = INK
                    self.glyphs.append((x, y, char))
                    x += 12
                x += 12
        self.image = image

    def reference(self, width: int, height: int) -> np.ndarray:
        f = self.WIDTH // width
        return self.image.reshape(height, f, width, f).mean(axis=(1, 3)).astype(np.uint8)

    def picture(self, n: int, width: int, height: int) -> np.ndarray:
        """Frame n at a layer's size as YUV 4:2:0 (grey: chroma 128), the pointer in the title bar."""
        luma = self.reference(width, height)
        f = self.WIDTH // width
        x = (100 + n * 14) % (self.WIDTH - 200) // f
        luma[8 // f : 56 // f, x : x + 32 // f] = 235
        chroma = np.full((height // 2, width), 128, np.uint8)  # U then V, as PyAV lays them out
        return np.concatenate([luma, chroma])


_SLIDE: TextSlide | None = None


def slide() -> TextSlide:
    global _SLIDE
    if _SLIDE is None:
        _SLIDE = TextSlide()
    return _SLIDE


def readability(decoded: np.ndarray, layer: str = "screen_low", min_ncc: float = 0.75) -> float:
    """The fraction of the slide's glyphs that a decoded grey frame (H x W luma) shows faithfully:
    per glyph cell, the normalised cross-correlation with the uncompressed reference >= min_ncc.

    A cell is the glyph plus a 1-cell-pixel margin (12x16 at 1280x720, 6x8 at 640x360). Blur and
    blockiness spread ink into the strokes' gaps and drive the NCC down; a uniform brightness or
    contrast shift does not (that is not unreadable)."""
    spec = LAYERS[layer]
    if decoded.shape[:2] != (spec.height, spec.width):
        return 0.0
    f = TextSlide.WIDTH // spec.width
    reference = slide().reference(spec.width, spec.height).astype(np.float32)
    decoded = decoded.astype(np.float32)
    good = 0
    for x, y, _ in slide().glyphs:
        x0, y0 = x // f - 1, y // f - 1
        cell = np.s_[max(0, y0) : y0 + 16 // f + 1, max(0, x0) : x0 + 12 // f + 1]
        a, b = reference[cell].ravel(), decoded[cell].ravel()
        a, b = a - a.mean(), b - b.mean()
        denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
        good += denominator > 0 and float((a * b).sum()) / denominator >= min_ncc
    return good / len(slide().glyphs)


#: The share of glyphs readability() must find for a frame to count as readable.
READABLE = 0.9


# ----------------------------------------------------------------------------------- publishing
_ENCODED: dict[str, list[tuple[bytes, bool]]] = {}


def _camera_pictures(layer: Layer) -> CameraPictures:
    """The camera picture at the layer's size, its noise band (what keeps libvpx at its target)
    scaled with it: 40 rows at 360, 20 at 180."""

    class Pictures(CameraPictures):
        NOISE_ROWS = CameraPictures.NOISE_ROWS * layer.height // 360

    return Pictures((layer.width, layer.height), seed=1)


def encoded_loop(name: str) -> list[tuple[bytes, bool]]:
    """The layer's loop of (VP8 frame, keyframe), encoded once per process (~1-2 s for screen)."""
    if name not in _ENCODED:
        layer = LAYERS[name]
        encoder = Vp8Encoder(layer.width, layer.height, layer.fps, layer.bitrate)
        every = max(1, round(layer.keyframe_interval * layer.fps))
        if name.startswith("camera"):
            pictures = _camera_pictures(layer)
            picture = pictures.picture
        else:

            def picture(n, w=layer.width, h=layer.height):
                return slide().picture(n, w, h)

        frames = []
        for n in range(round(layer.loop_seconds * layer.fps)):
            data, key = encoder.encode(picture(n), n, n % every == 0)
            frames.append((data, key))  # b"" (a dropped frame) is skipped when replayed
        assert frames[0][1], "the loop must start with a keyframe"
        _ENCODED[name] = frames
    return _ENCODED[name]


class LayerTrack(MediaStreamTrack):
    """One layer as an aiortc video track of pre-encoded VP8 `av.Packet`s, paced at the layer's fps."""

    kind = "video"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.layer = LAYERS[name]
        self.frames = encoded_loop(name)
        self.index = 0
        self.n = 0
        self._start: float | None = None
        self._keyframe_wanted = False
        self.requests: list[float] = []  # monotonic times of keyframe requests
        self.keyframes_sent: list[float] = []  # monotonic times keyframes were handed to aiortc
        self.frames_sent = self.bytes_sent = 0

    def request_keyframe(self) -> None:
        self.requests.append(time.monotonic())
        self._keyframe_wanted = True

    def attach(self, sender: RTCRtpSender) -> None:
        """See the server's PLI/FIR on this sender (wraps its `_send_keyframe`, per instance)."""
        check_aiortc()
        original = sender._send_keyframe

        def send_keyframe() -> None:
            self.request_keyframe()
            original()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        while True:
            delay = self._start + self.n / self.layer.fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._keyframe_wanted:
                self._keyframe_wanted = False
                self.index = 0
            data, key = self.frames[self.index]
            self.index = (self.index + 1) % len(self.frames)
            n, self.n = self.n, self.n + 1
            if data:
                break
        packet = av.Packet(data)
        packet.pts, packet.time_base = n * VIDEO_CLOCK // self.layer.fps, TIME_BASE
        self.frames_sent += 1
        self.bytes_sent += len(data)
        if key:
            self.keyframes_sent.append(time.monotonic())
        return packet

    def keyframe_delays(self) -> list[float]:
        """Per keyframe request, seconds until a keyframe was handed to aiortc."""
        return [next((k - r for k in self.keyframes_sent if k >= r), float("nan")) for r in self.requests]

    def stats(self) -> dict:
        return {
            "frames": self.frames_sent,
            "bytes": self.bytes_sent,
            "keyframes": len(self.keyframes_sent),
            "keyframe_requests": len(self.requests),
        }


class VoiceTrack(MediaStreamTrack):
    """A microphone as a browser sends it: Opus mono at 32 kbit/s in 20 ms packets, with in-band FEC,
    pre-encoded with PyAV's libopus (aiortc's own Opus encoder sends 96 kbit/s of stereo, three times
    a voice: on a 300 kbit/s link that alone would crowd out the video). A 220 Hz tone with noise."""

    kind = "audio"
    RATE, SAMPLES = 48000, 960

    def __init__(self, bitrate: int = 32000) -> None:
        super().__init__()
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate, codec.layout, codec.format = self.RATE, "mono", "s16"
        codec.bit_rate = bitrate
        codec.options = {"application": "voip", "fec": "1", "packet_loss": "10", "frame_duration": "20"}
        t = np.arange(self.RATE) / self.RATE
        wave = 3000 * np.sin(2 * np.pi * 220 * t) + np.random.default_rng(3).normal(0, 300, self.RATE)
        self.packets = []
        for start in range(0, self.RATE, self.SAMPLES):  # one second, encoded once and replayed
            frame = av.AudioFrame.from_ndarray(
                wave[start : start + self.SAMPLES].astype(np.int16)[None, :], format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = self.RATE, start
            self.packets += [bytes(p) for p in codec.encode(frame)]
        self.packets += [bytes(p) for p in codec.encode(None)]
        self.n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.n * self.SAMPLES / self.RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.packets[self.n % len(self.packets)])
        packet.pts, packet.time_base = self.n * self.SAMPLES, fractions.Fraction(1, self.RATE)
        self.n += 1
        return packet


def _preferences(kind: str) -> list:
    """VP8 (+RTX) or Opus only, as the server insists (media/engine.py codec_preferences)."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    wanted = {"video": "video/vp8", "audio": "audio/opus"}[kind]
    return [c for c in codecs if c.mimeType.lower() == wanted] + [
        c for c in codecs if kind == "video" and c.mimeType.lower() == "video/rtx"
    ]


class LayeredSource:
    """The publisher's media: `layers` (names of LAYERS) and a microphone tone, for one aiortc pc.

    source = LayeredSource()
    source.add_to(pc)                    # before createOffer
    await pc.setLocalDescription(await pc.createOffer())
    tracks = source.announce()           # [{"mid": "0", "source": "camera"}, ...] for rtc:publish
    """

    def __init__(self, layers=("camera", "camera_low", "screen", "screen_low"), audio: bool = True) -> None:
        self.tracks: dict[str, MediaStreamTrack] = {name: LayerTrack(name) for name in layers}
        if audio:
            self.tracks["microphone"] = VoiceTrack()
        self.transceivers: dict[str, RTCRtpTransceiver] = {}

    def add_to(self, pc) -> None:
        for name, track in self.tracks.items():
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(_preferences(track.kind))
            if isinstance(track, LayerTrack):
                track.attach(transceiver.sender)
            self.transceivers[name] = transceiver

    def announce(self) -> list[dict]:
        """(mid, source) per track, once the local description is set."""
        return [{"mid": t.mid, "source": name} for name, t in self.transceivers.items()]

    def stats(self) -> dict:
        return {name: t.stats() for name, t in self.tracks.items() if isinstance(t, LayerTrack)}

    def stop(self) -> None:
        for track in self.tracks.values():
            track.stop()


# ---------------------------------------------------------------------------------- subscribing
class TrackMeter:
    """Reads (and so decodes) one received aiortc track and measures it.

    Audio gaps: aiortc's audio receiver outputs only the frames it got (no concealment), so a lost
    packet is simply a missing 20 ms. A listener plays decoded audio in arrival order without extra
    buffering: audio is available until `covered`, which each frame moves to max(covered, arrival)
    + its duration (samples / rate). A frame that arrives after `covered` ends a gap of
    (arrival - covered): time during which nothing decoded was left to play. `longest_gap` is the
    longest such gap after the first frame. `longest_pts_gap` is the other view: the longest run of
    missing media time between consecutive frames' pts (lost audio, whatever the arrival jitter).
    """

    def __init__(
        self, track, receiver: RTCRtpReceiver | None = None, name: str | None = None, window: float = 30.0
    ) -> None:
        self.track, self.kind, self.name = track, track.kind, name or track.id
        self.frames = 0
        self.times: deque[float] = deque()  # arrival times of decoded frames (last `window` s)
        self.sizes: deque[tuple[float, tuple[int, int]]] = deque()
        self._window = window
        self.last_frame = None  # the latest decoded av.VideoFrame
        self.first_at: float | None = None
        self.covered: float | None = None
        self.longest_gap = 0.0
        self.longest_pts_gap = 0.0
        self.gaps: list[tuple[float, float]] = []  # (start, seconds) of gaps > 50 ms
        self.pts_gaps: list[tuple[float, float]] = []  # (when, seconds) of missing media time > 20 ms
        self._next_pts: int | None = None
        self.rtp_packets = self.rtp_bytes = 0
        self.sequences: list[tuple[float, int]] = []  # audio: (arrival, RTP sequence number) of every packet
        self.nacked = 0  # sequence numbers asked for again (after tame_nacks' filter)
        self._nacks: dict[int, tuple[int, float]] = {}  # seq -> (times asked, last asked)
        if receiver is not None:
            self._count_rtp(receiver)
            if self.kind == "video":
                self._tame_nacks(receiver)
        self.task = asyncio.ensure_future(self._run())

    def _count_rtp(self, receiver: RTCRtpReceiver) -> None:
        """Count RTP payload bytes per track (wraps the receiver's `_handle_rtp_packet`)."""
        original = receiver._handle_rtp_packet

        async def handle(packet, arrival_time_ms):
            self.rtp_packets += 1
            self.rtp_bytes += len(packet.payload)
            if self.kind == "audio":
                self.sequences.append((time.monotonic(), packet.sequence_number))
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle  # type: ignore[method-assign]

    NACK_TRIES, NACK_SPACING = 3, 0.3

    def _tame_nacks(self, receiver: RTCRtpReceiver) -> None:
        """aiortc's receiver NACKs *every* still-missing packet of its last 128 on each new loss,
        so on a lossy, full link the sender's retransmissions snowball (measured: ~1 Mbit/s of
        retransmissions offered to a 300 kbit/s link, nothing decodable). A browser asks for each
        packet a few times, an RTT apart; so does this filter on the receiver's
        `_send_rtcp_nack` (aiortc 1.16 private): each sequence number at most NACK_TRIES times,
        NACK_SPACING seconds apart."""
        original = receiver._send_rtcp_nack

        async def send_nack(media_ssrc: int, lost: list[int]) -> None:
            now, wanted = time.monotonic(), []
            for seq in lost:
                tries, last = self._nacks.get(seq, (0, 0.0))
                if tries < self.NACK_TRIES and now - last >= self.NACK_SPACING:
                    self._nacks[seq] = (tries + 1, now)
                    wanted.append(seq)
            if len(self._nacks) > 4096:
                self._nacks = dict(list(self._nacks.items())[-1024:])
            if wanted:
                self.nacked += len(wanted)
                await original(media_ssrc, wanted)

        receiver._send_rtcp_nack = send_nack  # type: ignore[method-assign]

    async def _run(self) -> None:
        try:
            while True:
                self._on_frame(await self.track.recv(), time.monotonic())
        except (MediaStreamError, asyncio.CancelledError):
            return

    def _on_frame(self, frame, now: float) -> None:
        self.frames += 1
        self.first_at = self.first_at or now
        self.times.append(now)
        while self.times and self.times[0] < now - self._window:
            self.times.popleft()
        if self.kind == "video":
            self.last_frame = frame
            self.sizes.append((now, (frame.width, frame.height)))
            while self.sizes and self.sizes[0][0] < now - self._window:
                self.sizes.popleft()
            return
        duration = frame.samples / frame.sample_rate
        if self.covered is not None and now > self.covered:
            gap = now - self.covered
            self.longest_gap = max(self.longest_gap, gap)
            if gap > 0.05:
                self.gaps.append((self.covered, gap))
        self.covered = max(self.covered or now, now) + duration
        if frame.pts is not None and frame.time_base is not None:
            if self._next_pts is not None and frame.pts > self._next_pts:
                missing = float((frame.pts - self._next_pts) * frame.time_base)
                self.longest_pts_gap = max(self.longest_pts_gap, missing)
                if missing > 0.02:
                    self.pts_gaps.append((now, missing))
            self._next_pts = frame.pts + frame.samples

    def longest_loss(self, since: float, packet_time: float = 0.02) -> float:
        """Audio: the longest stretch of sound (seconds) whose packets never arrived since `since`
        (time.monotonic): runs of missing sequence numbers between the packets that came, each packet
        `packet_time` long. What reached the receiver, before its jitter buffer decides what to play."""
        seen = sorted({seq for at, seq in self.sequences if at >= since})
        if len(seen) < 2:
            return 0.0
        longest = max((b - a - 1) for a, b in zip(seen, seen[1:]) if b - a < 0x8000)
        return longest * packet_time

    def fps(self, window: float = 2.0) -> float:
        """Decoded frames per second over the last `window` seconds."""
        now = time.monotonic()
        return sum(1 for t in self.times if t >= now - window) / window

    def frame_sizes(self, window: float = 2.0) -> Counter:
        """(width, height) -> decoded frames of that size in the last `window` seconds."""
        now = time.monotonic()
        return Counter(size for t, size in self.sizes if t >= now - window)

    def layer(self, window: float = 2.0, source: str | None = None) -> str | None:
        """The layer most frames of the last `window` seconds came from, by size: "camera",
        "camera_low", "screen" or "screen_low" ("WxH" if unknown, None if no frame). `source`
        ("camera" or "screen") defaults to the one the meter's name contains (a slot name such as
        "teacher_screen" or a source name)."""
        sizes = self.frame_sizes(window).most_common(1)
        if not sizes:
            return None
        if source is None:
            source = "screen" if "screen" in self.name else "camera" if "camera" in self.name else None
        if source is None:  # no layer of no source: the size alone
            return "%dx%d" % sizes[0][0]
        return LAYER_OF_SIZE.get((source, sizes[0][0]), "%dx%d" % sizes[0][0])

    def latest(self, format: str = "gray") -> np.ndarray | None:
        """The latest decoded video frame as numpy ("gray": H x W luma; "rgb24": H x W x 3)."""
        return None if self.last_frame is None else self.last_frame.to_ndarray(format=format)

    def stats(self, window: float = 2.0) -> dict:
        out: dict[str, Any] = {
            "frames": self.frames,
            "fps": round(self.fps(window), 1),
            "rtp_packets": self.rtp_packets,
            "rtp_bytes": self.rtp_bytes,
        }
        if self.kind == "video":
            out["layer"] = self.layer(window)
        else:
            out["longest_gap"] = round(self.longest_gap, 3)
            out["longest_pts_gap"] = round(self.longest_pts_gap, 3)
        return out

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def route_rtx(receiver: RTCRtpReceiver) -> None:
    """Let an aiortc 1.16 receiver get its retransmissions. aiortc routes an incoming packet by SSRC
    (only the media SSRCs of the SDP are registered) or by payload type if just one receiver has it;
    with two video receivers on one connection the RTX payload type is shared, so every RTX packet is
    discarded (measured: 0 of 480 delivered) and a lost packet is never repaired. A browser routes them
    by their SSRC group. This wraps the transport's router (private, once per transport) to route an
    RTX SSRC to the receiver whose SDP names it."""
    router: Any = receiver.transport._rtp_router  # aiortc's private RtpRouter, patched below
    if getattr(router, "_routes_rtx", False):
        return
    original = router.route_rtp

    def route(packet):
        found = original(packet)
        if found is None:
            for candidate in router.receivers:
                if packet.ssrc in getattr(candidate, "_RTCRtpReceiver__rtx_ssrc", {}):
                    router.ssrc_table[packet.ssrc] = candidate
                    return candidate
        return found

    router.route_rtp = route
    router._routes_rtx = True


class Meter:
    """A TrackMeter for every track a pc receives, keyed by mid (or by a name from `names`).

    meter = Meter(pc, names={"0": "teacher_camera"})   # before setRemoteDescription
    ...
    meter["teacher_camera"].fps(), meter["teacher_camera"].layer(), meter.stats()
    """

    def __init__(self, pc, names: dict[str, str] | None = None) -> None:
        self.pc, self.names = pc, names if names is not None else {}
        self.tracks: dict[str, TrackMeter] = {}
        pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        name = self.names.get(transceiver.mid, transceiver.mid)
        self.tracks[name] = TrackMeter(track, transceiver.receiver, name)
        route_rtx(transceiver.receiver)

    def __getitem__(self, name: str) -> TrackMeter:
        return self.tracks[name]

    def stats(self, window: float = 2.0) -> dict:
        return {name: meter.stats(window) for name, meter in self.tracks.items()}

    async def close(self) -> None:
        for meter in self.tracks.values():
            await meter.close()
