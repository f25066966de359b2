"""Per-subscriber layer selection: which layer of each video source fits a subscriber's link. No I/O.

aiortc has no simulcast and no transport-wide congestion control, so the SFU decides per subscriber
from what it sees of that subscriber's link, once per TICK:
- loss from the subscriber's RTCP receiver reports (cumulative lost / highest sequence of every slot,
  summed over the last two ticks so one unlucky report does not move anything), and
- the REMB the subscriber's receiver sends, where it sends one (Chrome and aiortc do): a REMB well
  below what we send is a queue building up before packets are lost.

When the link is congested the subscriber gets a *budget*: what it really received (sent x (1 - loss),
or its REMB), with a margin. Audio always goes; the video slots are then filled in priority order
(the lesson's screen before the teacher's camera before the stage and the classmates): each gets its
low layer if it fits, else it is paused, and what is left upgrades slots to the high layer. With no
budget (a clean link) every slot carries its high layer.

Going back up is a try: after CLEAN_TICKS clean ticks (loss under LOSS_CLEAN), the budget is raised to
what the next upgrade costs. If that brings loss back within PROBATION seconds, the try failed: the
next one waits twice as long (BACKOFF_MIN .. BACKOFF_MAX), so a link that really is weak is not
flooded every few seconds. A link with steady random loss above LOSS_CLEAN (a weak mobile link) is
never "clean", so it is never tried and its audio is never disturbed by a try.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TICK = 1.0  # seconds between decisions
LOSS_HIGH = 0.12  # loss over the window that means "the link cannot carry this"
LOSS_CLEAN = 0.02  # loss under which a tick counts as clean
MIN_PACKETS = 20  # packets in the window below which the loss says nothing
CLEAN_TICKS = 3
MARGIN = 0.85  # share of what really got through that the budget allows
REMB_LOW = 0.7  # a REMB under this share of the send rate, twice in a row, is congestion
PROBATION = 4.0  # seconds after an upgrade in which congestion means the try failed
BACKOFF_MIN = 3.0
BACKOFF_MAX = 60.0
AUDIO_COST = 48_000  # bit/s of an Opus voice with FEC, when not measured yet

HIGH, LOW, OFF = "high", "low", "off"


@dataclass
class VideoSlot:
    """One video slot as the selection sees it: the bit rates of the layers it could carry now (None:
    that layer is not published)."""

    name: str
    high: float | None
    low: float | None


def allocate(budget: float | None, audio: float, slots: list[VideoSlot], low_only: bool = False
             ) -> dict[str, str]:
    """Each video slot's layer (high, low or off) within `budget` bit/s, `audio` bit/s going first.
    `slots` in priority order. No budget: all high. `low_only` (data saver): the low layer where one exists."""
    choice: dict[str, str] = {}
    if low_only:
        return {s.name: LOW if s.low is not None else HIGH for s in slots}
    if budget is None:
        return {s.name: HIGH if s.high is not None else LOW for s in slots}
    left = budget - audio
    for slot in slots:  # first every slot at its cheapest layer, in priority order
        cheapest, layer = (slot.low, LOW) if slot.low is not None else (slot.high, HIGH)
        if cheapest is not None and cheapest <= left:
            choice[slot.name] = layer
            left -= cheapest
        else:
            choice[slot.name] = OFF
    for slot in slots:  # then upgrades, in the same order
        if choice[slot.name] == LOW and slot.high is not None and slot.low is not None \
                and slot.high - slot.low <= left:
            choice[slot.name] = HIGH
            left -= slot.high - slot.low
    return choice


def cost(choice: dict[str, str], slots: list[VideoSlot]) -> float:
    total = 0.0
    for slot in slots:
        layer = choice.get(slot.name)
        if layer == HIGH:
            total += slot.high if slot.high is not None else (slot.low or 0.0)
        elif layer == LOW:
            total += slot.low if slot.low is not None else (slot.high or 0.0)
    return total


def next_budget(budget: float, audio: float, slots: list[VideoSlot]) -> float | None:
    """The smallest budget above `budget` that changes the allocation (None: nothing more to gain)."""
    current = allocate(budget, audio, slots)
    candidates = []
    for slot in slots:
        if current[slot.name] == HIGH or (slot.high is None and current[slot.name] == LOW):
            continue
        trial = dict(current)
        trial[slot.name] = LOW if current[slot.name] == OFF and slot.low is not None else HIGH
        candidates.append(audio + cost(trial, slots))
    above = [c for c in candidates if c > budget]
    return min(above) * 1.05 if above else None


@dataclass
class LinkReport:
    """What one tick saw of a subscriber's link."""

    lost: int = 0  # packets reported lost since the last tick (all slots)
    expected: int = 0  # packets the reports cover since the last tick
    sent_bitrate: float = 0.0  # what we sent, bit/s
    remb: float | None = None  # the subscriber's latest REMB, bit/s


@dataclass
class LinkControl:
    """The layer selection of one subscriber over time."""

    budget: float | None = None  # None: the link carries everything (high layers)
    clean_ticks: int = 0
    low_remb_ticks: int = 0
    backoff: float = BACKOFF_MIN
    last_change: float = 0.0
    last_upgrade: float | None = None
    congested_at: float | None = None
    loss: float = 0.0  # over the last window, for reports
    _window: list[tuple[int, int]] = field(default_factory=list)

    def update(self, now: float, report: LinkReport, audio: float, slots: list[VideoSlot]) -> None:
        self._window = (self._window + [(report.lost, report.expected)])[-2:]
        lost = sum(w[0] for w in self._window)
        expected = sum(w[1] for w in self._window)
        loss = lost / expected if expected >= MIN_PACKETS else None
        if loss is not None:
            self.loss = max(0.0, min(1.0, loss))
        remb_low = report.remb is not None and report.sent_bitrate > 0 \
            and report.remb < REMB_LOW * report.sent_bitrate
        self.low_remb_ticks = self.low_remb_ticks + 1 if remb_low else 0
        congested_by_loss = loss is not None and loss > LOSS_HIGH
        if congested_by_loss or self.low_remb_ticks >= 2:
            latest = report.lost / report.expected if report.expected else 0.0
            through = report.sent_bitrate * (1 - max(loss or 0.0, latest))
            if self.low_remb_ticks >= 2 and report.remb is not None:
                through = min(through, report.remb)
            self._congested(now, through * MARGIN)
            return
        if loss is not None and loss < LOSS_CLEAN:
            self.clean_ticks += 1
        elif loss is not None:
            self.clean_ticks = 0
        if self.last_upgrade is not None and now - self.last_upgrade > 3 * PROBATION:
            self.backoff, self.last_upgrade = BACKOFF_MIN, None  # the last try held: tries may come soon again
            if self.budget is not None and all(c == HIGH for c in allocate(self.budget, audio, slots).values()):
                self.budget = None  # everything fits again: no cap that a busier slide could trip over
        if self.budget is not None and self.clean_ticks >= CLEAN_TICKS and now - self.last_change >= self.backoff:
            raised = next_budget(self.budget, audio, slots)
            if raised is None:
                return
            self.budget, self.last_change, self.last_upgrade = raised, now, now
            self.clean_ticks = 0
            self._window = []

    def _congested(self, now: float, through: float) -> None:
        if self.last_upgrade is not None and now - self.last_upgrade <= PROBATION:
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)  # the try failed: wait longer next time
        self.last_upgrade = None
        if self.budget is None or through < self.budget:
            self.budget = through
        self.congested_at = self.last_change = now
        self.clean_ticks = self.low_remb_ticks = 0
        self._window = []  # judge the new layers on their own packets
