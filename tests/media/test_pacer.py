"""The pacer spreads a keyframe's burst over time at the link's rate, keeps order, and drops (asking for
a keyframe) rather than holding more than MAX_DELAY seconds of video."""

from __future__ import annotations

import time

from media.pacer import BURST_MIN, MAX_DELAY, Pacer
from tests.helpers import eventually


async def test_a_burst_leaves_at_the_link_rate_in_order():
    rate = 400_000  # bit/s
    pacer = Pacer(rate)
    sent: list[tuple[float, int]] = []
    start = time.monotonic()
    for i in range(40):  # a 40 KB keyframe in 1,000-byte packets
        pacer.send(lambda data, i=i: sent.append((time.monotonic(), i)), bytes(1000))
    assert len(sent) <= max(BURST_MIN, pacer._burst()) // 1000 + 1, "more than a burst went at once"
    await eventually(lambda: len(sent) >= 40, 10, "the 40 packets to leave")
    elapsed = sent[-1][0] - start
    expected = (40_000 - pacer._burst()) * 8 / rate
    assert elapsed >= 0.8 * expected, "the pacer sent faster than the link's rate"
    assert [i for _, i in sent] == list(range(40))
    pacer.close()


async def test_what_would_wait_too_long_is_dropped_and_the_slot_told():
    pacer = Pacer(80_000)  # 10 KB/s: MAX_DELAY holds 30 KB
    overflows = []
    for _ in range(60):
        pacer.send(lambda data: None, bytes(1000), lambda: overflows.append(1))
    assert pacer.queued_bytes * 8 <= 80_000 * MAX_DELAY + 8_000
    assert pacer.dropped > 0 and len(overflows) == pacer.dropped
    pacer.close()
