"""Per-subscriber layer selection: which layer of each video source fits a subscriber's link. No I/O.

aiortc has no simulcast and no transport-wide congestion control, so the SFU decides per subscriber
from what it sees of that subscriber's link, once per TICK:
- loss from the subscriber's RTCP receiver reports (cumulative lost / highest sequence of every slot,
  summed over the last two ticks so one unlucky report does not move anything), and
- not the REMB its receiver sends (reported, not obeyed): measured here, an aiortc receiver's REMB
  falls to a fifth of the link after an overload and stays there for seconds, and it never rises
  above 1.5x what it receives, so it can neither confirm a downgrade nor allow an upgrade.

When the link is congested the subscriber gets a *budget*: what it really received, as its receiver
reports say (packets received between two reports, times their size, over the time between the
reports), with a small margin; while congested ticks follow each other the budget only goes down.
(Neither `sent x (1 - loss)` nor a REMB measured during the overload is a fair estimate: the first mixes
time windows, the second collapses to a fraction of the link.) Audio always goes; the video slots are then filled
in priority order (the lesson's screen before the teacher's camera before the stage and the classmates): each gets its
low layer if it fits, else it is paused, and what is left upgrades slots to the high layer. With no
budget (a clean link) every slot carries its high layer.

Going down is a ladder: from high layers, first to the low layers only; video pauses only if the low
layers are congested too. After a decrease the reports that follow still describe the traffic before
it, so nothing more changes for HOLD seconds.

An outage is not congestion. While a subscriber's network is down its receiver reports nothing new, and
the first report after it counts every packet of the outage as lost: read as congestion, a blip of a few
seconds would cost the high layers (or a single-layer camera) for the ten seconds a try takes. A slot's
report that covers more than OUTAGE seconds (they come about every second) and lost more than OUTAGE_LOSS
of it tells of an outage: that report, and every slot's report that spans the outage's middle, is a new
baseline, not loss. A link still congested after it shows so in the reports that follow (a browser's
microphone reports come every few seconds: its camera's, every second, carry the congestion).

Going back up is a try: after CLEAN_TICKS clean ticks (loss under LOSS_CLEAN), the budget is raised to
what the next upgrade costs. If that brings loss back within PROBATION seconds, the try failed: the
next one waits twice as long (BACKOFF_MIN .. BACKOFF_MAX), so a link that really is weak is not
flooded every few seconds. A link with steady random loss above LOSS_CLEAN (a weak mobile link) is
never "clean": after CALM_TICKS without congestion it may only try a small step (a paused slot back
at its low layer), never the jump to a high layer that would overflow it and cost its audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TICK = 1.0  # seconds between decisions
LOSS_HIGH = 0.12  # loss over the window that means "the link cannot carry this"
LOSS_CLEAN = 0.02  # loss under which a tick counts as clean
MIN_PACKETS = 20  # packets in the window below which the loss says nothing
CLEAN_TICKS = 3
CLEAN_PACKETS = 400  # packets a clean streak must cover before a try
MARGIN = 0.95  # share of what really got through that the budget allows
PROBATION = 4.0  # seconds after an upgrade in which congestion means the try failed
HOLD = 3.0  # seconds after a decrease during which reports still describe the traffic before it
OUTAGE = 1.6  # seconds a slot's report covers (0.5-1.5 s apart), beyond which it tells of an outage
OUTAGE_LOSS = 0.5  # ... if it lost more than this share
CALM_TICKS = 5  # ticks without congestion before a lossy link may try a small step up
SMALL_STEP = 160_000  # bit/s: a step up that small (or SMALL_STEP_SHARE of what is sent) is "small": one low layer
RUNG_HEADROOM = 1.1  # the low layers' rung leaves them this much room to wobble
SMALL_STEP_SHARE = 0.5
BACKOFF_MIN = 3.0
BACKOFF_MAX = 60.0
KEEP_SLACK = 1.2  # a layer in use keeps its slot while it costs up to this much more than fits
AUDIO_COST = 48_000  # bit/s of an Opus voice with FEC, when not measured yet

HIGH, LOW, OFF = "high", "low", "off"


@dataclass
class VideoSlot:
    """One video slot as the selection sees it: the bit rates of the layers it could carry now (None:
    that layer is not published)."""

    name: str
    high: float | None
    low: float | None


def allocate(
    budget: float | None,
    audio: float,
    slots: list[VideoSlot],
    low_only: bool = False,
    keep: dict[str, str] | None = None,
) -> dict[str, str]:
    """Each video slot's layer (high, low or off) within `budget` bit/s, `audio` bit/s going first.
    `slots` in priority order. No budget: all high. `low_only` (data saver): the low layer where one exists.
    `keep`: the layers slots carry now, which keep them while they cost up to KEEP_SLACK more than they
    fit (measured rates wobble: a slot must not flap off and on with them)."""
    choice: dict[str, str] = {}
    if low_only:
        return {s.name: LOW if s.low is not None else HIGH for s in slots}
    if budget is None:
        return {s.name: HIGH if s.high is not None else LOW for s in slots}
    keep = keep or {}

    def fits(name: str, layer: str, price: float, left: float) -> bool:
        return price <= left * (KEEP_SLACK if keep.get(name) == layer else 1.0)

    left = budget - audio
    for slot in slots:  # first every slot at its cheapest layer, in priority order
        cheapest, layer = (slot.low, LOW) if slot.low is not None else (slot.high, HIGH)
        if cheapest is not None and fits(slot.name, layer, cheapest, left):
            choice[slot.name] = layer
            left -= cheapest
        else:
            choice[slot.name] = OFF
    for slot in slots:  # then upgrades, in the same order
        if (
            choice[slot.name] == LOW
            and slot.high is not None
            and slot.low is not None
            and fits(slot.name, HIGH, slot.high - slot.low, left)
        ):
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
    delivered: float | None = None  # what the receiver got, bit/s, from its reports (None: no reports)
    sent_packets: int = 0  # video packets sent since the last tick (those a receiver asks for again)
    resent: int = 0  # packets sent again since the last tick (the receiver's NACKs): a browser's report
    #                  counts a packet repaired in time as received, so loss hides there
    remb: float | None = None  # the subscriber's latest REMB, bit/s


@dataclass
class LinkControl:
    """The layer selection of one subscriber over time."""

    budget: float | None = None  # None: the link carries everything (high layers)
    clean_ticks: int = 0  # ticks in a row with loss under LOSS_CLEAN
    calm_ticks: int = 0  # ticks in a row without congestion
    congested_ticks: int = 0  # ticks in a row with congestion
    backoff: float = BACKOFF_MIN
    last_change: float = 0.0
    last_upgrade: float | None = None
    hold_until: float = 0.0  # reports until then still describe the layers before the last decrease
    loss: float = 0.0  # over the last window, for reports
    _window: list[tuple[int, int]] = field(default_factory=list)
    # since the clean streak began: (lost, expected) from the reports, (resent, sent) video packets
    _streak: tuple[int, int, int, int] = (0, 0, 0, 0)

    def update(self, now: float, report: LinkReport, audio: float, slots: list[VideoSlot]) -> None:
        if now < self.hold_until:
            if report.expected:
                self.loss = report.lost / report.expected
            return
        self._window = (self._window + [(report.lost, report.expected)])[-2:]
        lost = sum(w[0] for w in self._window)
        expected = sum(w[1] for w in self._window)
        loss = lost / expected if expected >= MIN_PACKETS else None
        if loss is not None:
            self.loss = max(0.0, min(1.0, loss))
        latest = report.lost / report.expected if report.expected >= MIN_PACKETS else 0.0
        # (the window, or a tick so bad that waiting for the next one would only cost the audio)
        congested = (loss is not None and loss > LOSS_HIGH) or latest > 2 * LOSS_HIGH
        # (a tick counts towards a pause only if its own reports are congested too, not just the window)
        self.congested_ticks = self.congested_ticks + 1 if congested and latest > LOSS_HIGH else 0
        # From the high layers one congested tick is enough (going low costs little); pausing video
        # takes two in a row: measured with Chromium, the first reports after a cut-over still show
        # the overload.
        on_highs = any(
            layer == HIGH and slot.low is not None
            for slot, layer in zip(slots, allocate(self.budget, audio, slots).values())
        )
        if congested and (on_highs or self.congested_ticks >= 2):
            through = (
                report.delivered
                if report.delivered is not None
                else report.sent_bitrate * (1 - max(loss or 0.0, latest))
            )
            self._congested(now, through * MARGIN, audio, slots)
            return
        self.calm_ticks += 1
        # Clean: the loss over the whole streak stays under LOSS_CLEAN, over CLEAN_PACKETS at least. A
        # tick or two of a 5 % link can look clean by chance (seen with Chromium: a try to the high
        # layer on a 300 kbit/s link cost 0.8 s of sound); hundreds of packets cannot. 200 were still too
        # few: with aiortc's reports (repaired packets count as received) a 5 % link looked clean for 200
        # packets in about one run of three, and the failed try cost 0.3-0.5 s of sound; 400 (about 5 s on the
        # low layers) has not yet, and a healed link is back on the high layers as soon (10-11 s).
        lost, expected, resent, sent = (
            a + b for a, b in zip(self._streak, (report.lost, report.expected, report.resent, report.sent_packets))
        )
        if (expected >= MIN_PACKETS and lost >= LOSS_CLEAN * expected) or (
            sent >= MIN_PACKETS and resent >= LOSS_CLEAN * sent
        ):
            self.clean_ticks, self._streak = 0, (0, 0, 0, 0)
        else:
            self.clean_ticks, self._streak = self.clean_ticks + 1, (lost, expected, resent, sent)
        clean = self.clean_ticks >= CLEAN_TICKS and self._streak[1] + self._streak[3] >= CLEAN_PACKETS
        if self.last_upgrade is not None and now - self.last_upgrade > 3 * PROBATION:
            self.backoff, self.last_upgrade = BACKOFF_MIN, None  # the last try held: tries may come soon again
            if self.budget is not None and all(c == HIGH for c in allocate(self.budget, audio, slots).values()):
                self.budget = None  # everything fits again: no cap that a busier slide could trip over
        if self.budget is None or now - self.last_change < self.backoff:
            return
        raised = next_budget(self.budget, audio, slots)
        if raised is None:
            return
        # A clean link may try any upgrade; a calm but lossy one (a weak mobile link) only a small
        # step, such as un-pausing a low layer: a try that overflows it would cost the audio.
        step = raised - (audio + cost(allocate(self.budget, audio, slots), slots))
        small = step <= max(SMALL_STEP_SHARE * report.sent_bitrate, SMALL_STEP)
        if clean or (self.calm_ticks >= CALM_TICKS and small):
            self.budget, self.last_change, self.last_upgrade = raised, now, now
            self.clean_ticks = self.calm_ticks = 0
            self._streak = (0, 0, 0, 0)
            self._window = []

    def _congested(self, now: float, through: float, audio: float, slots: list[VideoSlot]) -> None:
        """Lower the budget: from high layers, to the low layers only (what the reports of an overload say
        got through is no estimate: it mixes time windows, retransmissions and queues draining); from
        the low layers, to what got through, which pauses the video that does not fit. A clean link
        climbs back by tries."""
        if self.last_upgrade is not None and now - self.last_upgrade <= PROBATION:
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)  # the try failed: wait longer next time
        self.last_upgrade = None
        current = allocate(self.budget, audio, slots)
        if any(layer == HIGH and slot.low is not None for slot, layer in zip(slots, current.values())):
            through = (audio + cost(allocate(None, audio, slots, low_only=True), slots)) * RUNG_HEADROOM  # next rung
        if self.budget is None or through < self.budget:
            self.budget = through
        self.last_change = now
        self.hold_until = now + HOLD
        self.clean_ticks = self.calm_ticks = self.congested_ticks = 0
        self._streak = (0, 0, 0, 0)
        self._window = []  # judge the new layers on their own packets
