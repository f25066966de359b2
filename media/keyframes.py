"""Keyframe requests to one publisher's video track: coalesced, throttled, repeated until served.

A publisher at a steady bitrate sends no keyframe by itself (aiortc's VP8 encoder: one per 100 s),
and a single lost PLI or keyframe would leave a subscriber black. So:
- waiters (a new subscriber, a slot switched to this track, a resumed or skipped subscriber) are
  held until the forwarder has really started them at a keyframe (`served`);
- a PLI is "in flight" from the moment it is sent until a keyframe passes, or RETRY later: new
  waiters in that window need no PLI of their own (a join storm costs a handful, not one each);
- otherwise a PLI goes out at once, or MIN_INTERVAL after the previous one;
- while waiters remain, an unanswered PLI is repeated every RETRY;
- a subscriber's own PLI/FIR (`request`) is passed on at most once per SUBSCRIBER_INTERVAL: a receiver
  on a lossy link asks after every broken frame, and each keyframe it gets is a burst (17 KB for a
  640x360 slide) that breaks the next frames on that same link;
- PLIs are spaced by what a keyframe of this track costs (`keyframe_cost`): at most KEYFRAME_SHARE of
  the track's bit rate goes to keyframes we ask for. A 17 KB slide keyframe on a 60 kbit/s low layer
  is worth seconds of it: asked for every 0.1 s by 45 subscribers starting again at different moments,
  the layer became nothing but keyframes (measured: 535 kbit/s instead of 60) and no weak link could
  carry it. A camera's small keyframes are still asked for within 0.1 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class KeyframeRequester:
    MIN_INTERVAL = 0.1
    RETRY = 0.3
    SUBSCRIBER_INTERVAL = 1.0
    KEYFRAME_SHARE = 0.5
    MAX_SPACING = 5.0  # a late subscriber of a still slide waits at most this long for its first frame

    def __init__(self, send_pli: Callable[[], Awaitable[object]]) -> None:
        self._send_pli = send_pli
        self._waiting: set[Hashable] = set()
        self._wanted = False  # a subscriber's PLI/FIR not passed on yet
        self._in_flight = False
        self._last_sent = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self._sends: set[asyncio.Future[object]] = set()
        self._closed = False
        self.spacing = self.MIN_INTERVAL  # seconds between two PLIs (see keyframe_cost)
        self.sent = 0  # PLIs sent to the publisher

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def need(self, waiter: Hashable) -> None:
        """`waiter` needs a keyframe; it is asked for until `served(waiter)`."""
        self._waiting.add(waiter)
        self._update()

    def served(self, waiter: Hashable) -> None:
        self._waiting.discard(waiter)
        if not self._waiting and not self._wanted:
            self._cancel_timer()

    def request(self) -> None:
        """A subscriber sent PLI/FIR (covered by a PLI already in flight)."""
        if time.monotonic() - self._last_sent < max(self.SUBSCRIBER_INTERVAL, self.spacing):
            return
        self._wanted = True
        self._update()

    def keyframe_seen(self) -> None:
        self._in_flight = False

    def keyframe_cost(self, keyframe_bits: float, bitrate: float) -> None:
        """A keyframe of `keyframe_bits` passed on a track of `bitrate` bit/s: space PLIs so that the
        keyframes asked for take at most KEYFRAME_SHARE of the rate."""
        if bitrate > 0:
            wanted = keyframe_bits / (self.KEYFRAME_SHARE * bitrate)
            self.spacing = min(self.MAX_SPACING, max(self.MIN_INTERVAL, wanted))

    def close(self) -> None:
        self._closed = True
        self._waiting.clear()
        self._cancel_timer()
        for task in self._sends:
            task.cancel()

    # -- internals
    def _update(self) -> None:
        """Send now if allowed, then arm the timer for the next moment something may be due."""
        if self._closed:
            return
        now = time.monotonic()
        if self._in_flight and now - self._last_sent >= self.RETRY:
            self._in_flight = False  # the PLI or its keyframe was lost
        if (self._waiting or self._wanted) and not self._in_flight and now - self._last_sent >= self.spacing:
            self._send(now)
        self._cancel_timer()
        if self._waiting or self._wanted:
            delay = self.RETRY if self._in_flight else self.spacing
            due = self._last_sent + delay - now
            self._timer = asyncio.get_running_loop().call_later(max(0.005, due), self._update)

    def _send(self, now: float) -> None:
        self._last_sent = now
        self._in_flight = True
        self._wanted = False
        self.sent += 1
        task = asyncio.ensure_future(self._send_pli())
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Future[object]) -> None:
        self._sends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("PLI not sent: %r", task.exception())

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
