"""One packet cache per published track: its last packets as received, for every subscriber's NACKs.

A slot answering a NACK reads the original packet here and rewrites it as forwarding did (see
media/retransmit.py), so a track's packets are held once however many subscribers it has (as
Galène's `packetcache`). A layer is a track of its own (`camera_low`), so each has its own cache.

Parallel arrays indexed by sequence number modulo SIZE: no object per packet beyond the payload
the packet arrived with.
"""

from __future__ import annotations

from array import array
from typing import Any, NamedTuple

#: Audio level as aiortc parses it: (voice activity, level in -dBov).
AudioLevel = tuple[bool, int]


class CachedPacket(NamedTuple):
    timestamp: int
    marker: int
    payload: bytes
    audio_level: AudioLevel | None
    ntp: int  # when it was forwarded (its abs-send-time)


class PacketCache:
    """The last SIZE packets of one track, by their (source) sequence number."""

    SIZE = 512  # as many as a slot answers for (Slot.RING); a power of two (indexes survive the 2^16 wrap)

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._sequences = array("i", [-1]) * size  # -1: nothing at this index yet
        self._timestamps = array("L", [0]) * size
        self._markers = bytearray(size)
        self._ntps = array("Q", [0]) * size
        self._payloads: list[bytes] = [b""] * size
        self._levels: list[AudioLevel | None] = [None] * size

    def put(self, packet: Any, ntp: int) -> None:
        """Keep an aiortc RtpPacket (RTX already unwrapped), forwarded at `ntp`."""
        sequence = packet.sequence_number
        index = sequence % self.size
        self._sequences[index] = sequence
        self._timestamps[index] = packet.timestamp
        self._markers[index] = packet.marker
        self._ntps[index] = ntp
        self._payloads[index] = packet.payload
        self._levels[index] = packet.extensions.audio_level

    def get(self, sequence: int) -> CachedPacket | None:
        """The packet with this sequence number, or None if it never came or is too old."""
        index = sequence % self.size
        if self._sequences[index] != sequence:
            return None
        return CachedPacket(
            self._timestamps[index],
            self._markers[index],
            self._payloads[index],
            self._levels[index],
            self._ntps[index],
        )
