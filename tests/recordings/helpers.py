"""Media for the recording tests: a camera that flashes white and a microphone that beeps at the
same wall-clock instants (every SYNC_PERIOD s), so a recording's audio/video sync can be measured
on the session clock; a quiet tone for a second microphone; and readers that decode a file
counting every error.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import av
import numpy as np
from aiortc import AudioStreamTrack, RTCSessionDescription
from av import AudioFrame, VideoFrame

from media import MediaEngine
from media.engine import codec_preferences
from tests.media.peers import H, W, PatternTrack, Publisher, wait_for

SYNC_PERIOD = 2.0  # s between flash+beep events
EVENT = 0.1  # s each flash / beep lasts
SETTLE = 0.3  # s at the start of a file where no event is looked for (it may be cut)


def _event(wall: float) -> bool:
    return (wall % SYNC_PERIOD) < EVENT


class FlashTrack(PatternTrack):
    """The pattern camera, all white for EVENT s every SYNC_PERIOD s of wall-clock time."""

    def __init__(self, pattern: str = "A") -> None:
        super().__init__(pattern)

    async def recv(self) -> VideoFrame:
        frame = await super().recv()
        wall = self._start + frame.pts / 90000  # when this frame is due (aiortc paces to it)
        if _event(wall):
            white = VideoFrame.from_ndarray(np.full((H, W, 3), 250, np.uint8), format="rgb24")
            white.pts, white.time_base = frame.pts, frame.time_base
            return white
        return frame


class ToneTrack(AudioStreamTrack):
    """8 kHz audio: a 1 kHz beep for EVENT s every SYNC_PERIOD s (beeps=True), and/or a quiet
    continuous tone of `hum` Hz."""

    def __init__(self, beeps: bool = True, hum: float | None = None) -> None:
        super().__init__()
        self.beeps, self.hum = beeps, hum

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        n = frame.samples
        times = self._start + (frame.pts + np.arange(n)) / 8000  # wall time of each sample
        samples = np.zeros(n)
        if self.hum:
            samples += 0.08 * np.sin(2 * math.pi * self.hum * times)
        if self.beeps:
            samples += np.where((times % SYNC_PERIOD) < EVENT, 0.6 * np.sin(2 * math.pi * 1000 * times), 0)
        out = AudioFrame.from_ndarray((samples * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        out.pts, out.sample_rate, out.time_base = frame.pts, frame.sample_rate, frame.time_base
        return out


def publisher(engine: MediaEngine, peer_id: str, tracks: list[tuple[str, object]]) -> Publisher:
    """A tests.media.peers.Publisher with our own tracks ((source, track) pairs)."""
    peer = Publisher(engine, peer_id, video=False, audio=False)
    peer._tracks = list(tracks)
    return peer


async def add_screen(engine: MediaEngine, peer: Publisher, track) -> None:
    """The publisher starts a screen share: one more sendonly transceiver, renegotiated."""
    transceiver = peer.pc.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(codec_preferences("video"))
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    peer.sources[transceiver.mid] = "screen"
    answer = await engine.publish(peer.peer_id, peer.pc.localDescription.sdp, peer.sources)
    await peer.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


async def flowing(engine: MediaEngine, *keys: str, packets: int = 30, timeout: float = 10) -> None:
    """Wait until each "peer/source" track has forwarded some packets."""

    def ready() -> bool:
        tracks = engine.stats()["tracks"]
        return all(tracks.get(key, {}).get("packets", 0) >= packets for key in keys)

    await wait_for(ready, timeout, f"media of {keys}")


# ------------------------------------------------------------------------------------- reading
class Decoded:
    """Everything decoded from one file, with every error counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []
        self.times: list[float] = []  # frame times (s, from the file's start)
        self.values: list[float] = []  # video: mean brightness per frame
        self.audio: np.ndarray | None = None  # mono float samples at self.rate
        self.rate = 48000
        self.kind = ""
        self.duration: float | None = None
        self.width = self.height = 0
        with av.logging.Capture() as logs:
            with av.open(str(path)) as container:
                self.duration = container.duration / 1e6 if container.duration else None
                stream = container.streams[0]
                self.kind = stream.type
                chunks = []
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError as error:
                        self.errors.append(f"decode: {error}")
                        continue
                    for frame in frames:
                        self.times.append(float(frame.time))
                        if self.kind == "video":
                            self.width, self.height = frame.width, frame.height
                            self.values.append(float(frame.to_ndarray(format="gray").mean()))
                        else:
                            self.rate = frame.sample_rate
                            chunks.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1)[0])
                if chunks:
                    self.audio = np.concatenate(chunks)
        self.errors += [f"log: {message}" for level, _, message in logs if level <= av.logging.ERROR]

    @classmethod
    def from_samples(cls, samples: np.ndarray, rate: int) -> Decoded:
        decoded = cls.__new__(cls)
        decoded.audio, decoded.rate, decoded.kind = samples, rate, "audio"
        return decoded


def flash_times(decoded: Decoded) -> list[float]:
    """Times (s, in the file) of the first white frame of each flash."""
    onsets, bright_before = [], True
    for t, value in zip(decoded.times, decoded.values):
        bright = value > 200
        if bright and not bright_before:
            onsets.append(t)
        bright_before = bright
    return [t for t in onsets if t >= SETTLE]  # not a flash cut by the file's start


def beep_times(decoded: Decoded) -> list[float]:
    """Times (s, in the file) where each beep starts (after at least 0.5 s of quiet)."""
    samples = np.abs(decoded.audio)
    loud = np.flatnonzero(samples > 0.3)
    onsets, last = [], -1e9
    for index in loud:
        t = index / decoded.rate
        if t - last > 0.5:
            onsets.append(t)
        last = t
    return [t for t in onsets if t >= SETTLE]  # not a beep cut by the file's start (nor warm-up)


async def sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.time()))
