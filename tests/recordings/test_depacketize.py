"""VP8/Opus depacketizing: frame assembly (RFC 7741 descriptors), reordering across the 16-bit
sequence wraparound, loss (incomplete frames dropped, then nothing until a keyframe)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from media.vp8 import descriptor_length as vp8_descriptor_length
from media.vp8 import dimensions as vp8_dimensions
from media.vp8 import picture_id as vp8_picture_id
from recordings.depacketize import (
    OpusDepacketizer,
    ReorderBuffer,
    Vp8Depacketizer,
    opus_duration_ms,
    unwrap,
)


@dataclass
class P:  # what media.EncodedPacket carries (the fields a depacketizer reads)
    sequence: int
    timestamp: int
    marker: bool
    payload: bytes
    arrival: float = 0.0


def keyframe_data(n: int, width: int = 640, height: int = 360) -> bytes:
    """A VP8 key frame's first bytes (frame tag with P=0, start code, size) + filler."""
    return (
        bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A])
        + width.to_bytes(2, "little")
        + height.to_bytes(2, "little")
        + bytes([n % 256]) * 40
    )


def interframe_data(n: int) -> bytes:
    return bytes([0x31, 0x02, 0x00]) + bytes([n % 256]) * 40


def packetize(data: bytes, sequence: int, timestamp: int, picture_id: int, arrival: float, size: int = 16) -> list[P]:
    """RFC 7741 packets of one frame: X=1 with a 15-bit PictureID (I=1, M=1), S on the first."""
    parts = [data[i : i + size] for i in range(0, len(data), size)]
    packets = []
    for i, part in enumerate(parts):
        descriptor = bytes([0x80 | (0x10 if i == 0 else 0), 0x80, 0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF])
        packets.append(
            P((sequence + i) & 0xFFFF, timestamp & 0xFFFFFFFF, i == len(parts) - 1, descriptor + part, arrival)
        )
    return packets


def stream(first_sequence: int, frames: int, keyframes=(0,), start_ts: int = 1000):
    """Packets of `frames` frames (keyframes at the given indexes) and each frame's data."""
    packets, datas, sequence = [], [], first_sequence
    for n in range(frames):
        data = keyframe_data(n) if n in keyframes else interframe_data(n)
        frame_packets = packetize(data, sequence, start_ts + 3000 * n, n, n / 30)
        sequence += len(frame_packets)
        packets.append(frame_packets)
        datas.append(data)
    return packets, datas


def feed(depacketizer, packets):
    frames = []
    for packet in packets:
        frames += depacketizer.push(packet)
    return frames + depacketizer.flush()


def test_descriptor_lengths_and_fields():
    assert vp8_descriptor_length(b"\x10") == 1  # no X
    assert vp8_descriptor_length(b"\x90\x80\x05") == 3  # 7-bit PictureID
    assert vp8_descriptor_length(b"\x90\x80\x81\x02") == 4  # 15-bit PictureID
    assert vp8_descriptor_length(b"\x90\xe0\x81\x02\x07\x20") == 6  # + TL0PICIDX + TID/KEYIDX
    assert vp8_descriptor_length(b"\x90\x10\x40") == 3  # K only
    assert vp8_descriptor_length(b"\x90\x80") == -1  # truncated
    assert vp8_picture_id(b"\x90\x80\x81\x02") == 0x102 and vp8_picture_id(b"\x90\x80\x05") == 5
    assert vp8_picture_id(b"\x10") is None
    assert vp8_dimensions(keyframe_data(0, 1280, 720)) == (1280, 720)
    assert vp8_dimensions(interframe_data(0)) is None


def test_opus_durations_from_the_toc_byte():
    assert opus_duration_ms(bytes([0xFC, 0xFF])) == 20  # CELT 20 ms, one frame
    assert opus_duration_ms(bytes([0x78, 0])) == 20  # config 15: hybrid FB 20 ms
    assert opus_duration_ms(bytes([0x08 | 1, 0])) == 40  # config 1 (SILK 20 ms), two frames
    assert opus_duration_ms(bytes([0x18 | 3, 3])) == 180  # config 3 (SILK 60 ms) x3
    assert opus_duration_ms(bytes([0x80, 0])) == 2.5
    assert opus_duration_ms(b"") == 0


def test_in_order_packets_give_every_frame_whole():
    packets, datas = stream(100, 10)
    frames = feed(Vp8Depacketizer(), [p for frame in packets for p in frame])
    assert [f.data for f in frames] == datas
    assert [f.keyframe for f in frames] == [True] + [False] * 9
    assert [f.timestamp for f in frames] == [1000 + 3000 * n for n in range(10)]


def test_reordered_packets_across_the_sequence_wraparound():
    packets, datas = stream(65530, 12)  # the numbers wrap to 0 within the first frames
    flat = [p for frame in packets for p in frame]
    assert any(p.sequence < 10 for p in flat) and any(p.sequence > 65500 for p in flat)
    rng = random.Random(5)
    shuffled = list(flat)
    for i in range(0, len(shuffled) - 4, 4):  # local reordering, as a network does it
        window = shuffled[i : i + 5]
        rng.shuffle(window)
        shuffled[i : i + 5] = window
    depacketizer = Vp8Depacketizer()
    frames = feed(depacketizer, shuffled)
    assert [f.data for f in frames] == datas
    assert depacketizer.buffer.lost == 0 and depacketizer.dropped == 0


def test_duplicates_and_late_packets_are_dropped():
    packets, datas = stream(0, 3)
    flat = [p for frame in packets for p in frame]
    depacketizer = Vp8Depacketizer()
    frames = feed(depacketizer, flat[:5] + flat[:2] + flat[5:])
    assert [f.data for f in frames] == datas and depacketizer.buffer.late == 2


def test_a_lost_packet_drops_its_frame_and_everything_until_the_next_keyframe():
    packets, datas = stream(65000, 20, keyframes=(0, 12))
    lost = packets[5][1]  # the middle of frame 5
    flat = [p for frame in packets for p in frame if p is not lost]
    depacketizer = Vp8Depacketizer()
    frames = feed(depacketizer, flat)
    assert [f.data for f in frames] == datas[:5] + datas[12:]
    assert depacketizer.buffer.lost == 1 and depacketizer.dropped == 7 and depacketizer.skipped == 0
    assert frames[5].keyframe


def test_the_wait_for_a_missing_packet_is_bounded_in_time():
    packets, datas = stream(10, 20, keyframes=(0, 10))
    lost = packets[3][0]  # the start of frame 3
    depacketizer = Vp8Depacketizer(max_delay=0.2)
    out = []
    for frame in packets:
        for packet in frame:
            if packet is not lost:
                out += depacketizer.push(packet)
        if frame is packets[6]:  # 0.1 s after the loss: still waiting for it
            assert [f.data for f in out] == datas[:3]
    assert depacketizer.need_keyframe is False
    assert [f.data for f in out] == datas[:3] + datas[10:]  # released without a flush
    # and when no packet comes at all, expire() gives up at max_delay
    depacketizer = Vp8Depacketizer(max_delay=0.2)
    flat = [p for frame in packets[:5] for p in frame if p is not lost]
    for packet in flat:
        depacketizer.push(packet)
    assert depacketizer.expire(flat[-1].arrival + 0.1) == []
    assert depacketizer.expire(flat[0].arrival + 1.0) == [] and len(depacketizer.buffer) == 0
    assert depacketizer.need_keyframe


def test_nothing_before_the_first_keyframe():
    packets, datas = stream(7, 10, keyframes=(4,))
    depacketizer = Vp8Depacketizer()
    frames = feed(depacketizer, [p for frame in packets[1:] for p in frame])
    assert [f.data for f in frames] == datas[4:]
    assert depacketizer.skipped == 3 and depacketizer.dropped == 0  # joining is not losing


def test_a_frame_without_its_marker_and_an_empty_payload():
    packets, datas = stream(0, 3)
    missing_marker = packets[1][-1]
    packets[1][-1] = P(missing_marker.sequence, missing_marker.timestamp, False, missing_marker.payload)
    flat = [p for frame in packets for p in frame]
    frames = feed(Vp8Depacketizer(), flat)
    assert [f.data for f in frames] == datas  # the next frame's start ends it


def test_a_publisher_restarting_its_sequence_numbers():
    first, datas1 = stream(1000, 3)
    second, datas2 = stream(40000, 3)
    frames = feed(Vp8Depacketizer(), [p for frame in first + second for p in frame])
    assert [f.data for f in frames] == datas1 + datas2


@pytest.mark.parametrize("start", [0, 65500])
def test_reorder_buffer_releases_in_order_and_reports_gaps(start):
    buffer = ReorderBuffer(max_delay=1.0, max_packets=8)
    order = [0, 2, 1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]  # 4 never comes
    released = []
    for n in order:
        released += buffer.push(P((start + n) & 0xFFFF, n, False, b"x", 0.0))
    released += buffer.flush()
    assert [(gap, (p.sequence - start) & 0xFFFF) for gap, p in released] == [
        (False, 0),
        (False, 1),
        (False, 2),
        (False, 3),
        (True, 5),
    ] + [(False, n) for n in range(6, 15)]
    assert buffer.lost == 1
    assert unwrap(2, 65534) == 65538 and unwrap(65534, 65538) == 65534


def test_opus_packets_are_frames_in_sequence_order():
    depacketizer = OpusDepacketizer()
    packets = [P((65534 + n) & 0xFFFF, 960 * n, True, bytes([0xFC, n]), n * 0.02) for n in range(6)]
    out = []
    for packet in [packets[0], packets[2], packets[1], packets[3], packets[5], packets[4]]:
        out += depacketizer.push(packet)
    out += depacketizer.flush()
    assert [f.timestamp for f in out] == [960 * n for n in range(6)]
    assert all(f.keyframe for f in out)
