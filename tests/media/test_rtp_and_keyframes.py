"""Pure parts of the forwarder: RTP bytes, VP8 keyframe detection, offsets, keyframe requests."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from av import VideoFrame
from hypothesis import given
from hypothesis import strategies as st

from media import rtp, vp8
from media.keyframes import KeyframeRequester


def test_vp8_keyframe_detection_on_real_encoder_output():
    encoder = Vp8Encoder()
    frame = VideoFrame.from_ndarray(np.zeros((360, 640, 3), np.uint8), format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    payloads, _ = encoder.encode(frame)  # the first frame of an encoder is a keyframe
    assert vp8.keyframe_start(payloads[0])
    assert not any(vp8.keyframe_start(p) for p in payloads[1:])
    frame.pts = 3000
    payloads, _ = encoder.encode(frame)
    assert not vp8.keyframe_start(payloads[0])
    assert not vp8.keyframe_start(b"")


def test_header_with_extensions_round_trips():
    block = rtp.one_byte_extensions(
        [(1, b"3"), (3, rtp.abs_send_time(rtp.ntp_now())), (2, rtp.audio_level_byte(True, 30))]
    )
    data = rtp.rtp_header(1, 96, 65535, 2**32 - 1, 0xDEADBEEF, block) + b"payload"
    header = rtp.parse(data)
    assert (header.marker, header.payload_type, header.sequence, header.timestamp, header.ssrc) == (
        1,
        96,
        65535,
        2**32 - 1,
        0xDEADBEEF,
    )
    assert header.extensions[1] == b"3" and header.extensions[2] == bytes([0x80 | 30])
    assert len(header.extensions[3]) == 3 and header.payload == b"payload"
    assert rtp.parse(rtp.rtp_header(0, 111, 1, 2, 3) + b"x").extensions == {}
    assert rtp.rtx_payload(0x1234, b"abc") == b"\x12\x34abc"


@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.floats(0, 100),
    st.sampled_from([48000, 90000]),
)
def test_a_new_source_continues_forward(source_seq, source_ts, last_seq, last_ts, elapsed, clock):
    offsets = rtp.continuing_offsets(source_seq, source_ts, last_seq, last_ts, elapsed, clock)
    out_seq = (source_seq + offsets.sequence) % rtp.SEQ_MOD
    out_ts = (source_ts + offsets.timestamp) % rtp.TS_MOD
    assert out_seq == (last_seq + 1) % rtp.SEQ_MOD
    assert 0 < (out_ts - last_ts) % rtp.TS_MOD < 2**31
    assert rtp.seq_newer(out_seq, last_seq)
    first = rtp.first_offsets(source_seq, source_ts)
    assert (source_seq + first.sequence) % rtp.SEQ_MOD < rtp.SEQ_MOD // 2


async def test_keyframe_requests_are_coalesced_and_repeated_until_served():
    sent = []

    async def send_pli():
        sent.append(asyncio.get_running_loop().time())

    requester = KeyframeRequester(send_pli)
    for waiter in range(45):  # a join storm: one PLI, not 45
        requester.need(waiter)
    await asyncio.sleep(0.05)  # the requester's task runs; the timers below are what is tested
    assert len(sent) == 1
    await asyncio.sleep(requester.RETRY + 0.1)  # no keyframe came: asked again
    assert len(sent) == 2
    requester.keyframe_seen()
    for waiter in range(45):
        requester.served(waiter)
    await asyncio.sleep(requester.RETRY + 0.1)
    assert len(sent) == 2  # everyone served: silence
    requester.request()  # a subscriber's PLI within SUBSCRIBER_INTERVAL of the last one: dropped
    await asyncio.sleep(0.05)
    assert len(sent) == 2
    await asyncio.sleep(requester.SUBSCRIBER_INTERVAL)
    requester.request()  # later: passed on, once
    requester.request()
    await asyncio.sleep(0.05)
    assert len(sent) == 3
    requester.close()


async def test_keyframes_of_a_costly_layer_are_asked_for_less_often():
    sent = []

    async def send_pli():
        sent.append(asyncio.get_running_loop().time())

    requester = KeyframeRequester(send_pli)
    requester.keyframe_cost(keyframe_bits=17_000 * 8, bitrate=60_000)  # a slide on a low layer
    assert requester.spacing == pytest.approx(4.53, abs=0.01)  # half the rate for keyframes at most
    requester.keyframe_cost(keyframe_bits=30_000 * 8, bitrate=20_000)
    assert requester.spacing == requester.MAX_SPACING
    requester.keyframe_cost(keyframe_bits=7_000 * 8, bitrate=1_000_000)  # a camera
    assert requester.spacing == pytest.approx(0.112, abs=0.001)
    requester.keyframe_cost(keyframe_bits=17_000 * 8, bitrate=60_000)
    for waiter in range(3):  # subscribers starting again one after the other
        requester.need(waiter)
        await asyncio.sleep(0.2)
        requester.keyframe_seen()
        requester.served(waiter)
    assert len(sent) == 1  # one keyframe for all three, not one each
    requester.close()
