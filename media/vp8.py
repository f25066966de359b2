"""The VP8 RTP payload format (RFC 7741) and the key frame header (RFC 6386 §9.1): pure functions on bytes, the
one home of this parsing for the forwarder (which packet starts a key frame), the recorder (frames out of
packets, their size) and the bench (the layer a packet belongs to, by its size)."""

from __future__ import annotations

KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def descriptor_length(payload: bytes) -> int:
    """Length of the VP8 payload descriptor at the start of an RTP payload (RFC 7741 §4.2), or -1 if the
    payload is too short to hold it."""
    n = len(payload)
    if n < 1:
        return -1
    i = 1
    if payload[0] & 0x80:  # X: extension byte follows
        if n < 2:
            return -1
        x = payload[1]
        i = 2
        if x & 0x80:  # I: PictureID, 7 or 15 bits (M bit)
            if n <= i:
                return -1
            i += 2 if payload[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T and/or K: one byte TID|Y|KEYIDX
            i += 1
    return i if i <= n else -1


def picture_id(payload: bytes) -> int | None:
    """The PictureID of a VP8 payload descriptor, if it carries one."""
    if len(payload) < 3 or not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    if payload[2] & 0x80:
        return ((payload[2] & 0x7F) << 8) | payload[3] if len(payload) > 3 else None
    return payload[2] & 0x7F


def frame_start(payload: bytes) -> bool:
    """S bit set and partition index 0: the first packet of a frame."""
    return bool(payload) and bool(payload[0] & 0x10) and not payload[0] & 0x07


def is_keyframe(frame: bytes) -> bool:
    """A VP8 frame (the bitstream, no descriptor) is a key frame: P bit (bit 0 of byte 0) is 0."""
    return bool(frame) and not frame[0] & 0x01


def dimensions(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame's header, or None."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != KEYFRAME_START_CODE:
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def keyframe_start(payload: bytes) -> bool:
    """True if this RTP payload is the first packet of a key frame (RFC 7741 §4.2-4.3: S=1 and partition
    index 0 in the descriptor, P=0 in the payload header)."""
    skip = descriptor_length(payload)
    return frame_start(payload) and 0 <= skip < len(payload) and is_keyframe(payload[skip:])


def keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) if this RTP payload is the first packet of a key frame, else None."""
    skip = descriptor_length(payload)
    return dimensions(payload[skip:]) if frame_start(payload) and skip >= 0 else None
