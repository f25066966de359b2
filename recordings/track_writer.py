"""One track into one WebM (Matroska) file, muxed with PyAV WITHOUT transcoding.

`TrackWriter` writes whole encoded frames (from recordings.depacketize) as they are:
- video: a codec-less mux stream (`OutputContainer.add_mux_stream("vp8", width=, height=)`);
- audio: Opus needs its OpusHead as codec private data, which a codec-less mux stream cannot carry;
  the stream is made from a template stream (`add_stream_from_template`) whose codec context is
  never opened (no encoder, no decoder), with the OpusHead set as its extradata.

Crash safety: Matroska clusters are closed every CLUSTER_MS and every packet is flushed to the OS
(`flush_packets`), so a kill -9 of the process loses at most about CLUSTER_MS (plus what the
writer's queue and reorder buffer held, ~0.3 s); an fsync every SYNC_INTERVAL bounds what a power
cut loses. The file stays readable up to its last whole cluster and recordings.recovery remuxes it
into a finished one. A normal `close()` writes the cues and the
duration (the file is then seekable).

`TimestampMapper` puts a track's RTP timestamps on the session clock (ms since the recording
started): the RTP clock gives the spacing (smooth), packet arrival times give the position (the
lowest-delay packet anchors it, with a slow slew for clock drift and a jump for discontinuities).

Time base everywhere: 1/1000 (Matroska's own), pts in ms from the file's first frame.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from media.vp8 import dimensions as vp8_dimensions
from recordings.depacketize import opus_duration_ms

MS = Fraction(1, 1000)
CLUSTER_MS = 250
SYNC_INTERVAL = 5.0
CODECS = {"video": "vp8", "audio": "opus"}
CLOCK_RATES = {"video": 90000, "audio": 48000}

#: RFC 7845 §5.1 identification header: version 1, 2 channels (WebRTC always signals opus/48000/2),
#: pre-skip 0 (the stream was joined mid-way), 48 kHz, gain 0, channel mapping family 0.
OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 0, 48000, 0, 0)

_opus_template: bytes | None = None


def _opus_template_file() -> bytes:
    """A tiny WebM with one Opus stream (a single silent packet): its stream is the template
    for our Opus output streams. Built once; no codec is opened to make or use it."""
    global _opus_template
    if _opus_template is None:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="webm") as container:
            stream = container.add_mux_stream("opus", 48000)
            stream.time_base = MS
            packet = av.Packet(b"\xfc\xff\xfe")  # TOC 0xfc: one 20 ms CELT stereo frame, silence
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, 0, 0, MS
            container.mux(packet)
        _opus_template = buffer.getvalue()
    return _opus_template


class TimestampMapper:
    """RTP timestamps of one track -> ms on the session clock."""

    WINDOW = 2.0  # s of arrivals over which the lowest delay is looked for
    SLEW_MS = 4.0  # the most the mapping moves later per window (clock drift; ~2000 ppm)
    RESYNC_MS = 1000.0  # a persistent move larger than this is a discontinuity: re-anchor

    def __init__(self, clock_rate: int, origin: float) -> None:
        self.clock_rate = clock_rate
        self.origin = origin
        self.offset: float | None = None  # session ms - media ms
        self._last: int | None = None  # last extended RTP timestamp
        self._window_start = 0.0
        self._window_min = float("inf")

    def map(self, rtp_timestamp: int, arrival: float) -> float:
        if self._last is None:
            extended = rtp_timestamp
        else:
            delta = (rtp_timestamp - self._last) % (1 << 32)
            if delta >= 1 << 31:
                delta -= 1 << 32
            extended = self._last + delta
        if self._last is None or extended > self._last:
            self._last = extended
        media_ms = extended * 1000.0 / self.clock_rate
        delay = (arrival - self.origin) * 1000.0 - media_ms
        if self.offset is None:
            self.offset = delay
            self._window_start = arrival
        elif delay < self.offset:
            self.offset = delay  # a packet that came sooner: the mapping was late
        self._window_min = min(self._window_min, delay)
        if arrival - self._window_start >= self.WINDOW:
            late = self._window_min - self.offset
            if late > self.RESYNC_MS:
                self.offset = self._window_min  # the RTP clock stalled or jumped back
            elif late > 0:
                self.offset += min(late, self.SLEW_MS)
            self._window_start, self._window_min = arrival, float("inf")
        return self.offset + media_ms


@dataclass
class TrackInfo:
    """What the manifest says of one written file."""

    file: str
    kind: str
    codec: str
    start_ms: int  # on the session clock
    duration_ms: int
    frames: int
    bytes: int
    width: int | None = None
    height: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class TrackWriter:
    """Whole frames of one track into `path` (WebM). Not thread-safe: one thread uses it.

    The file is created at the first frame (for video: the first keyframe, which gives the size);
    `start_ms` is that frame's time on the session clock and the file's pts count from there.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        *,
        metadata: dict[str, str] | None = None,
        cluster_ms: int = CLUSTER_MS,
        sync_interval: float = SYNC_INTERVAL,
    ) -> None:
        if kind not in CODECS:
            raise ValueError(f"kind must be 'video' or 'audio', not {kind!r}")
        self.path = Path(path)
        self.kind = kind
        self.codec = CODECS[kind]
        self.metadata = dict(metadata or {})
        self.cluster_ms = cluster_ms
        self.sync_interval = sync_interval
        self.start_ms: int | None = None
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None
        self.closed = False
        self._container: av.container.OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._fd: int | None = None
        self._held: tuple[bytes, int, bool] | None = None  # video: written when the next comes
        self._last_pts = -1
        self._end = 0  # end of the last written frame (ms from the file's start)
        self._frame_ms = 33
        self._synced_at = 0.0

    @property
    def started(self) -> bool:
        """The file exists (its first frame was written), finished or not."""
        return self.start_ms is not None

    def write(self, data: bytes, session_ms: float, keyframe: bool, now: float = 0.0) -> bool:
        """Write one frame stamped `session_ms` on the session clock. False if it was skipped
        (video before the first keyframe). `now` (time.monotonic()) paces the fsyncs."""
        if self.closed:
            raise ValueError("the writer is closed")
        if self._container is None:
            if self.kind == "video":
                size = vp8_dimensions(data) if keyframe else None
                if size is None:
                    return False
                self.width, self.height = size
            self.start_ms = int(round(session_ms))
            try:
                self._open()
            except BaseException:
                self.start_ms = None
                raise
        assert self.start_ms is not None  # set when the file was opened
        pts = int(round(session_ms)) - self.start_ms
        if self.kind == "audio":
            pts = max(pts, self._end)
            duration = max(1, int(round(opus_duration_ms(data)))) if data else 20
            self._mux(data, pts, duration, True)
        else:
            pts = max(pts, self._last_pts + 1)
            if self._held is not None:
                held_data, held_pts, held_key = self._held
                self._frame_ms = pts - held_pts
                self._mux(held_data, held_pts, self._frame_ms, held_key)
            self._held = (data, pts, keyframe)
        self._last_pts = pts
        self.frames += 1
        if now and now - self._synced_at >= self.sync_interval:
            self.sync(now)
        return True

    def sync_if_due(self, now: float) -> None:
        if self._fd is not None and now - self._synced_at >= self.sync_interval:
            self.sync(now)

    def sync(self, now: float = 0.0) -> None:
        """Ask the OS to put what was written on disk (a power cut, not only a kill)."""
        self._synced_at = now
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> TrackInfo | None:
        """Finish the file (cues, duration: seekable). None if no frame was ever written."""
        if self.closed:
            return self.info()
        self.closed = True
        try:
            if self._container is not None:
                if self._held is not None:
                    held_data, held_pts, held_key = self._held
                    self._held = None
                    self._mux(held_data, held_pts, max(1, min(self._frame_ms, 100)), held_key)
                self._container.close()
                if self._fd is not None:
                    os.fsync(self._fd)
        finally:
            self._release()
        return self.info()

    def abandon(self) -> None:
        """Stop using the file without finishing it (after a write error: recovery repairs it)."""
        self.closed = True
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - it already failed once; what was written stays
                pass
        self._release()

    def info(self) -> TrackInfo | None:
        if self.start_ms is None:
            return None
        return TrackInfo(
            file=self.path.name,
            kind=self.kind,
            codec=self.codec,
            start_ms=self.start_ms,
            duration_ms=self._end,
            frames=self.frames,
            bytes=self.path.stat().st_size if self.path.exists() else 0,
            width=self.width,
            height=self.height,
        )

    # -- internals
    def _open(self) -> None:
        container = av.open(
            str(self.path),
            "w",
            format="webm",
            container_options={
                "cluster_time_limit": str(self.cluster_ms),
                "flush_packets": "1",
            },
        )
        try:
            container.metadata.update(self.metadata)
            container.metadata["LIVECLASS_START_MS"] = str(self.start_ms)
            if self.kind == "video":
                stream = container.add_mux_stream("vp8", width=self.width, height=self.height)
            else:
                with av.open(io.BytesIO(_opus_template_file())) as template:
                    stream = container.add_stream_from_template(template.streams.audio[0])
                stream.codec_context.extradata = OPUS_HEAD
            stream.time_base = MS
            container.start_encoding()  # the header (with the tags recovery reads) goes out now
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._fd = os.open(self.path, os.O_RDONLY)

    def _mux(self, data: bytes, pts: int, duration: int, keyframe: bool) -> None:
        assert self._container is not None and self._stream is not None  # _open() came first
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.pts = packet.dts = pts
        packet.duration = duration
        packet.time_base = MS
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        self._end = max(self._end, pts + duration)

    def _release(self) -> None:
        self._container = self._stream = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
