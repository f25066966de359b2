"""The benchmark's media peers: a publisher that knows when each frame left, and a subscriber that
counts what arrives without decoding it. Signaling is not their business (see client.py, relay.py).

Both reuse the taps of media/_aiortc.py, the one module allowed to reach into aiortc:
- Publisher video goes through a `SenderTap`: the bench encodes (PyAV libvpx) or replays VP8 frames
  itself, packetises them as aiortc does, and writes the RTP packets through the sender's SRTP
  session. So it knows the exact moment each frame's packets went to the socket (for the latency
  measurement), and it sees the server's PLIs (a keyframe follows) and NACKs (answered from a ring).
  Audio is aiortc's ordinary Opus sender.
- Subscriber tracks are read through a `ReceiverTap`: every RTP packet is counted before aiortc's
  jitter buffer; no decoder thread is ever started. RTCP receiver reports and NACKs still go out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections import deque
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.sources import (
    CameraPictures,
    ScreenPictures,
    ToneTrack,
    Vp8Encoder,
    pre_encode,
    vp8_payloads,
)
from media.probes import (
    ABS_SEND_TIME_URI,
    MID_URI,
    SEND_ERRORS,
    ReceiverTap,
    Retransmissions,
    SenderTap,
    abs_send_time,
    codec_preferences,
    ntp_now,
    one_byte_extensions,
    rtp_header,
    vp8_keyframe_start,
)

CONFIG = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
VIDEO_CLOCK = 90000


def now() -> float:
    """The clock every bench process shares (CLOCK_MONOTONIC is system-wide on Linux)."""
    return time.monotonic()


# ------------------------------------------------------------------------------------ publishing
class VideoSender:
    """Writes whole VP8 frames as RTP through one SenderTap; logs when each frame left."""

    RING = 1024

    def __init__(self, sender: Any, log_frames: bool = True) -> None:
        self.ready = asyncio.Event()
        self.tap = SenderTap(
            sender,
            on_ready=self.ready.set,
            on_keyframe_request=self._on_pli,
            on_nack=self._on_nack,
            on_remb=self._on_remb,
            on_report=lambda *a: None,
        )
        self.sequence = random.randint(0, 0x7FFF)
        self.timestamp_origin = random.getrandbits(32)
        self.picture_id = random.randint(0, 0x7FFF)
        self.retransmissions = Retransmissions(self.tap, self.RING)  # the server's NACKs, as the SFU does
        self.keyframe_wanted = False
        self.frames = self.keyframes = self.packets = self.bytes = 0
        self.plis = self.nacks = self.send_errors = 0
        self.remb: int | None = None
        #: (rtp timestamp, first packet sent, last packet sent, payload bytes, keyframe) per frame
        self.log: deque | None = deque(maxlen=30 * 600) if log_frames else None

    def _on_pli(self) -> None:
        self.plis += 1
        self.keyframe_wanted = True

    def _on_remb(self, bitrate: int, ssrcs: list[int] | None = None) -> None:
        self.remb = bitrate  # noted only: the bench's encoders keep their fixed target

    def _on_nack(self, lost: list[int]) -> None:
        self.nacks += 1
        self.retransmissions.resend(lost)

    def send_frame(self, frame: bytes, rtp_ticks: int, keyframe: bool) -> None:
        tap = self.tap
        timestamp = (self.timestamp_origin + rtp_ticks) & 0xFFFFFFFF
        ntp = ntp_now()
        ids = tap.extension_ids
        elements = []
        if ids.get(MID_URI) and tap.mid is not None:
            elements.append((ids[MID_URI], tap.mid.encode()))
        if ids.get(ABS_SEND_TIME_URI):
            elements.append((ids[ABS_SEND_TIME_URI], abs_send_time(ntp)))
        extensions = one_byte_extensions(elements)
        payloads = vp8_payloads(frame, self.picture_id)
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        tap.set_sr_mapping(ntp, timestamp)
        last = len(payloads) - 1
        first_sent = now()
        size = 0
        for i, payload in enumerate(payloads):
            marker = i == last
            sequence = self.sequence
            self.sequence = (sequence + 1) & 0xFFFF
            self.retransmissions.keep(sequence, timestamp, marker, extensions, payload)
            size += len(payload)
            try:
                tap.send(rtp_header(marker, tap.payload_type, sequence, timestamp, tap.ssrc, extensions) + payload)
            except SEND_ERRORS:
                self.send_errors += 1
                continue
            tap.count_sent(len(payload))
            self.packets += 1
            self.bytes += len(payload)
        self.frames += 1
        self.keyframes += keyframe
        if self.log is not None:
            self.log.append((timestamp, first_sent, now(), size, keyframe))

    def stats(self) -> dict:
        return {
            "frames": self.frames,
            "keyframes": self.keyframes,
            "packets": self.packets,
            "bytes": self.bytes,
            "plis": self.plis,
            "nacks": self.nacks,
            "retransmitted": self.retransmissions.retransmitted,
            "send_errors": self.send_errors,
            "remb": self.remb,
        }


class LiveVideo:
    """Pictures encoded in real time at `fps` (the encoder runs in its own thread; PyAV releases
    the GIL), a keyframe whenever the server asks for one."""

    def __init__(self, sender: VideoSender, pictures, fps: int, bitrate: int) -> None:
        self.sender, self.pictures, self.fps = sender, pictures, fps
        self.encoder = Vp8Encoder(pictures.width, pictures.height, fps, bitrate)
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-encoder")
        self.late = 0  # frames skipped because the encoder fell behind

    async def run(self) -> None:
        await self.sender.ready.wait()
        loop = asyncio.get_running_loop()
        start, n = now(), 0
        step = VIDEO_CLOCK // self.fps
        while True:
            delay = start + n / self.fps - now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -2 / self.fps:  # fell behind: skip rather than burst
                skipped = int(-delay * self.fps)
                self.late += skipped
                n += skipped
            key = n == 0 or self.sender.keyframe_wanted
            self.sender.keyframe_wanted = False
            data, is_key = await loop.run_in_executor(
                self.executor, self.encoder.encode, self.pictures.picture(n), n, key
            )
            if data:
                self.sender.send_frame(data, n * step, is_key)
            n += 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class ReplayVideo:
    """Frames encoded once and replayed at `fps` (cheap: for the students' cameras). A keyframe
    request restarts the loop at its keyframe; otherwise the delta frames cycle."""

    def __init__(self, sender: VideoSender, frames: list[tuple[bytes, bool]], fps: int) -> None:
        self.sender, self.frames, self.fps = sender, frames, fps

    async def run(self) -> None:
        await self.sender.ready.wait()
        start, n, index = now(), 0, 0
        step = VIDEO_CLOCK // self.fps
        while True:
            delay = start + n / self.fps - now()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.sender.keyframe_wanted or n == 0:
                self.sender.keyframe_wanted = False
                index = 0
            data, key = self.frames[index]
            self.sender.send_frame(data, n * step, key)
            index = index + 1 if index + 1 < len(self.frames) else 1
            n += 1

    def close(self) -> None:
        pass


_REPLAY_CACHE: dict[tuple, list] = {}


def replay_frames(fps: int = 30, bitrate: int = 1_000_000, count: int = 60) -> list[tuple[bytes, bool]]:
    key = (fps, bitrate, count)
    if key not in _REPLAY_CACHE:
        _REPLAY_CACHE[key] = pre_encode(CameraPictures(seed=7), fps, bitrate, count)
    return _REPLAY_CACHE[key]


class Publisher:
    """One publish connection: camera (live-encoded or replayed), microphone, screen, as asked."""

    def __init__(
        self,
        *,
        camera: str | None = "live",
        microphone: bool = True,
        screen: bool = False,
        camera_bitrate: int = 1_000_000,
        screen_bitrate: int = 1_500_000,
    ) -> None:
        self.pc = RTCPeerConnection(CONFIG)
        self.senders: dict[str, VideoSender] = {}
        self.sources: dict[str, Any] = {}
        self._mids: list[tuple[Any, str]] = []
        self._tasks: list[asyncio.Task] = []
        if camera:
            sender = self._video("camera")
            self.sources["camera"] = (
                LiveVideo(sender, CameraPictures(), 30, camera_bitrate)
                if camera == "live"
                else ReplayVideo(sender, replay_frames(), 30)
            )
        if microphone:
            transceiver = self.pc.addTransceiver(ToneTrack(), direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences("audio"))
            self._mids.append((transceiver, "microphone"))
        if screen:
            sender = self._video("screen")
            self.sources["screen"] = LiveVideo(sender, ScreenPictures(fps=15), 15, screen_bitrate)

    def _video(self, source: str) -> VideoSender:
        transceiver = self.pc.addTransceiver("video", direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences("video"))
        self._mids.append((transceiver, source))
        sender = self.senders[source] = VideoSender(transceiver.sender)
        return sender

    async def offer(self) -> tuple[str, list[dict]]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp, [{"mid": t.mid, "source": s} for t, s in self._mids]

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self._tasks = [asyncio.ensure_future(source.run()) for source in self.sources.values()]

    def stats(self) -> dict:
        out = {name: sender.stats() for name, sender in self.senders.items()}
        for name, source in self.sources.items():
            out[name]["late_frames"] = getattr(source, "late", 0)
        return out

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for source in self.sources.values():
            source.close()
        await self.pc.close()


# ----------------------------------------------------------------------------------- subscribing
class SlotCounter:
    """Everything one subscribe slot received, counted per RTP packet (never decoded)."""

    __slots__ = (
        "slot",
        "kind",
        "packets",
        "bytes",
        "frames",
        "keyframes",
        "first_packet_at",
        "first_frame_at",
        "tap",
        "_open",
        "log",
        "_window",
    )

    def __init__(self, slot: str, kind: str) -> None:
        self.slot, self.kind = slot, kind
        self.packets = self.bytes = self.frames = self.keyframes = 0
        self.first_packet_at: float | None = None
        self.first_frame_at: float | None = None  # the first complete frame that began at a keyframe
        self.tap: ReceiverTap | None = None
        self._open: dict[int, list] = {}  # rtp timestamp -> [first arrival, bytes, keyframe]
        self.log: list | None = None  # (rtp timestamp, first arrival, last arrival, bytes, key)
        self._window: tuple[float, float] | None = None

    def on_packet(self, packet: Any) -> None:
        t = now()
        size = len(packet.payload)
        self.packets += 1
        self.bytes += size
        if self.first_packet_at is None:
            self.first_packet_at = t
        if self.kind != "video":
            self.frames += 1  # one Opus frame per packet
            return
        frame = self._open.get(packet.timestamp)
        if frame is None:
            frame = self._open[packet.timestamp] = [t, 0, vp8_keyframe_start(packet.payload)]
            if len(self._open) > 32:
                del self._open[next(iter(self._open))]
        frame[1] += size
        if packet.marker:
            self.frames += 1
            del self._open[packet.timestamp]
            if frame[2]:
                self.keyframes += 1
                if self.first_frame_at is None:
                    self.first_frame_at = t
            log, window = self.log, self._window
            if log is not None and window is not None and window[0] <= t < window[1]:  # (set together)
                log.append((packet.timestamp, frame[0], t, frame[1], frame[2]))

    def log_frames(self, start: float, end: float) -> None:
        self.log, self._window = [], (start, end)

    def snapshot(self) -> dict:
        expected, lost = self.tap.loss() if self.tap is not None else (0, 0)
        return {
            "packets": self.packets,
            "bytes": self.bytes,
            "frames": self.frames,
            "keyframes": self.keyframes,
            "expected": expected,
            "lost": lost,
        }


class CountingSubscriber:
    """A subscribe connection whose slots are counted, not decoded."""

    def __init__(self, log_slots: tuple[str, ...] = (), counter: type[SlotCounter] | None = None) -> None:
        self.pc = RTCPeerConnection(CONFIG)
        self.counters: dict[str, SlotCounter] = {}
        self.counter = counter or SlotCounter  # a subclass counts more (weaklink.py: layers, audio runs)
        self.log_slots = log_slots
        self.ice_state_log: list[tuple[float, str]] = []

        @self.pc.on("connectionstatechange")
        def _changed() -> None:
            self.ice_state_log.append((now(), self.pc.connectionState))

    async def answer(self, offer_sdp: str, slots: list[dict]) -> str:
        slot_of_mid = {s["mid"]: (s["slot"], s["kind"]) for s in slots}
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid in slot_of_mid:
                name, kind = slot_of_mid[transceiver.mid]
                counter = self.counters[name] = self.counter(name, kind)
                counter.tap = ReceiverTap(transceiver.receiver, transceiver.kind, counter.on_packet)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    def decoders(self) -> int:
        return sum(c.tap.has_decoder() for c in self.counters.values() if c.tap is not None)

    async def close(self) -> None:
        await self.pc.close()
