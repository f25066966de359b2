"""Answering a receiver's NACKs: which packets go again, when, and as what (RFC 4588 RTX or the packet).

`Retransmitter` holds the rules, for the last `size` sequence numbers sent through one SenderTap;
where the packets come from is its subclasses' business:
- `Retransmissions` keeps its own copy of every packet: a sender that builds its packets itself
  (the bench's synthetic publisher);
- `ForwardedRetransmissions` keeps none: a forwarding slot notes, per sequence number it sent, which
  run of its numbering the packet belongs to (`Run`: the published track's PacketCache and the
  slot's offsets then), and rebuilds the packet from that cache. What a slot holds is then a few
  numbers per packet, whatever the size of the packets.
"""

from __future__ import annotations

import random
import time
from array import array
from collections.abc import Callable
from typing import Any, NamedTuple

from media._aiortc import SEND_ERRORS
from media.packetcache import AudioLevel, PacketCache
from media.rtp import Offsets, rtp_header, rtx_payload


class Outgoing(NamedTuple):
    """A packet as it went out, but for its sequence number, SSRC and payload type."""

    timestamp: int
    marker: int
    extensions: bytes
    payload: bytes


class Retransmitter:
    """Sends again what the receiver asks for (as RTX on the tap's RTX stream when negotiated, else as
    the packet itself), each packet at most once per half round trip: a receiver that asks again for
    every missing packet at every new loss (aiortc does) must not flood a weak link with copies."""

    MIN_INTERVAL = 0.1  # seconds between two copies of one packet, when the round trip is not known

    def __init__(self, tap: Any, size: int, emit: Callable[[bytes, bool], None] | None = None) -> None:
        """emit(data, retransmission=True) sends a copy (default: through the tap at once)."""
        self.tap = tap
        self.size = size
        self.emit = emit or (lambda data, retransmission: tap.send(data))
        self.sent = array("i", [-1]) * size  # the sequence number sent at each index (-1: none yet)
        self.resent_at = array("d", [0.0]) * size
        self.floor: int | None = None  # nothing before this sequence number is sent again (a cut-over)
        self.rtx_sequence = random.randint(0, 0x7FFF)
        self.retransmitted = self.send_errors = 0

    def _kept(self, sequence: int) -> int:
        """Note that `sequence` was sent; its index, for the subclass's own note."""
        index = sequence % self.size
        self.sent[index] = sequence
        self.resent_at[index] = 0.0
        return index

    def _outgoing(self, index: int, sequence: int) -> Outgoing | None:
        """What went out as `sequence` (kept at `index`), if it can still be had."""
        raise NotImplementedError

    def resend(self, lost: list[int]) -> None:
        tap = self.tap
        now = time.monotonic()
        interval = max(self.MIN_INTERVAL, 0.5 * (tap.rtt() or 0.0))
        for sequence in lost:
            index = sequence % self.size
            if self.sent[index] != sequence:
                continue  # too old: the receiver will ask for a keyframe
            if self.floor is not None and (sequence - self.floor) & 0xFFFF >= 0x8000:
                continue  # before a cut-over: the receiver starts again at the keyframe after it
            if now - self.resent_at[index] < interval:
                continue  # a copy is on its way
            packet = self._outgoing(index, sequence)
            if packet is None:
                continue  # gone from the track's cache: the receiver will ask for a keyframe
            self.resent_at[index] = now
            timestamp, marker, extensions, payload = packet
            if tap.rtx_payload_type is not None:
                data = rtp_header(
                    marker, tap.rtx_payload_type, self.rtx_sequence, timestamp, tap.rtx_ssrc, extensions
                ) + rtx_payload(sequence, payload)
                self.rtx_sequence = (self.rtx_sequence + 1) & 0xFFFF
            else:
                data = rtp_header(marker, tap.payload_type, sequence, timestamp, tap.ssrc, extensions) + payload
            try:
                self.emit(data, True)
            except SEND_ERRORS:
                self.send_errors += 1
                return
            self.retransmitted += 1


class Retransmissions(Retransmitter):
    """The last `size` packets sent through a SenderTap, each kept as sent."""

    def __init__(self, tap: Any, size: int, emit: Callable[[bytes, bool], None] | None = None) -> None:
        super().__init__(tap, size, emit)
        self.ring: list[Outgoing | None] = [None] * size

    def keep(self, sequence: int, timestamp: int, marker: int, extensions: bytes, payload: bytes) -> None:
        self.ring[self._kept(sequence)] = Outgoing(timestamp, marker, extensions, payload)

    def _outgoing(self, index: int, sequence: int) -> Outgoing | None:
        return self.ring[index]


class Run(NamedTuple):
    """A stretch of a slot's numbering: one published track forwarded with one set of offsets."""

    cache: PacketCache
    offsets: Offsets


class ForwardedRetransmissions(Retransmitter):
    """A slot's: per sequence number it sent, the run it belongs to; the packet itself is read back from
    the published track's cache and rewritten with the run's offsets and the slot's extensions."""

    def __init__(
        self,
        tap: Any,
        size: int,
        emit: Callable[[bytes, bool], None],
        extensions: Callable[[AudioLevel | None, int], bytes],
    ) -> None:
        """extensions(audio level, ntp): the slot's header extension block for a packet forwarded at ntp."""
        super().__init__(tap, size, emit)
        self.extensions = extensions
        self.run: Run | None = None  # the run the slot forwards now (set at each start)
        self.runs: list[Run | None] = [None] * size

    def keep(self, sequence: int) -> None:
        """`sequence` was sent, in the current run."""
        self.runs[self._kept(sequence)] = self.run

    def _outgoing(self, index: int, sequence: int) -> Outgoing | None:
        run = self.runs[index]
        if run is None:
            return None
        offsets = run.offsets
        original = run.cache.get((sequence - offsets.sequence) & 0xFFFF)
        if original is None:
            return None
        return Outgoing(
            (original.timestamp + offsets.timestamp) & 0xFFFFFFFF,
            original.marker,
            self.extensions(original.audio_level, original.ntp),
            original.payload,
        )
