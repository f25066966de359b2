"""Pure RTP byte handling for the forwarder: no aiortc, no I/O.

Header building and parsing (RFC 3550), one-byte header extensions (RFC 8285), RTX payloads
(RFC 4588), VP8 keyframe detection (RFC 7741), sequence/timestamp arithmetic and the offsets that
keep a slot's outgoing sequence numbers and timestamps moving forward across source switches.
"""

from __future__ import annotations

import random
import struct
import time
from typing import NamedTuple

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)

# header extension URIs the forwarder writes (aiortc negotiates exactly these three)
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

_HEADER = struct.Struct("!BBHLL")


def ntp_now() -> int:
    """The current time as a 64-bit NTP timestamp."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296.0)


def abs_send_time(ntp: int) -> bytes:
    """The 3-byte abs-send-time value (6.18 fixed-point seconds) for a 64-bit NTP time."""
    return ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big")


def seq_newer(a: int, b: int) -> bool:
    """True if sequence number `a` comes after `b` (modulo 2^16)."""
    return 0 < (a - b) % SEQ_MOD < SEQ_MOD // 2


def rtp_header(
    marker: int, payload_type: int, sequence: int, timestamp: int, ssrc: int, extensions: bytes = b""
) -> bytes:
    """A 12-byte RTP header (version 2, no padding, no CSRC), plus an extension block if given."""
    first = 0x90 if extensions else 0x80
    return _HEADER.pack(first, (marker << 7) | payload_type, sequence, timestamp, ssrc) + extensions


def one_byte_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """An RFC 8285 one-byte header extension block (0xBEDE profile, length, padded), or b""."""
    if not elements:
        return b""
    body = b"".join(bytes([(ext_id << 4) | (len(value) - 1)]) + value for ext_id, value in elements)
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", 0xBEDE, len(body) // 4) + body


def audio_level_byte(voice: bool, level: int) -> bytes:
    """The 1-byte ssrc-audio-level value (RFC 6464): V flag and level in -dBov."""
    return bytes([(0x80 if voice else 0) | (level & 0x7F)])


def rtx_payload(original_sequence: int, payload: bytes) -> bytes:
    """An RTX payload: the original sequence number (OSN) followed by the original payload."""
    return struct.pack("!H", original_sequence) + payload


class RtpHeader(NamedTuple):
    marker: int
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    extensions: dict[int, bytes]  # one-byte extensions: id -> value
    payload: bytes


def parse(data: bytes) -> RtpHeader:
    """Parse an RTP packet (one-byte extensions only; for tests and diagnostics, not the hot path)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        raise ValueError("not an RTP packet")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    offset = 12 + 4 * (first & 0x0F)
    extensions: dict[int, bytes] = {}
    if first & 0x10:
        profile, words = struct.unpack_from("!HH", data, offset)
        body = data[offset + 4 : offset + 4 + 4 * words]
        offset += 4 + 4 * words
        if profile == 0xBEDE:
            i = 0
            while i < len(body):
                if body[i] == 0:
                    i += 1
                    continue
                ext_id, length = body[i] >> 4, (body[i] & 0x0F) + 1
                if ext_id == 15:
                    break
                extensions[ext_id] = bytes(body[i + 1 : i + 1 + length])
                i += 1 + length
    end = len(data) - (data[-1] if first & 0x20 else 0)
    return RtpHeader(second >> 7, second & 0x7F, sequence, timestamp, ssrc, extensions, bytes(data[offset:end]))


class Offsets(NamedTuple):
    """Added (mod 2^16 / 2^32) to a source's sequence numbers / timestamps on one slot."""

    sequence: int
    timestamp: int


def first_offsets(source_sequence: int, source_timestamp: int) -> Offsets:
    """Offsets for a slot's very first packet: a random start, sequence numbers in the lower half
    (no early SRTP rollover-counter wrap)."""
    return Offsets(
        (random.randint(0, SEQ_MOD // 2 - 1) - source_sequence) % SEQ_MOD,
        (random.getrandbits(32) - source_timestamp) % TS_MOD,
    )


def continuing_offsets(
    source_sequence: int,
    source_timestamp: int,
    last_sequence: int,
    last_timestamp: int,
    elapsed: float,
    clock_rate: int,
) -> Offsets:
    """Offsets that make a new source continue a slot forward: the next sequence number is
    last + 1 and the timestamp advances by the wall time elapsed since the last packet (at least 1).

    Never backwards: libsrtp rejects sequence numbers more than 1024 behind ("index too old"), and
    an aiortc receiver or browser treats a backwards timestamp as a broken stream."""
    next_sequence = (last_sequence + 1) % SEQ_MOD
    next_timestamp = (last_timestamp + max(1, int(elapsed * clock_rate))) % TS_MOD
    return Offsets((next_sequence - source_sequence) % SEQ_MOD, (next_timestamp - source_timestamp) % TS_MOD)
