"""Synthetic media for the benchmark: pictures, a VP8 encoder, VP8 packetisation and a voice tone.

Nothing here touches aiortc: pictures are made with numpy in YUV 4:2:0 (what the encoder wants, so
no colour conversion per frame) and encoded with PyAV's libvpx. The camera picture has a band of
noise at the bottom that VP8 cannot compress, so the encoder really runs at its target bitrate
(~1 Mbit/s), like a real camera; the screen picture is a slide with text-like lines and a moving
pointer that changes slide every few seconds, like a shared presentation.
"""

from __future__ import annotations

import fractions
import struct

import av
import numpy as np
from av.audio.frame import AudioFrame

from aiortc import AudioStreamTrack

CAMERA_SIZE = (640, 360)
SCREEN_SIZE = (1280, 720)
VP8_PACKET_MAX = 1300  # as aiortc: payload descriptor + VP8 data per RTP packet
_BARS = [(230, 30, 30), (30, 200, 30), (30, 30, 230), (235, 235, 235)]


def _to_yuv(rgb: np.ndarray) -> np.ndarray:
    """An RGB picture as one planar YUV 4:2:0 array (H*3/2 rows), the layout PyAV expects."""
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


class CameraPictures:
    """640x360 colour bars with a moving black box and a noise band (8 variants that cycle)."""

    NOISE_ROWS = 40

    def __init__(self, size: tuple[int, int] = CAMERA_SIZE, seed: int = 1) -> None:
        self.width, self.height = size
        w, h = size
        rgb = np.zeros((h, w, 3), np.uint8)
        bar = w // len(_BARS)
        for i, colour in enumerate(_BARS):
            rgb[: 2 * h // 3, i * bar : (i + 1) * bar] = colour
        rng = np.random.default_rng(seed)
        self.variants = []
        for _ in range(8):
            picture = rgb.copy()
            picture[h - self.NOISE_ROWS :] = rng.integers(0, 255, (self.NOISE_ROWS, w, 3), np.uint8)
            self.variants.append(_to_yuv(picture))

    def picture(self, n: int) -> np.ndarray:
        image = self.variants[n % len(self.variants)].copy()
        h, w = self.height, self.width
        x = (n * 4) % (w - 40)
        image[2 * h // 3 - 40 : 2 * h // 3, x : x + 40] = 16  # a moving box in the luma plane
        return image


class ScreenPictures:
    """1280x720 slides (dark text-like lines on white), a new slide every `slide_seconds`, with a
    pointer that moves every frame."""

    def __init__(
        self, size: tuple[int, int] = SCREEN_SIZE, fps: int = 15, slide_seconds: float = 4.0, seed: int = 2
    ) -> None:
        self.width, self.height = size
        self.frames_per_slide = max(1, int(fps * slide_seconds))
        w, h = size
        rng = np.random.default_rng(seed)
        self.slides = []
        for _ in range(4):
            rgb = np.full((h, w, 3), 250, np.uint8)
            rgb[:90] = (20, 60, 140)  # title bar
            y = 130
            while y < h - 60:
                x = 80
                while x < w - 120:  # "words"
                    word = int(rng.integers(30, 140))
                    rgb[y : y + 22, x : x + word] = (30, 30, 30)
                    x += word + int(rng.integers(12, 20))
                y += int(rng.integers(40, 56))
            self.slides.append(_to_yuv(rgb))

    def picture(self, n: int) -> np.ndarray:
        image = self.slides[(n // self.frames_per_slide) % len(self.slides)].copy()
        w, h = self.width, self.height
        x, y = 100 + (n * 7) % (w - 200), 150 + (n * 3) % (h - 300)
        image[y : y + 24, x : x + 16] = 16  # the pointer
        return image


class Vp8Encoder:
    """libvpx (via PyAV) in real-time CBR mode, with keyframes on request, like a WebRTC sender."""

    def __init__(self, width: int, height: int, fps: int, bitrate: int) -> None:
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = fractions.Fraction(1, fps)
        codec.framerate = fractions.Fraction(fps, 1)
        codec.bit_rate = bitrate
        codec.gop_size = 3000  # as aiortc: keyframes only when asked for
        codec.thread_count = 1
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "6",
            "lag-in-frames": "0",
            "error-resilient": "1",
            "static-thresh": "1",
            "noise-sensitivity": "4",
            "max-intra-rate": "300",
            "undershoot-pct": "100",
            "overshoot-pct": "15",
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
            "qmin": "2",
            "qmax": "56",
        }
        self.codec = codec
        self.width, self.height = width, height

    def encode(self, picture: np.ndarray, pts: int, keyframe: bool) -> tuple[bytes, bool]:
        """One picture -> (the encoded frame, is it a keyframe); b"" if the encoder dropped it."""
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = pts
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        data, key = b"", False
        for packet in self.codec.encode(frame):
            data += bytes(packet)
            key = key or packet.is_keyframe
        return data, key


def pre_encode(pictures, fps: int, bitrate: int, count: int) -> list[tuple[bytes, bool]]:
    """`count` frames encoded once (the first a keyframe), to be replayed by a cheap sender."""
    encoder = Vp8Encoder(pictures.width, pictures.height, fps, bitrate)
    frames: list[tuple[bytes, bool]] = []
    n = 0
    while len(frames) < count:
        data, key = encoder.encode(pictures.picture(n), n, n == 0)
        n += 1
        if data:
            frames.append((data, key))
    return frames


def vp8_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """RFC 7741 payloads of one frame, as aiortc makes them: X=1, a 15-bit picture id, S=1 on the
    first packet, partition index 0."""
    first = struct.pack("!BBH", 0x90, 0x80, 0x8000 | (picture_id & 0x7FFF))
    rest = struct.pack("!BBH", 0x80, 0x80, 0x8000 | (picture_id & 0x7FFF))
    size = VP8_PACKET_MAX - len(first)
    return [(first if pos == 0 else rest) + frame[pos : pos + size] for pos in range(0, len(frame), size)]


class ToneTrack(AudioStreamTrack):
    """A voice stand-in for aiortc's Opus sender: a 220 Hz tone with some noise in aiortc's own
    20 ms frames (8 kHz mono), so Opus makes packets of a realistic size, unlike digital silence."""

    RATE = 8000
    SAMPLES = 160

    def __init__(self) -> None:
        super().__init__()
        t = np.arange(self.RATE) / self.RATE
        rng = np.random.default_rng(3)
        wave = 3000 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 300, self.RATE)
        self._second = wave.astype(np.int16)
        self._n = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # keeps aiortc's pacing and timestamps
        assert isinstance(frame, AudioFrame)  # (typed as any av Frame)
        start = (self._n * self.SAMPLES) % self.RATE
        self._n += 1
        data = self._second[start : start + self.SAMPLES].tobytes()
        plane = frame.planes[0]
        plane.update(data + bytes(max(0, plane.buffer_size - len(data))))
        return frame
