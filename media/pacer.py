"""Pacing: a weak link's video sent no faster than the link carries, audio never held back.

A VP8 keyframe leaves an encoder as one burst of packets: 17 KB for a 640x360 slide of text, where a
300 kbit/s mobile link queues a few KB before it drops. Sent as it comes, the burst's tail is lost,
its retransmissions come as another burst and are lost again, and the student never sees the slide.
So for a subscriber whose link has a budget (media/links.py), video packets (retransmissions
included) go through one queue per subscriber, drained at the budget's rate; audio bypasses it. A
subscriber without a budget has no pacer: its packets are sent at once, as before.

The queue is bounded in time: what would wait longer than MAX_DELAY seconds is dropped, the slot that
lost it starting again at a keyframe (`on_overflow`), as when a socket's buffer is full. (Dropping
early, at every keyframe's burst, was measured to feed itself: each drop asks for a keyframe, the next
burst; draining faster than the link to catch up was measured to overflow it.)
Retransmissions go first (a receiver waits for them: aiortc's stops decoding until the packet comes or
128 more have), from a short queue of their own; what cannot go within RETRANSMIT_DELAY is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from media._aiortc import SEND_ERRORS

MAX_DELAY = 2.0  # seconds of video a pacer holds before it drops
RETRANSMIT_DELAY = 0.2  # a retransmission that would wait longer is useless by the time it arrives
BURST_SECONDS = 0.03  # what may go at once after a pause: 30 ms of the rate ...
BURST_MIN = 1_500  # ... and at least one full packet (a keyframe never goes at once)


class Pacer:
    """Sends (send, data) pairs in order, at `rate` bit/s on average."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.queue: deque[tuple[Callable[[bytes], None], bytes, Callable[[], None] | None]] = deque()
        self.urgent: deque[tuple[Callable[[bytes], None], bytes, None]] = deque()  # retransmissions
        self.queued_bytes = 0
        self.urgent_bytes = 0
        self.dropped = self.sent = self.send_errors = 0
        self._credit = float(self._burst())  # bytes that may go now
        self._at = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def _burst(self) -> float:
        return max(BURST_MIN, self.rate * BURST_SECONDS / 8)

    def set_rate(self, rate: float) -> None:
        """A new rate; on a lower one, what would now wait more than MAX_DELAY is dropped (the
        senders that lose packets start again at a keyframe)."""
        self._refill()
        self.rate = rate
        overflowed = set()
        while self.queue and self.queued_bytes * 8 > rate * MAX_DELAY:
            _, data, on_overflow = self.queue.pop()
            self.queued_bytes -= len(data)
            self.dropped += 1
            if on_overflow is not None:
                overflowed.add(on_overflow)
        for on_overflow in overflowed:
            on_overflow()

    def send(
        self,
        send: Callable[[bytes], None],
        data: bytes,
        on_overflow: Callable[[], None] | None = None,
        retransmission: bool = False,
    ) -> None:
        """Send `data` with `send` now if the link has room, else when it has; drop it (and call
        on_overflow) if it would wait more than MAX_DELAY. A retransmission that would wait more than
        RETRANSMIT_DELAY is dropped silently: on a full link, new media comes first."""
        if retransmission:
            if self.urgent_bytes * 8 > self.rate * RETRANSMIT_DELAY:
                self.dropped += 1
                return
            self.urgent.append((send, data, None))
            self.urgent_bytes += len(data)
        elif self.queued_bytes * 8 > self.rate * MAX_DELAY:
            self.dropped += 1
            if on_overflow is not None:
                on_overflow()
            return
        else:
            self.queue.append((send, data, on_overflow))
            self.queued_bytes += len(data)
        if self._timer is None:  # else the timer drains it, in order
            self._drain()

    def forget(self, send: Callable[[bytes], None]) -> None:
        """Drop what is queued for one sender (its slot cut over to another layer)."""
        for name in ("queue", "urgent"):
            queue = getattr(self, name)
            kept = deque(entry for entry in queue if entry[0] != send)
            dropped = sum(len(entry[1]) for entry in queue) - sum(len(entry[1]) for entry in kept)
            setattr(self, name, kept)
            if name == "queue":
                self.queued_bytes -= dropped
            else:
                self.urgent_bytes -= dropped

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.queue.clear()
        self.urgent.clear()
        self.queued_bytes = self.urgent_bytes = 0

    def _refill(self) -> None:
        now = time.monotonic()
        self._credit = min(self._burst(), self._credit + (now - self._at) * self.rate / 8)
        self._at = now

    def _drain(self) -> None:
        self._timer = None
        self._refill()
        while True:
            queue = self.urgent if self.urgent else self.queue
            if not queue or self._credit < len(queue[0][1]):
                break
            send, data, _ = queue.popleft()
            if queue is self.urgent:
                self.urgent_bytes -= len(data)
            else:
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
