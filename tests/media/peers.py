"""Synthetic aiortc peers for the media tests: a publisher showing a recognisable colour pattern,
subscribers that decode and check it (or only count packets), and a codec-creation counter.

They talk to a MediaEngine in the same process, through the same calls signaling will make.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time

import numpy as np
from aiortc import (
    AudioStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
    rtcrtpreceiver,
    rtcrtpsender,
)
from av import VideoFrame

from media import MediaEngine
from media._aiortc import ReceiverTap
from media.engine import codec_preferences
from media.vp8 import keyframe_start as vp8_keyframe_start
from tests.helpers import eventually

W, H = 640, 360
NOISE_ROWS = 40  # an incompressible band at the bottom: VP8 then runs at its target (~1 Mbit/s)
# aiortc's default "balanced" bundle policy loses the second transceiver of a kind (see engine.py)
CONFIG = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
PATTERNS = {
    "A": [(230, 30, 30), (30, 200, 30), (30, 30, 230), (235, 235, 235)],  # red green blue white
    "B": [(235, 235, 235), (30, 30, 230), (30, 200, 30), (230, 30, 30)],  # the same, reversed
}


class PatternTrack(VideoStreamTrack):
    """640x360 at 30 fps: four colour bars (the pattern), a moving box, optionally a noise band."""

    def __init__(self, pattern: str, noise: bool = False) -> None:
        super().__init__()
        self.base = np.zeros((H, W, 3), np.uint8)
        width = W // 4
        for i, colour in enumerate(PATTERNS[pattern]):
            self.base[: 2 * H // 3, i * width : (i + 1) * width] = colour
        rng = np.random.default_rng(1)
        self.noise = [rng.integers(0, 255, (NOISE_ROWS, W, 3), np.uint8) for _ in range(8)] if noise else None
        self.n = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = self.base.copy()
        if self.noise is not None:
            image[H - NOISE_ROWS :] = self.noise[self.n % len(self.noise)]
        x = (self.n * 4) % (W - 40)
        image[2 * H // 3 - 40 : 2 * H // 3, x : x + 40] = 0
        self.n += 1
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def which_pattern(frame: VideoFrame) -> str | None:
    """The pattern a decoded frame shows, or None."""
    image = frame.to_ndarray(format="rgb24")
    if image.shape[:2] != (H, W):
        return None
    width = W // 4
    bars = [image[H // 6 : H // 2, i * width + 20 : (i + 1) * width - 20].reshape(-1, 3).mean(axis=0) for i in range(4)]
    for name, colours in PATTERNS.items():
        if all(np.abs(bar - np.array(c)).max() <= 40 for bar, c in zip(bars, colours)):
            return name
    return None


def _candidates(sdp: str) -> tuple[str, list[dict]]:
    """The SDP without its candidate lines, and those candidates as browser-style dicts."""
    mid = re.search(r"^a=mid:(\S+)", sdp, re.M).group(1)
    found = [
        {"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": 0}
        for line in sdp.splitlines()
        if line.startswith("a=candidate:")
    ]
    stripped = (
        "\r\n".join(line for line in sdp.splitlines() if not line.startswith(("a=candidate:", "a=end-of-candidates")))
        + "\r\n"
    )
    return stripped, found


async def wait_for(condition, timeout: float, what: str, step: float = 0.05) -> float:
    """Wait until condition() is true (tests.helpers.eventually); returns the seconds it took, which the
    media tests measure."""
    start = time.monotonic()
    await eventually(condition, timeout, what, step)
    return time.monotonic() - start


class Publisher:
    """An aiortc publisher: a pattern camera and (optionally) a microphone."""

    def __init__(
        self,
        engine: MediaEngine,
        peer_id: str,
        pattern: str = "A",
        *,
        video: bool = True,
        audio: bool = True,
        noise: bool = False,
        trickle: bool = False,
    ) -> None:
        self.engine, self.peer_id, self.trickle = engine, peer_id, trickle
        self.pc = RTCPeerConnection(CONFIG)
        self.sources: dict[str, str] = {}
        self._tracks = []
        if video:
            self._tracks.append(("camera", PatternTrack(pattern, noise)))
        if audio:
            self._tracks.append(("microphone", AudioStreamTrack()))

    async def connect(self) -> None:
        for source, track in self._tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences(track.kind))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        for transceiver, (source, _) in zip(self.pc.getTransceivers(), self._tracks):
            self.sources[transceiver.mid] = source
        offer = self.pc.localDescription.sdp
        candidates: list[dict] = []
        if self.trickle:
            offer, candidates = _candidates(offer)
        answer = await self.engine.publish(self.peer_id, offer, self.sources)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for candidate in candidates:
            await self.engine.add_candidate(self.peer_id, "publish", candidate)
        if self.trickle:
            await self.engine.add_candidate(self.peer_id, "publish", None)

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """An aiortc subscriber. decode=True: decodes video (checking the pattern) and audio;
    decode=False: counts RTP packets only (ReceiverTap, no decoder)."""

    def __init__(
        self, engine: MediaEngine, peer_id: str, slots: dict[str, str], *, decode: bool = True, trickle: bool = False
    ) -> None:
        self.engine, self.peer_id, self.slots = engine, peer_id, slots
        self.decode, self.trickle = decode, trickle
        self.pc = RTCPeerConnection(CONFIG)
        self.frames = dict.fromkeys(slots, 0)  # decoded frames (video and audio), or packets
        self.keyframes = dict.fromkeys(slots, 0)  # counting mode only
        self.last_pattern: dict[str, str | None] = dict.fromkeys(slots)
        self.last_frame_at: dict[str, float] = dict.fromkeys(slots, 0.0)
        self.patterns_seen: dict[str, list[str | None]] = {name: [] for name in slots}
        self.ssrcs: dict[str, set[int]] = {name: set() for name in slots}
        self._tasks: list[asyncio.Task] = []

    async def connect(self, assignments: dict[str, tuple[str, str]] | None = None) -> None:
        """Open the subscribe connection; `assignments` (slot -> (publisher, source)) are made
        right after the offer, as signaling would."""
        offer = await self.engine.open_subscriber(self.peer_id, self.slots)
        for slot, (publisher, source) in (assignments or {}).items():
            self.engine.assign(self.peer_id, slot, publisher, source)
        mids = {mid: name for name, mid in self.engine.slot_mids(self.peer_id).items()}
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in self.pc.getTransceivers():
            name = mids[transceiver.mid]
            if self.decode:
                self._tasks.append(asyncio.ensure_future(self._consume(name, transceiver.receiver.track)))
            else:
                ReceiverTap(transceiver.receiver, transceiver.kind, self._counter(name))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        answer = self.pc.localDescription.sdp
        candidates: list[dict] = []
        if self.trickle:
            answer, candidates = _candidates(answer)
            for candidate in candidates:  # sent before the answer: the engine must hold them
                await self.engine.add_candidate(self.peer_id, "subscribe", candidate)
        await self.engine.subscriber_answer(self.peer_id, answer)
        if self.trickle:
            await self.engine.add_candidate(self.peer_id, "subscribe", None)

    def _counter(self, name: str):
        def sink(packet) -> None:
            self.frames[name] += 1
            self.last_frame_at[name] = time.monotonic()
            self.ssrcs[name].add(packet.ssrc)
            if vp8_keyframe_start(packet.payload):
                self.keyframes[name] += 1

        return sink

    async def _consume(self, name: str, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            self.frames[name] += 1
            self.last_frame_at[name] = time.monotonic()
            if track.kind == "video" and (self.frames[name] % 5 == 1):
                pattern = which_pattern(frame)
                self.last_pattern[name] = pattern
                self.patterns_seen[name].append(pattern)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class CodecCalls:
    """Records every aiortc get_decoder/get_encoder call and who made it, to prove that the engine
    never creates a codec for a forwarded track (the clients do, which proves the wrap works)."""

    def __init__(self, monkeypatch) -> None:
        self.encoder_senders: list = []
        self.decoder_queues: list = []
        original_decoder, original_encoder = rtcrtpreceiver.get_decoder, rtcrtpsender.get_encoder

        def get_decoder(codec):
            # called in decoder_worker(loop, input_q, output_q, ...): output_q is the track's queue
            self.decoder_queues.append(sys._getframe(1).f_locals.get("output_q"))
            return original_decoder(codec)

        def get_encoder(codec):
            # called in RTCRtpSender._next_encoded_frame(self, codec)
            self.encoder_senders.append(sys._getframe(1).f_locals.get("self"))
            return original_encoder(codec)

        monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)
        monkeypatch.setattr(rtcrtpsender, "get_encoder", get_encoder)

    def on_engine(self, engine: MediaEngine) -> tuple[int, int]:
        """(decoders, encoders) created for the engine's receivers and senders."""
        queues = [track.tap.receiver.track._queue for track in engine._tracks.values()]
        senders = [slot.tap.sender for subscriber in engine._subscribers.values() for slot in subscriber.slots.values()]
        decoders = sum(any(q is mine for mine in queues) for q in self.decoder_queues)
        encoders = sum(any(s is mine for mine in senders) for s in self.encoder_senders)
        return decoders, encoders
