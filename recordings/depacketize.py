"""RTP depayloading for the recorder: VP8 packets into whole frames, Opus packets as they are.

Pure code (no I/O, no clock of its own): the recorder's writer thread feeds it the packets a media
sink received (`media.EncodedPacket`) and gets whole, decodable frames back.

- `ReorderBuffer` puts packets back in sequence-number order (16-bit numbers that wrap around),
  waits a little for late or retransmitted ones, and reports a gap when it gives up on one.
- `Vp8Depacketizer` (RFC 7741) joins the packets of one frame (S bit + partition index 0 starts a
  frame, the RTP marker ends it), drops frames that lost a packet, and after any loss waits for the
  next keyframe (every later frame may reference the lost one) — `need_keyframe` tells the caller to
  ask the publisher for one.
- `OpusDepacketizer`: one packet is one frame (RFC 7587); a loss is only a gap in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media import vp8

SEQ_MOD = 1 << 16
HALF_SEQ = SEQ_MOD // 2


class Packet(Protocol):
    """What a depacketizer needs of a packet (media.EncodedPacket has it); read only."""

    @property
    def sequence(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def marker(self) -> bool: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def arrival(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole encoded frame: what the muxer writes as one block."""

    timestamp: int  # RTP timestamp (32 bit, as sent)
    arrival: float  # arrival time of its first packet (time.time())
    data: bytes
    keyframe: bool


# ----------------------------------------------------------------------------------- VP8 format
# The VP8 format's parsing has one home: media/vp8.py.


# ---------------------------------------------------------------------------------- Opus format
_SILK = (10, 20, 40, 60)
_CELT = (2.5, 5, 10, 20)


def opus_duration_ms(packet: bytes) -> float:
    """Duration of one Opus packet from its TOC byte (RFC 6716 §3.1), 0 if malformed."""
    if not packet:
        return 0.0
    toc = packet[0]
    config = toc >> 3
    frame: float
    if config < 12:
        frame = _SILK[config & 3]
    elif config < 16:
        frame = 10 if config & 1 == 0 else 20
    else:
        frame = _CELT[config & 3]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            return 0.0
        count = packet[1] & 0x3F
    return frame * count


# ------------------------------------------------------------------------------ sequence order
def unwrap(sequence: int, reference: int) -> int:
    """The extended (unwrapped) number of a 16-bit sequence number: the one closest to the
    extended number `reference`."""
    delta = (sequence - reference) % SEQ_MOD
    if delta >= HALF_SEQ:
        delta -= SEQ_MOD
    return reference + delta


class ReorderBuffer:
    """Packets in sequence-number order, across 16-bit wraparound, tolerating loss.

    `push(packet)` returns the packets that can now be released, in order, as (gap, packet) pairs:
    `gap` is True when packets before this one were given up for lost. A missing packet is waited
    for until a later packet arrived `max_delay` seconds after the first one held, or until
    `max_packets` are held (NACK retransmissions arrive within one round trip). Late packets (older
    than what was already released) and duplicates are dropped and counted.
    """

    def __init__(self, max_delay: float = 0.25, max_packets: int = 256) -> None:
        self.max_delay = max_delay
        self.max_packets = max_packets
        self._held: dict[int, Packet] = {}
        self._next: int | None = None  # extended number of the next packet to release
        self._highest = 0  # highest extended number seen (for unwrapping)
        self._held_since: float | None = None
        self.lost = 0  # packets given up for lost
        self.late = 0  # packets that came after their place was passed (or duplicates)

    def __len__(self) -> int:
        return len(self._held)

    def push(self, packet: Packet) -> list[tuple[bool, Packet]]:
        if self._next is None:  # the first packet starts the sequence
            self._next = self._highest = packet.sequence
        extended = unwrap(packet.sequence, self._highest)
        if extended < self._next - HALF_SEQ // 2 or extended > self._next + HALF_SEQ // 2:
            # a jump far away (the publisher restarted its sequence): start over from here
            released = self.flush()
            self._next = self._highest = extended
            restarted = self.push(packet)
            return released + [(True, p) for _, p in restarted]
        if extended < self._next or extended in self._held:
            self.late += 1
            return []
        if extended > self._highest:
            self._highest = extended
        self._held[extended] = packet
        if extended == self._next:
            return self._release()
        if self._held_since is None:
            self._held_since = packet.arrival
        if packet.arrival - self._held_since >= self.max_delay or len(self._held) > self.max_packets:
            return self._skip_gap()
        return []

    def expire(self, now: float) -> list[tuple[bool, Packet]]:
        """Give up on missing packets held for too long at `now` (when no packet arrives)."""
        if self._held and self._held_since is not None and now - self._held_since >= self.max_delay:
            return self._skip_gap()
        return []

    def flush(self) -> list[tuple[bool, Packet]]:
        """Release everything held, in order (the end of a stream)."""
        released: list[tuple[bool, Packet]] = []
        while self._held:
            released += self._skip_gap()
        return released

    def _release(self) -> list[tuple[bool, Packet]]:
        released: list[tuple[bool, Packet]] = []
        held = self._held
        while self._next in held:
            released.append((False, held.pop(self._next)))
            self._next += 1
        self._held_since = None
        if held:  # still waiting for a missing one: time it from the oldest held packet
            self._held_since = held[min(held)].arrival
        return released

    def _skip_gap(self) -> list[tuple[bool, Packet]]:
        assert self._next is not None  # packets are held: push() set it
        first = min(self._held)
        self.lost += first - self._next
        self._next = first
        released = self._release()
        return [(True, released[0][1])] + released[1:]


# ------------------------------------------------------------------------------ depacketizers
class Vp8Depacketizer:
    """VP8 RTP packets (RFC 7741) in, whole frames out; starts at, and after a loss waits for, a
    keyframe."""

    def __init__(self, max_delay: float = 0.25, max_packets: int = 512) -> None:
        self.buffer = ReorderBuffer(max_delay, max_packets)
        self.need_keyframe = True  # nothing decodable until a keyframe
        self.frames = 0  # frames returned
        self.skipped = 0  # frames before the first keyframe (not a loss: the stream was joined)
        self.dropped = 0  # frames lost after that (incomplete, or waiting for a keyframe)
        self._parts: list[bytes] = []
        self._timestamp = 0
        self._arrival = 0.0
        self._keyframe = False
        self._open = False  # a frame is being assembled
        self._broken = False  # ... and it lost a packet

    def push(self, packet: Packet) -> list[Frame]:
        return self._assemble(self.buffer.push(packet))

    def expire(self, now: float) -> list[Frame]:
        return self._assemble(self.buffer.expire(now))

    def flush(self) -> list[Frame]:
        frames = self._assemble(self.buffer.flush())
        if self._open:  # no marker came: the last frame is incomplete
            self._drop()
        return frames

    def _assemble(self, packets: list[tuple[bool, Packet]]) -> list[Frame]:
        frames: list[Frame] = []
        for gap, packet in packets:
            if gap:
                if self._open:
                    self._broken = True
                self.need_keyframe = True  # later frames may reference what was lost
            payload = packet.payload
            skip = vp8.descriptor_length(payload)
            if skip < 0:
                if self._open:
                    self._broken = True
                continue
            if vp8.frame_start(payload):
                if self._open:  # the previous frame never got its marker: finish it as it is
                    frame = self._finish()
                    if frame is not None:
                        frames.append(frame)
                self._parts = [payload[skip:]]
                self._timestamp = packet.timestamp
                self._arrival = packet.arrival
                self._keyframe = vp8.is_keyframe(payload[skip:])
                self._open = True
                self._broken = False
            elif not self._open:
                continue  # the middle of a frame whose start we never saw
            elif packet.timestamp != self._timestamp:
                self._broken = True  # a new frame without its start packet
                self._parts.append(payload[skip:])
            else:
                self._parts.append(payload[skip:])
            if packet.marker:
                frame = self._finish()
                if frame is not None:
                    frames.append(frame)
        return frames

    def _finish(self) -> Frame | None:
        self._open = False
        if self._broken:
            self.need_keyframe = True
            self._drop()
            return None
        if self.need_keyframe and not self._keyframe:
            self._drop()
            return None
        data = b"".join(self._parts)
        self._parts = []
        if not data:
            return None
        if self._keyframe:
            self.need_keyframe = False
        self.frames += 1
        return Frame(self._timestamp, self._arrival, data, self._keyframe)

    def _drop(self) -> None:
        self._open = False
        self._parts = []
        if self.frames:
            self.dropped += 1
        else:
            self.skipped += 1


class OpusDepacketizer:
    """Opus RTP packets (RFC 7587): one packet is one frame, in sequence order."""

    need_keyframe = False

    def __init__(self, max_delay: float = 0.25, max_packets: int = 64) -> None:
        self.buffer = ReorderBuffer(max_delay, max_packets)
        self.frames = 0
        self.skipped = 0
        self.dropped = 0

    def push(self, packet: Packet) -> list[Frame]:
        return self._frames(self.buffer.push(packet))

    def expire(self, now: float) -> list[Frame]:
        return self._frames(self.buffer.expire(now))

    def flush(self) -> list[Frame]:
        return self._frames(self.buffer.flush())

    def _frames(self, packets: list[tuple[bool, Packet]]) -> list[Frame]:
        frames = [Frame(p.timestamp, p.arrival, p.payload, True) for _, p in packets if p.payload]
        self.frames += len(frames)
        return frames


def depacketizer_for(kind: str) -> Vp8Depacketizer | OpusDepacketizer:
    if kind == "video":
        return Vp8Depacketizer()
    if kind == "audio":
        return OpusDepacketizer()
    raise ValueError(f"kind must be 'video' or 'audio', not {kind!r}")
