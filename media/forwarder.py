"""Passthrough forwarding: one published track fanned out to the subscriber slots attached to it.

`PublishedTrack` receives the publisher's RTP packets through a ReceiverTap (nothing is decoded) and
hands each to every attached `Slot`. A slot is one send-only transceiver of a subscriber: it
rewrites SSRC, payload type, sequence number, timestamp and header extensions into its own
numbering and sends the packet through its SenderTap (nothing is encoded).

Per slot:
- it starts at a keyframe (video) and continues its sequence numbers and timestamps forward across
  attach / switch / pause (see rtp.continuing_offsets);
- a layer change (`switch`) keeps forwarding the current layer until the new one's keyframe arrives,
  so the picture never freezes for it;
- while it carries nothing it sends nothing, RTCP included (an idle slot would otherwise send a
  sender report and SDES every second);
- its queue is the socket's write buffer, bounded: above BACKLOG_LIMIT the slot skips to the next
  keyframe instead of delaying anyone;
- it answers the subscriber's NACKs for the last RING packets it sent (RTX when negotiated) from the
  published track's packet cache, held once for all its subscribers (media/retransmit.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from media._aiortc import SEND_ERRORS, ReceiverTap, SenderTap
from media.keyframes import KeyframeRequester
from media.packetcache import AudioLevel, PacketCache
from media.pacer import Pacer
from media.rtp import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    Offsets,
    abs_send_time,
    audio_level_byte,
    continuing_offsets,
    first_offsets,
    ntp_now,
    one_byte_extensions,
    rtp_header,
)
from media.retransmit import ForwardedRetransmissions, Run
from media.vp8 import keyframe_start as vp8_keyframe_start

log = logging.getLogger(__name__)

#: A slot's header extension ids and mid: (mid id, mid, abs-send-time id, audio level id).
ExtensionIds = tuple[int | None, str | None, int | None, int | None]
#: Extension blocks built for one packet, shared by the slots whose (ids, audio level) are equal.
ExtensionBlocks = dict[tuple[ExtensionIds | None, AudioLevel | None], bytes]


class RateMeter:
    """Running totals, and rates over the last window of at least WINDOW seconds (computed when
    read, so the hot path only increments three integers)."""

    WINDOW = 1.0
    __slots__ = ("packets", "bytes", "frames", "bitrate", "fps", "_since", "_at")

    def __init__(self) -> None:
        self.packets = self.bytes = self.frames = 0
        self.bitrate = self.fps = 0.0
        self._since = time.monotonic()
        self._at = (0, 0)

    def read(self) -> dict[str, float]:
        now = time.monotonic()
        elapsed = now - self._since
        if elapsed >= self.WINDOW:
            bytes_before, frames_before = self._at
            self.bitrate = 8 * (self.bytes - bytes_before) / elapsed
            self.fps = (self.frames - frames_before) / elapsed
            self._since, self._at = now, (self.bytes, self.frames)
        return {"packets": self.packets, "bytes": self.bytes, "bitrate": round(self.bitrate), "fps": round(self.fps, 1)}


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One RTP packet of a published track as it arrived (RTX unwrapped), for a sink such as the
    recorder: it depayloads and muxes these without decoding."""

    kind: str  # "video" (VP8, 90 kHz clock) or "audio" (Opus, 48 kHz clock)
    sequence: int
    timestamp: int
    marker: bool
    payload: bytes
    arrival: float  # time.time() when it arrived
    keyframe: bool  # the first packet of a VP8 keyframe (always True for audio)


class PublishedTrack:
    """One track of a publisher (e.g. its camera), forwarded to the slots attached to it."""

    def __init__(self, publisher_id: str, source: str, kind: str, receiver: Any) -> None:
        self.publisher_id = publisher_id
        self.source = source
        self.kind = kind
        self.is_video = kind == "video"
        self.tap = ReceiverTap(receiver, kind, self.on_packet)
        self.keyframes = KeyframeRequester(self.tap.request_keyframe) if self.is_video else None
        self.slots: tuple[Slot, ...] = ()
        self.cache = PacketCache()  # what the slots forwarded, to answer their subscribers' NACKs
        self.sinks: tuple[Callable[[EncodedPacket], None], ...] = ()
        self.paused = False
        self.meter = RateMeter()
        self.keyframes_seen = 0
        self._keyframe_bytes: int | None = None  # bytes of the keyframe being received, while one is
        self._since = time.monotonic()

    def add_slot(self, slot: Slot) -> None:
        self.slots = (*self.slots, slot)

    def remove_slot(self, slot: Slot) -> None:
        self.slots = tuple(s for s in self.slots if s is not slot)
        if self.keyframes is not None:
            self.keyframes.served(slot)

    def add_sink(self, sink: Callable[[EncodedPacket], None]) -> None:
        self.sinks = (*self.sinks, sink)
        if self.keyframes is not None:
            self.keyframes.request()  # a recording starts at a keyframe

    def remove_sink(self, sink: Callable[[EncodedPacket], None]) -> None:
        self.sinks = tuple(s for s in self.sinks if s is not sink)

    def set_paused(self, paused: bool) -> None:
        """Stop forwarding at once (a mute); on resume every slot restarts at a keyframe."""
        if paused == self.paused:
            return
        self.paused = paused
        for slot in self.slots:
            slot.restart()

    def close(self) -> None:
        for slot in self.slots:
            slot.track_closed(self)
        if self.keyframes is not None:
            self.keyframes.close()

    # -- hot path: called synchronously by the ReceiverTap for every media packet
    def on_packet(self, packet: Any) -> None:
        payload = packet.payload
        meter = self.meter
        meter.packets += 1
        meter.bytes += len(payload)
        keyframes = self.keyframes
        if keyframes is not None:  # video
            if packet.marker:
                meter.frames += 1
            keyframe = vp8_keyframe_start(payload)
            if keyframe:
                self.keyframes_seen += 1
                keyframes.keyframe_seen()
                self._keyframe_bytes = 0
            if self._keyframe_bytes is not None:
                self._keyframe_bytes += len(payload)
                if packet.marker:  # the keyframe is whole: what it cost tells how often to ask for one
                    elapsed = time.monotonic() - self._since
                    if elapsed >= 2.0:  # (the track's rate means something only after a while)
                        keyframes.keyframe_cost(8 * self._keyframe_bytes, 8 * meter.bytes / elapsed)
                    self._keyframe_bytes = None
        else:
            meter.frames += 1
            keyframe = True  # every audio packet is a valid place to start
        if self.paused or not payload:
            return  # (an empty payload is padding: a bandwidth probe, nothing to forward)
        for sink in self.sinks:
            try:
                sink(
                    EncodedPacket(
                        self.kind,
                        packet.sequence_number,
                        packet.timestamp,
                        packet.marker,
                        payload,
                        time.time(),
                        keyframe,
                    )
                )
            except Exception:  # noqa: BLE001 - a failing sink (a full disk) must not stop the class
                log.exception("a sink of %s/%s failed; it is removed", self.publisher_id, self.source)
                self.remove_sink(sink)
        if not self.slots:
            return
        ntp = ntp_now()
        self.cache.put(packet, ntp)
        extensions: ExtensionBlocks = {}  # extension blocks built for this packet, shared by equal slots
        for slot in self.slots:
            slot.forward(self, packet, keyframe, ntp, extensions)

    def stats(self) -> dict[str, Any]:
        expected, lost = self.tap.loss()
        return {
            "publisher": self.publisher_id,
            "source": self.source,
            "kind": self.kind,
            "paused": self.paused,
            **self.meter.read(),
            "lost": lost,
            "loss": round(lost / expected, 4) if expected else 0.0,
            "keyframes": self.keyframes_seen,
            "keyframe_requests": self.keyframes.sent if self.keyframes else 0,
            "subscribers": len(self.slots),
        }


class Slot:
    """One send-only transceiver of a subscriber, carrying whatever track it is attached to."""

    BACKLOG_LIMIT = 256 * 1024  # bytes in the socket's write buffer before skipping to a keyframe
    IDLE_AFTER = 2.0  # seconds without media after which the slot sends no RTCP either
    CUT_SKIP = 600  # sequence numbers a cut-over leaves out (aiortc's video jitter buffer holds 512)
    RING = 512  # sent packets whose NACKs are answered (from the track's PacketCache); a power of two

    def __init__(self, subscriber_id: str, name: str, kind: str, sender: Any) -> None:
        self.subscriber_id = subscriber_id
        self.name = name
        self.kind = kind
        self.want: tuple[str, str] | None = None  # (publisher id, source) assigned by the engine
        self.layer = "high"  # which layer of `want` the link selection chose: high, low or off
        self.track: PublishedTrack | None = None
        self.pending: PublishedTrack | None = None  # the layer it switches to at that layer's keyframe
        self.cut = False  # the next start leaves a gap in the numbering (see cut_over)
        self.skipped = 0  # sequence numbers left out by cut-overs (not losses)
        self.tap = SenderTap(
            sender,
            on_ready=self._on_ready,
            on_keyframe_request=self._on_keyframe_request,
            on_nack=self._on_nack,
            on_remb=self._on_remb,
            on_report=self._on_report,
            sending=self._sending,
        )
        self.waiting = True  # for a keyframe (video) or a first packet (audio)
        self.offsets = Offsets(0, 0)
        self.source_base = 0  # first source sequence number forwarded since the last (re)start
        self.last_sequence: int | None = None
        self.last_timestamp = 0
        self.last_time = 0.0
        self.pacer: Pacer | None = None  # set by the engine while the subscriber's link has a budget
        self.retransmissions = ForwardedRetransmissions(self.tap, self.RING, self._emit, self._extension_block)
        self._extension_key: ExtensionIds | None = None
        self.meter = RateMeter()
        self.keyframes = self.nacks = self.plis = 0
        self.skips = self.send_errors = 0
        self.fraction_lost = self.packets_lost = self.jitter = 0
        self.highest_sequence = 0  # extended, from the last receiver report
        self.report_at = 0.0  # when that report arrived (time.monotonic)
        self.remb: int | None = None
        self.remb_ssrcs: tuple[int, ...] = ()  # the streams the last REMB covers
        self.remb_fresh = False  # a REMB arrived since the link control last looked

    # -- wiring
    def attach(self, track: PublishedTrack | None) -> None:
        """Carry `track` from its next keyframe on (None: carry nothing)."""
        self._cancel_pending()
        if track is self.track:
            return
        if self.track is not None:
            self.track.remove_slot(self)
        self.track = track
        if track is not None:
            track.add_slot(self)
        self.restart()

    def switch(self, track: PublishedTrack | None) -> None:
        """Carry `track` instead, without a gap: the current track goes on until `track`'s next keyframe
        (a layer change). Falls back to `attach` when nothing is being forwarded now."""
        if track is self.track:
            self._cancel_pending()
            return
        current = self.track
        if track is None or current is None or current.paused or self.waiting or track.paused:
            self.attach(track)
            return
        if track is self.pending:
            return
        self._cancel_pending()
        self.pending = track
        track.add_slot(self)
        if track.keyframes is not None and self.tap.ready:
            track.keyframes.need(self)

    def cut_over(self, track: PublishedTrack | None) -> None:
        """Carry `track` from its next keyframe, dropping at once what is queued for the link and what
        the receiver still waits for: a downgrade on a congested link. The numbering then jumps by
        CUT_SKIP, so that a receiver waiting for packets that will never come (aiortc's jitter buffer
        waits until 512 more have come; a browser for its NACKs) starts again at the keyframe."""
        if self.pacer is not None:
            self.pacer.forget(self.tap.send)
        self.cut = True
        self.attach(track)

    def track_closed(self, track: PublishedTrack) -> None:
        if track is self.pending:
            self._cancel_pending()
        elif track is self.track:
            self.attach(None)

    def _cancel_pending(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.remove_slot(self)

    def _complete_switch(self, track: PublishedTrack) -> None:
        old, self.track, self.pending = self.track, track, None
        if old is not None:
            old.remove_slot(self)
        self.waiting = True  # _start continues the numbering from here

    def restart(self) -> None:
        """Forward nothing more until the next keyframe (asked for) of the current track."""
        self.waiting = True
        track = self.track
        if track is None or track.keyframes is None:
            return
        if track.paused or not self.tap.ready:
            track.keyframes.served(self)
        else:
            track.keyframes.need(self)

    def close(self) -> None:
        self.attach(None)

    def _sending(self) -> bool:
        """Sent media within the last IDLE_AFTER seconds (else its RTCP is held back too)."""
        return time.monotonic() - self.last_time < self.IDLE_AFTER

    @property
    def live(self) -> bool:
        """Forwarding media now."""
        return self.track is not None and not self.track.paused and not self.waiting

    def _on_ready(self) -> None:
        ids = self.tap.extension_ids
        self._extension_key = (ids.get(MID_URI), self.tap.mid, ids.get(ABS_SEND_TIME_URI), ids.get(AUDIO_LEVEL_URI))
        self.restart()

    # -- hot path
    def forward(
        self, track: PublishedTrack, packet: Any, keyframe: bool, ntp: int, extensions: ExtensionBlocks
    ) -> None:
        tap = self.tap
        if not tap.ready:
            return
        if track is not self.track:
            if track is not self.pending or not keyframe:
                return  # the layer it is switching to, before that layer's keyframe
            self._complete_switch(track)
        sequence = packet.sequence_number
        if self.waiting:
            if not keyframe:
                return
            self._start(track, packet)
        elif (sequence - self.source_base) & 0xFFFF >= 0x8000:
            return  # older than the point where this slot (re)started
        if tap.backlog() > self.BACKLOG_LIMIT:
            self.skips += 1  # slow subscriber: drop to the next keyframe, never delay the others
            self.restart()
            return
        out_sequence = (sequence + self.offsets.sequence) & 0xFFFF
        out_timestamp = (packet.timestamp + self.offsets.timestamp) & 0xFFFFFFFF
        extension_block = self._extensions(packet.extensions.audio_level, ntp, extensions)
        payload = packet.payload
        self.retransmissions.keep(out_sequence)
        if self.last_sequence is None or 0 < (out_sequence - self.last_sequence) & 0xFFFF < 0x8000:
            self.last_sequence = out_sequence
            if out_timestamp != self.last_timestamp:
                self.last_timestamp = out_timestamp
                self.last_time = time.monotonic()
                tap.set_sr_mapping(ntp, out_timestamp)
        try:
            self._emit(
                rtp_header(packet.marker, tap.payload_type, out_sequence, out_timestamp, tap.ssrc, extension_block)
                + payload
            )
        except SEND_ERRORS:
            self.send_errors += 1
            return
        tap.count_sent(len(payload))
        meter = self.meter
        meter.packets += 1
        meter.bytes += len(payload)
        if packet.marker or self.kind == "audio":
            meter.frames += 1
        if keyframe and self.kind == "video":
            self.keyframes += 1

    def _emit(self, data: bytes, retransmission: bool = False) -> None:
        """Send now, or through the subscriber's pacer while its link has a budget (video only)."""
        pacer = self.pacer
        if pacer is None:
            self.tap.send(data)
        else:
            pacer.send(self.tap.send, data, self._overflowed, retransmission)

    def _overflowed(self) -> None:
        self.skips += 1  # more than the link carries is waiting: start again at a keyframe
        self.restart()

    def _start(self, track: PublishedTrack, packet: Any) -> None:
        if self.last_sequence is None:
            self.offsets = first_offsets(packet.sequence_number, packet.timestamp)
        else:
            last = self.last_sequence
            if self.cut:
                last = (last + self.CUT_SKIP) & 0xFFFF
                self.skipped += self.CUT_SKIP
                self.retransmissions.floor = (last + 1) & 0xFFFF
            self.offsets = continuing_offsets(
                packet.sequence_number,
                packet.timestamp,
                last,
                self.last_timestamp,
                time.monotonic() - self.last_time,
                self.tap.clock_rate,
            )
        self.retransmissions.run = Run(track.cache, self.offsets)
        self.cut = False
        self.source_base = packet.sequence_number
        self.waiting = False
        if self.track is not None and self.track.keyframes is not None:
            self.track.keyframes.served(self)

    def _extensions(self, level: AudioLevel | None, ntp: int, cache: ExtensionBlocks) -> bytes:
        """Our own extension block: this slot's mid, a fresh abs-send-time, the audio level passed
        through. The publisher's ids, mid and rid are never copied."""
        key = (self._extension_key, level)
        block = cache.get(key)
        if block is None:
            mid_id, mid, abs_send_time_id, audio_level_id = self._extension_key or (None, None, None, None)
            elements = []
            if mid_id and mid is not None:
                elements.append((mid_id, mid.encode()))
            if abs_send_time_id:
                elements.append((abs_send_time_id, abs_send_time(ntp)))
            if audio_level_id and level is not None:
                elements.append((audio_level_id, audio_level_byte(*level)))
            block = cache[key] = one_byte_extensions(elements)
        return block

    def _extension_block(self, level: AudioLevel | None, ntp: int) -> bytes:
        """The block a packet forwarded at `ntp` went out with (for its retransmission)."""
        return self._extensions(level, ntp, {})

    # -- feedback from the subscriber
    def _on_keyframe_request(self) -> None:
        self.plis += 1
        track = self.track
        if track is not None and track.keyframes is not None and not self.waiting and not track.paused:
            track.keyframes.request()

    def _on_nack(self, lost: list[int]) -> None:
        self.nacks += 1
        self.retransmissions.resend(lost)

    def _on_remb(self, bitrate: int, ssrcs: list[int]) -> None:
        self.remb, self.remb_ssrcs, self.remb_fresh = bitrate, tuple(sorted(ssrcs)), True

    def _on_report(self, fraction_lost: int, packets_lost: int, jitter: int, highest_sequence: int) -> None:
        self.fraction_lost, self.packets_lost, self.jitter = fraction_lost, packets_lost, jitter
        self.highest_sequence = highest_sequence
        self.report_at = time.monotonic()

    def stats(self) -> dict[str, Any]:
        publisher, source = self.want if self.want else (None, None)
        rtt = self.tap.rtt()
        return {
            "kind": self.kind,
            "publisher": publisher,
            "source": source,
            "live": self.live,
            "layer": self.layer,
            **self.meter.read(),
            "keyframes": self.keyframes,
            "retransmitted": self.retransmissions.retransmitted,
            "nacks": self.nacks,
            "plis": self.plis,
            "skips": self.skips,
            "lost": self.packets_lost,
            "loss": round(self.fraction_lost / 256, 4),
            "jitter": self.jitter,
            "rtt": round(rtt, 4) if rtt is not None else None,
            "remb": self.remb,
        }
