"""Pacing: a weak link's video sent no faster than the link carries, audio never held back.

A VP8 keyframe leaves an encoder as one burst of packets: 17 KB for a 640x360 slide of text, where a
300 kbit/s mobile link queues a few KB before it drops. Sent as it comes, the burst's tail is lost,
its retransmissions come as another burst and are lost again, and the student never sees the slide.
So for a subscriber whose link has a budget (media/links.py), video packets (retransmissions
included) go through one queue per subscriber, drained at the budget's rate; audio bypasses it. A
subscriber without a budget has no pacer: its packets are sent at once, as before.

The queue is bounded in time: what would wait longer than MAX_DELAY seconds is dropped, and the slot
that lost it asks for a keyframe (`on_overflow`), as it does when a socket's buffer is full.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from media._aiortc import SEND_ERRORS

MAX_DELAY = 1.0  # seconds of video a pacer holds before it drops
BURST = 6_000  # bytes that may go at once: a few packets, not a keyframe


class Pacer:
    """Sends (send, data) pairs in order, at `rate` bit/s on average."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.queue: deque[tuple[Callable[[bytes], None], bytes, Callable[[], None] | None]] = deque()
        self.queued_bytes = 0
        self.dropped = self.sent = self.send_errors = 0
        self._credit = float(BURST)  # bytes that may go now
        self._at = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def set_rate(self, rate: float) -> None:
        self._refill()
        self.rate = rate

    def send(self, send: Callable[[bytes], None], data: bytes, on_overflow: Callable[[], None] | None = None) -> None:
        """Send `data` with `send` now if the link has room, else when it has; drop it (and call
        on_overflow) if it would wait more than MAX_DELAY."""
        if self.queued_bytes * 8 > self.rate * MAX_DELAY:
            self.dropped += 1
            if on_overflow is not None:
                on_overflow()
            return
        self.queue.append((send, data, on_overflow))
        self.queued_bytes += len(data)
        if self._timer is None:  # else the timer drains it, in order
            self._drain()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.queue.clear()
        self.queued_bytes = 0

    def _refill(self) -> None:
        now = time.monotonic()
        self._credit = min(float(BURST), self._credit + (now - self._at) * self.rate / 8)
        self._at = now

    def _drain(self) -> None:
        self._timer = None
        self._refill()
        queue = self.queue
        while queue and self._credit >= len(queue[0][1]):
            send, data, _ = queue.popleft()
            self.queued_bytes -= len(data)
            self._credit -= len(data)
            try:
                send(data)
                self.sent += 1
            except SEND_ERRORS:
                self.send_errors += 1
        if queue and self._timer is None:
            wait = (len(queue[0][1]) - self._credit) * 8 / self.rate
            self._timer = asyncio.get_running_loop().call_later(max(wait, 0.001), self._drain)
