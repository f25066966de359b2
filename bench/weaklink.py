"""The weak-link scenario (`liveclass bench --weak-link [MINUTES]`, issue 13): a class in which some
students are on impaired links.

One `liveclass serve` process (SQLite), one teacher publishing the two-layer media of layered.py
(camera 640x360 30 fps + camera_low 320x180 15 fps, screen 1280x720 15 fps + screen_low 640x360 5 fps,
pre-encoded VP8, and a 32 kbit/s Opus voice), N students subscribing through the real protocol, W of
them each through its own BadLink (badlink.py, in their worker process).

1. Everyone admitted and receiving; the weak students' relays are not impaired yet. A warm-up, then a
   measured window: the BASELINE (every link clean, the same peers, the same relays).
2. The W relays are impaired at once (WEAK: 300 kbit/s down with a 200 ms queue, 5 % loss and 100 ms
   each way); the time until each weak student's camera and screen arrive at their low layers (by the
   size of the frames), and until the server's you:link lists the camera as `reduced`.
3. A warm-up, then a second window of the same length: WEAK.

Per window and per group (weak / clean): the teacher's camera and screen frames per second (mean, min),
the layer they arrive on (by frame size, and the server's you:link `reduced`), the lost audio (runs of
missing RTP sequence numbers: the longest, and the share of packets), the data received per minute
(RTP payload + DATAGRAM_OVERHEAD per packet, and the server's own count, you:link data_bytes); the
server process's CPU and the CPU seconds of its layer selection (its /metrics counter, read before and
after the window) as a share of it.

Decoding 45 students' video in Python would take this 2-core machine from the server, so only a sample
decodes (aiortc receivers read by layered.TrackMeter: decoded fps, frame sizes): every weak student and
`decode` clean ones. The other clean students count RTP without decoding (peers.CountingSubscriber's
ReceiverTap, no decoder thread): their frames per second are complete frames (marker bit seen), their
layer is the size in the VP8 keyframes they receive. The report says which is which (`decoded`).

Worker processes run `python -m bench.worker weak-teacher|weak-students` (the actors below).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import statistics
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import aiohttp

from bench.peers import SlotCounter, now
from media.probes import vp8_keyframe_size

if TYPE_CHECKING:  # (imported where used: a worker process loads only its own side's modules)
    from aiortc import RTCPeerConnection

    from bench.badlink import BadLink
    from bench.client import Participant
    from bench.layered import LayeredSource, Meter
    from bench.peers import CountingSubscriber
    from bench.runner import ServerProcess, Worker

log = logging.getLogger("bench.weaklink")

WEAK = {"rate": 300_000, "loss": 0.05, "delay_ms": 100, "queue_ms": 200}  # the student's downlink
WEAK_UP = {**WEAK, "rate": None}  # their uplink: the loss and the delay, no rate limit
CLEAN = {"rate": None, "loss": 0.0, "delay_ms": 0, "queue_ms": 200}
#: Bytes a received RTP packet carries besides its payload: RTP header 12 (+ ~8 of header extensions),
#: SRTP auth tag 10, UDP 8, IPv4 20. What "data per minute" adds to the payload bytes counted.
DATAGRAM_OVERHEAD = 58
VIDEO_SLOTS = ("teacher_camera", "screen")
AUDIO_SLOT = "teacher_audio"
SAMPLE_EVERY = 0.5  # seconds between two samples of each slot's layer in a window
SELECTION_METRIC = "liveclass_media_layer_selection_cpu_seconds_total"


# ------------------------------------------------------------------------------------------ helpers
def audio_loss(sequences: list[tuple[float, int]], start: float, end: float, packet_time: float = 0.02) -> dict:
    """Lost audio between `start` and `end` from the RTP sequence numbers that arrived ((arrival,
    seq) pairs, in arrival order): the longest run of missing packets (seconds of sound, each packet
    `packet_time` long) and the share of packets missing between the first and the last that came."""
    extended, top = [], None  # top: (extended, raw) of the highest sequence number so far
    for at, seq in sequences:  # unwrapped in arrival order (a window may cross 65535 -> 0)
        value = seq if top is None else top[0] + (seq - top[1] + 0x8000) % 0x10000 - 0x8000
        if top is None or value > top[0]:
            top = (value, seq)
        if start <= at < end:
            extended.append(value)
    seen = sorted(set(extended))
    if len(seen) < 2:
        return {"longest_lost_s": None, "lost_pct": None, "expected": len(seen)}
    expected = seen[-1] - seen[0] + 1
    longest = max(b - a - 1 for a, b in itertools.pairwise(seen))
    return {
        "longest_lost_s": round(longest * packet_time, 3),
        "lost_pct": round(100 * (expected - len(seen)) / expected, 2),
        "expected": expected,
    }


def selection_seconds(metrics_text: str) -> float | None:
    """The layer selection's CPU seconds from a /metrics page."""
    match = re.search(r"^" + SELECTION_METRIC + r" (\S+)$", metrics_text, re.MULTILINE)
    return float(match.group(1)) if match else None


#: A forward jump of the sequence numbers at least this long is the server's cut-over (forwarder.Slot
#: CUT_SKIP = 600 numbers left out on purpose), not loss.
JUMP = 500


async def _close_quietly(*things) -> None:
    """Close each (a peer connection, a person's HTTP client) within 5 s; a failure must not stop the teardown."""
    for thing in things:
        if thing is not None:
            try:
                await asyncio.wait_for(thing.close(), 5)
            except Exception:  # noqa: BLE001
                pass


class LinkCounter(SlotCounter):
    """A counting (never decoding) slot that also keeps the audio's sequence numbers, the size of
    the latest VP8 keyframe (the layer of a student who does not decode), and for video the numbers
    it really missed: the span of sequence numbers received, less the cut-over jumps, less the
    packets received (retransmissions, unwrapped by the ReceiverTap, fill holes)."""

    __slots__ = ("sequences", "key_size", "top", "span", "jumped", "jumps")

    def __init__(self, slot: str, kind: str) -> None:
        super().__init__(slot, kind)
        self.sequences: deque = deque(maxlen=50 * 600)  # (arrival, seq): ten minutes of 20 ms packets
        self.key_size: tuple[int, int] | None = None
        self.top: int | None = None  # the highest sequence number so far (16 bits)
        self.span = 0  # sequence numbers from the first to the highest
        self.jumped = 0  # numbers left out by cut-over jumps
        self.jumps = 0

    def on_packet(self, packet: Any) -> None:
        super().on_packet(packet)
        seq = packet.sequence_number
        if self.kind == "audio":
            self.sequences.append((now(), seq))
            return
        size = vp8_keyframe_size(packet.payload)
        if size is not None:
            self.key_size = size
        if self.top is None:
            self.top, self.span = seq, 1
            return
        delta = (seq - self.top + 0x8000) % 0x10000 - 0x8000
        if delta > 0:
            if delta >= JUMP:
                self.jumps += 1
                self.jumped += delta - 1
            self.top = seq
            self.span += delta

    def missed(self) -> tuple[int, int, int]:
        """(expected without the jumps, received, jumps) so far."""
        return self.span - self.jumped, self.packets, self.jumps


# -------------------------------------------------------------------------------------- worker side
class WeakTeacher:
    """The teacher worker (role weak-teacher): starts the period, enters, publishes the LayeredSource."""

    def __init__(self) -> None:
        self.person: Participant | None = None
        self.pc: RTCPeerConnection | None = None
        self.source: LayeredSource | None = None
        self.session_id: int | None = None

    def _person(self) -> Participant:
        """The teacher, logged in (by cmd_init)."""
        assert self.person is not None, "cmd_init first"
        return self.person

    async def cmd_init(self, base_url: str, personal_id: str, password: str, period_id: int) -> dict:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from bench.client import Participant
        from bench.layered import LAYERS, LayeredSource, encoded_loop
        from bench.peers import CONFIG

        started = time.monotonic()
        for name in LAYERS:  # encoded once (a few seconds), not in the event loop
            await asyncio.to_thread(encoded_loop, name)
        encoding = time.monotonic() - started
        self.person = person = Participant(base_url, personal_id, password)
        await person.login()
        self.session_id = session_id = (await person.start_period(period_id))["id"]
        await person.connect(session_id)
        await person.wait_for("room:state")
        self.pc = pc = RTCPeerConnection(CONFIG)
        self.source = source = LayeredSource()
        source.add_to(pc)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await person.call("rtc:publish", {"sdp": pc.localDescription.sdp, "tracks": source.announce()})
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await person.call("media:state", {"camera": True, "microphone": True, "screen": True})
        return {"session_id": self.session_id, "encoding_s": round(encoding, 1)}

    async def cmd_wait_lobby(self, count: int, within: float = 60) -> dict:
        data = await self._person().wait_for("lobby:updated", lambda d: len(d["lobby"]) >= count, within)
        return {"lobby": len(data["lobby"])}

    async def cmd_admit_all(self) -> dict:
        return {"admitted": len((await self._person().call("lobby:admit", {"all": True})).get("admitted", []))}

    async def cmd_stats(self) -> dict:
        return self.source.stats() if self.source else {}

    async def close(self) -> None:
        if self.source is not None:
            self.source.stop()
        await _close_quietly(self.pc, self.person)


class LinkStudent:
    """One student: in through the lobby, subscribed; through its own BadLink if `weak`; decoding
    (layered.Meter) if `decode`, counting (peers.CountingSubscriber + LinkCounter) otherwise."""

    def __init__(self, index: int, base_url: str, account: dict) -> None:
        from bench.client import Participant

        self.index, self.weak, self.decode = index, bool(account["weak"]), bool(account["decode"])
        self.person = Participant(base_url, account["personal_id"], account["password"])
        self.link: BadLink | None = None
        self.pc: RTCPeerConnection | None = None
        self.meter: Meter | None = None  # (decode)
        self.counter: CountingSubscriber | None = None  # (no decode)
        self.links: list[tuple[float, dict]] = []  # (arrival, you:link)
        self.receivers: dict[str, Any] = {}  # slot -> aiortc RTCRtpReceiver
        self.task: asyncio.Task | None = None
        self.error: str | None = None

    async def enter(self, session_id: int) -> None:
        self.person.on("lobby:admitted", self._admitted)
        self.person.on("you:link", lambda data: self.links.append((now(), data)))
        await self.person.connect(session_id)
        await self.person.wait_for("lobby:waiting")

    def _admitted(self, data: Any) -> None:
        if self.task is None:
            self.task = asyncio.ensure_future(self._subscribe())

    async def _subscribe(self) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from bench.badlink import BadLink, rewrite_candidates, strip_candidates
        from bench.layered import Meter
        from bench.peers import CONFIG, CountingSubscriber

        person = self.person
        try:
            await person.wait_for("room:state")
            mark = person.mark()
            await person.call("rtc:subscribe")
            offer = await person.wait_for("rtc:offer", after=mark)
            sdp = offer["sdp"]
            if self.weak:
                self.link = link = BadLink()
                sdp = rewrite_candidates(sdp, link)
            if self.decode:
                self.pc = pc = RTCPeerConnection(CONFIG)
                self.meter = Meter(pc, {s["mid"]: s["slot"] for s in offer["slots"]})
                await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                answer = pc.localDescription.sdp
            else:
                self.counter = counter = CountingSubscriber(counter=LinkCounter)
                self.pc = pc = counter.pc
                answer = await counter.answer(sdp, offer["slots"])
            slot_of_mid = {s["mid"]: s["slot"] for s in offer["slots"]}
            self.receivers = {slot_of_mid[t.mid]: t.receiver for t in pc.getTransceivers() if t.mid in slot_of_mid}
            await person.call("rtc:answer", {"sdp": strip_candidates(answer) if self.weak else answer})
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("student %s: subscribe failed", self.index)

    # -- what it receives
    def frames(self, slot: str) -> int:
        if self.meter is not None:
            meter = self.meter.tracks.get(slot)
            return meter.frames if meter else 0
        counter = self.counter.counters.get(slot) if self.counter else None
        return counter.frames if counter else 0

    def rtp(self, slot: str) -> tuple[int, int]:
        """(payload bytes, packets) received on the slot so far."""
        if self.meter is not None:
            meter = self.meter.tracks.get(slot)
            return (meter.rtp_bytes, meter.rtp_packets) if meter else (0, 0)
        counter = self.counter.counters.get(slot) if self.counter else None
        return (counter.bytes, counter.packets) if counter else (0, 0)

    def layer(self, slot: str) -> str | None:
        """The layer the slot is on now: the size of the latest decoded frame, or (not decoding) of
        the latest keyframe received (a layer switch starts with a keyframe)."""
        from bench.layered import LAYER_OF_SIZE

        if self.meter is not None:
            meter = self.meter.tracks.get(slot)
            size = meter.sizes[-1][1] if meter and meter.sizes else None
        else:
            counter = self.counter.counters.get(slot) if self.counter else None
            size = counter.key_size if isinstance(counter, LinkCounter) else None  # (every counter is one)
        if size is None:
            return None
        source = "screen" if "screen" in slot else "camera"
        return LAYER_OF_SIZE.get((source, size), "%dx%d" % size)

    def rtp_loss(self, slot: str) -> tuple[int, int]:
        """(expected, lost) on the slot's media SSRCs so far, as its receiver counts them for its RTCP
        receiver reports (retransmissions repair; RTX streams not counted)."""
        receiver = self.receivers.get(slot)
        if receiver is None:
            return 0, 0
        rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
        streams = [
            stats
            for ssrc, stats in getattr(receiver, "_RTCRtpReceiver__remote_streams", {}).items()
            if ssrc not in rtx and stats.max_seq is not None
        ]
        if self.counter is not None:  # a ReceiverTap: its media SSRC only
            counter = self.counter.counters.get(slot)
            return counter.tap.loss() if counter and counter.tap else (0, 0)
        return sum(s.packets_expected for s in streams), sum(s.packets_lost for s in streams)

    def missed(self, slot: str) -> tuple[int, int, int]:
        """A counting student's (expected without cut-over jumps, received, jumps) on a video slot."""
        counter = self.counter.counters.get(slot) if self.counter else None
        return counter.missed() if isinstance(counter, LinkCounter) else (0, 0, 0)

    def sequences(self) -> list[tuple[float, int]]:
        if self.meter is not None:
            meter = self.meter.tracks.get(AUDIO_SLOT)
            return list(meter.sequences) if meter else []
        counter = self.counter.counters.get(AUDIO_SLOT) if self.counter else None
        return list(counter.sequences) if isinstance(counter, LinkCounter) else []  # (every counter is one)

    def receiving(self) -> bool:
        return all(self.frames(slot) > 0 and self.layer(slot) for slot in VIDEO_SLOTS) and bool(self.sequences())

    def on_low(self) -> bool:
        return self.layer("teacher_camera") == "camera_low" and self.layer("screen") == "screen_low"

    def relay_down(self) -> dict | None:
        """The relay's counters towards the student (forwarded, lost at random, dropped by the queue)."""
        return vars(self.link.down.counters).copy() if self.link else None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.meter is not None:
            await self.meter.close()
        await _close_quietly(self.pc, self.person)
        if self.link is not None:
            self.link.close()


class WeakStudents:
    """A students worker (role weak-students): a few LinkStudents."""

    def __init__(self) -> None:
        self.students: list[LinkStudent] = []

    async def cmd_init(self, base_url: str, accounts: list[dict]) -> dict:
        self.students = [LinkStudent(i, base_url, a) for i, a in enumerate(accounts)]
        await asyncio.gather(*(s.person.login() for s in self.students))
        return {"students": len(self.students)}

    async def cmd_enter(self, session_id: int) -> dict:
        await asyncio.gather(*(s.enter(session_id) for s in self.students))
        return {"entered": len(self.students)}

    async def cmd_wait_media(self, within: float = 60) -> dict:
        """Until every student receives the camera, the screen (a layer known) and the voice."""
        deadline = now() + within
        while now() < deadline and not all(s.receiving() or s.error for s in self.students):
            await asyncio.sleep(0.1)
        return {"missing": [{"index": s.index, "error": s.error} for s in self.students if not s.receiving()]}

    async def cmd_impair(self) -> dict:
        """Every weak student's link at WEAK at once."""
        t = now()
        for s in self.students:
            if s.link is not None:
                s.link.down.set(**WEAK)
                s.link.up.set(**WEAK_UP)
        return {"t": t}

    async def cmd_wait_low(self, since: float, within: float) -> dict:
        """Per weak student: seconds from `since` until its camera and screen both arrive at the low
        layer (by frame size), and until a you:link lists teacher_camera as reduced (None: not within)."""
        weak = [s for s in self.students if s.weak]
        to_low: dict[int, float | None] = {s.index: None for s in weak}
        deadline = since + within
        while now() < deadline and any(v is None for v in to_low.values()):
            for s in weak:
                if to_low[s.index] is None and s.on_low():
                    to_low[s.index] = now() - since
            await asyncio.sleep(0.1)
        await asyncio.sleep(max(0.0, min(deadline - now(), 6.0)))  # a you:link comes every 5 s at most
        reduced = {
            s.index: next((t - since for t, d in s.links if t >= since and "teacher_camera" in d["reduced"]), None)
            for s in weak
        }
        return {
            "students": [
                {"index": s.index, "to_low_layers_s": to_low[s.index], "to_you_link_reduced_s": reduced[s.index]}
                for s in weak
            ]
        }

    async def cmd_window(self, start: float, end: float) -> dict:
        """What each student received from `start` to `end`."""
        delay = start - now()
        if delay > 0:
            await asyncio.sleep(delay)
        slots = (*VIDEO_SLOTS, AUDIO_SLOT)
        before = [
            {slot: (s.frames(slot), *s.rtp(slot), *s.rtp_loss(slot), *s.missed(slot)) for slot in slots}
            for s in self.students
        ]
        relay_before = [s.relay_down() for s in self.students]
        t0 = now()
        samples: list[dict[str, Counter[str | None]]] = [
            {slot: Counter() for slot in VIDEO_SLOTS} for _ in self.students
        ]
        while now() < end:
            for s, sample in zip(self.students, samples):
                for slot in VIDEO_SLOTS:
                    sample[slot][s.layer(slot)] += 1
            await asyncio.sleep(min(SAMPLE_EVERY, max(0.0, end - now())))
        t1 = now()
        seconds = t1 - t0
        out = []
        for s, b, sample, relay0 in zip(self.students, before, samples, relay_before):
            got: dict[str, Any] = {"index": s.index, "weak": s.weak, "decoded": s.decode, "error": s.error}
            bytes_total = 0
            for slot in slots:
                frames, payload, packets, expected, lost, span, got_packets, jumps = (
                    a - z for a, z in zip((s.frames(slot), *s.rtp(slot), *s.rtp_loss(slot), *s.missed(slot)), b[slot])
                )
                bytes_total += payload + DATAGRAM_OVERHEAD * packets
                entry: dict[str, Any] = {
                    "fps": round(frames / seconds, 2),
                    "payload_bytes": payload,
                    "packets": packets,
                    "rr_expected": expected,
                    "rr_lost": lost,
                }
                if s.counter is not None and slot in VIDEO_SLOTS:  # what was really missed (jumps aside)
                    entry.update(seq_expected=span, seq_received=got_packets, cut_over_jumps=jumps)
                if slot in VIDEO_SLOTS:
                    layer, n = sample[slot].most_common(1)[0] if sample[slot] else (None, 0)
                    entry["layer"] = layer
                    entry["layer_share"] = round(n / sum(sample[slot].values()), 3) if n else 0.0
                got[slot] = entry
            got["audio"] = audio_loss(s.sequences(), t0, t1)
            got["received_mb_per_min"] = round(bytes_total / seconds * 60 / 1e6, 3)
            relay1 = s.relay_down()
            got["relay_down_mb_per_min"] = None
            if relay1 is not None and relay0 is not None:  # (both or neither: the student's link)
                delta = {k: relay1[k] - relay0[k] for k in relay1}
                offered = delta["forwarded_packets"] + delta["lost_packets"] + delta["queue_dropped_packets"]
                got["relay_down_mb_per_min"] = round(delta["forwarded_bytes"] / seconds * 60 / 1e6, 3)
                got["relay_down"] = {
                    "offered_packets": offered,
                    "lost_pct": round(100 * delta["lost_packets"] / offered, 2) if offered else None,
                    "queue_dropped_pct": round(100 * delta["queue_dropped_packets"] / offered, 2) if offered else None,
                }
            events = [(t, d) for t, d in s.links if t0 <= t <= t1]
            before_start = [(t, d) for t, d in s.links if t < t0][-1:]
            got["you_link"] = _you_link(events, before_start + events)
            out.append(got)
        return {"seconds": seconds, "students": out}

    async def cmd_timeline(self, since: float) -> dict:
        """Every you:link each student received, from `since` on: (seconds, quality, video, loss)."""
        return {
            "students": [
                {
                    "index": s.index,
                    "weak": s.weak,
                    "you_link": [
                        (round(t - since, 1), d["quality"], d["video"], d["loss"]) for t, d in s.links if t >= since
                    ],
                }
                for s in self.students
            ]
        }

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.students), return_exceptions=True)


def _you_link(events: list[tuple[float, dict]], counted: list[tuple[float, dict]]) -> dict:
    """What the server's you:link said during a window (`events`): the share of reports listing the
    camera (and the screen) as reduced, the last report's quality and video; and the data it counted
    per minute, from the first to the last of `counted` (the window's reports and the one before it)."""
    if not events:
        return {"reports": 0}
    last = events[-1][1]
    rate = None
    if len(counted) >= 2 and counted[-1][0] > counted[0][0]:
        rate = (counted[-1][1]["data_bytes"] - counted[0][1]["data_bytes"]) / (counted[-1][0] - counted[0][0])
    return {
        "reports": len(events),
        "camera_reduced_share": round(sum("teacher_camera" in d["reduced"] for _, d in events) / len(events), 3),
        "screen_reduced_share": round(sum("screen" in d["reduced"] for _, d in events) / len(events), 3),
        "paused_reports": sum(bool(d.get("paused")) for _, d in events),
        "last": {k: last.get(k) for k in ("quality", "video", "reduced", "paused", "loss", "rtt_ms")},
        "data_mb_per_min": round(rate * 60 / 1e6, 3) if rate is not None else None,
    }


# -------------------------------------------------------------------------------------- conductor
class WeakLinkScenario:
    """See the module docstring. `minutes`: each measured window; `students`, `weak`: class size and
    how many are on impaired links; `decode`: clean students that decode (besides every weak one)."""

    def __init__(
        self, opts, minutes: float, students: int, weak: int, decode: int, warmup: float | None = None
    ) -> None:
        self.opts = opts
        self.window = max(3.0, 60.0 * minutes)
        self.n, self.n_weak = students, min(weak, students)
        self.n_decode_clean = min(decode, students - self.n_weak)
        self.warmup = warmup if warmup is not None else (min(15.0, max(2.0, self.window / 4)))
        self.name = f"weak-link-{students}"
        self.dir = opts.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.server: ServerProcess | None = None
        self.teacher: Worker | None = None
        self.workers: list[Worker] = []
        self.base_url = ""
        self.result: dict[str, Any] = {
            "name": self.name,
            "students": students,
            "weak_students": self.n_weak,
            "window_s": self.window,
            "warmup_s": self.warmup,
            "weak_link": {"down": WEAK, "up": WEAK_UP},
            "decoding": {
                "weak": self.n_weak,
                "clean": self.n_decode_clean,
                "clean_counting_rtp_only": students - self.n_weak - self.n_decode_clean,
            },
            "teacher": "layered.LayeredSource: camera 640x360 30 fps ~1 Mbit/s + camera_low 320x180 15 fps "
            "~120 kbit/s, screen 1280x720 15 fps + screen_low 640x360 5 fps ~60 kbit/s (pre-encoded "
            "VP8), Opus voice 32 kbit/s",
            "datagram_overhead_bytes": DATAGRAM_OVERHEAD,
        }

    def say(self, text: str) -> None:
        self.opts.progress(f"[{self.name}] {text}")

    def _server(self) -> ServerProcess:
        """The server (set by _run)."""
        assert self.server is not None, "the server first"
        return self.server

    def _teacher(self) -> Worker:
        """The teacher's worker (set by _run)."""
        assert self.teacher is not None, "the teacher's worker first"
        return self.teacher

    async def run(self) -> dict:
        try:
            await self._run()
        finally:
            await self._teardown()
        return self.result

    async def _run(self) -> None:
        from bench.runner import Worker, seed, start_liveclass

        opts = self.opts
        accounts = await seed(self.dir / "data", self.n)
        self.server, self.base_url = await start_liveclass(self.dir / "data", self.dir / "server.log")
        # weak students first, then the clean ones that decode, then the counting ones; dealt round-robin
        # over the worker processes so that each has its share of decoders and relays
        specs = [
            {**a, "weak": i < self.n_weak, "decode": i < self.n_weak + self.n_decode_clean}
            for i, a in enumerate(accounts["students"])
        ]
        processes = max(1, math.ceil(self.n / opts.per_process))
        chunks = [specs[k::processes] for k in range(processes)]
        started = await asyncio.gather(
            Worker.start("weak-teacher", "teacher", self.dir / "teacher.log"),
            *(Worker.start("weak-students", f"students-{k}", self.dir / f"students-{k}.log") for k in range(processes)),
            return_exceptions=True,
        )
        first = started[0]
        self.teacher = first if not isinstance(first, BaseException) else None
        self.workers = [w for w in started[1:] if not isinstance(w, BaseException)]
        failed = [e for e in started if isinstance(e, BaseException)]
        if failed:
            raise failed[0]
        self.say(
            f"{self.n} students ({self.n_weak} on weak links; decoding: {self.n_weak} weak + "
            f"{self.n_decode_clean} clean) in {processes} processes; the teacher pre-encodes its layers"
        )
        teacher = accounts["teacher"]
        entered = await self._teacher().call(
            "init",
            base_url=self.base_url,
            personal_id=teacher["personal_id"],
            password=teacher["password"],
            period_id=accounts["period_id"],
            timeout=180,
        )
        self.result["teacher_encoding_s"] = entered["encoding_s"]
        session_id = entered["session_id"]
        await asyncio.gather(
            *(w.call("init", base_url=self.base_url, accounts=chunk) for w, chunk in zip(self.workers, chunks))
        )
        await asyncio.gather(*(w.call("enter", session_id=session_id) for w in self.workers))
        await self._teacher().call("wait_lobby", count=self.n, within=60, timeout=70)
        admitted = now()
        await self._teacher().call("admit_all")
        waited = await asyncio.gather(*(w.call("wait_media", within=90, timeout=100) for w in self.workers))
        missing = [m for r in waited for m in r["missing"]]
        if missing:
            raise RuntimeError(f"{len(missing)} students receive no camera, screen or voice: {missing[:3]}")
        self.say(
            f"everyone receives; warm-up {self.warmup:g} s, then the baseline ({self.window:g} s, every link clean)"
        )
        await asyncio.sleep(self.warmup)
        self.result["baseline"] = await self._measure("baseline")
        impaired = await asyncio.gather(*(w.call("impair") for w in self.workers))
        since = min(r["t"] for r in impaired)
        self.say(f"{self.n_weak} links impaired (300 kbit/s, 5 % loss, 100 ms each way)")
        lows = await asyncio.gather(*(w.call("wait_low", since=since, within=30.0, timeout=60) for w in self.workers))
        switched = [s for r in lows for s in r["students"]]
        to_low = [s["to_low_layers_s"] for s in switched]
        to_reduced = [s["to_you_link_reduced_s"] for s in switched]
        self.result["switch"] = {
            "to_low_layers_s": _spread([t for t in to_low if t is not None]),
            "not_on_low_within_30_s": sum(t is None for t in to_low),
            "to_you_link_reduced_s": _spread([t for t in to_reduced if t is not None]),
            "no_reduced_you_link_within_30_s": sum(t is None for t in to_reduced),
        }
        self.say(
            f"on the low layers after {self.result['switch']['to_low_layers_s']} s; warm-up, then the "
            f"weak window ({self.window:g} s)"
        )
        await asyncio.sleep(max(0.0, self.warmup - (now() - since)))
        self.result["weak"] = await self._measure("weak")
        self.result["ratios"] = _ratios(self.result["baseline"], self.result["weak"])
        self.result["teacher_sent"] = await self._teacher().call("stats")
        timelines = await asyncio.gather(*(w.call("timeline", since=admitted) for w in self.workers))
        self.result["you_link_timeline"] = {
            "since": "the teacher's lobby:admit",
            "students": sorted(
                (s for t in timelines for s in t["students"]), key=lambda s: (not s["weak"], s["index"])
            ),
        }
        self.result["video_paused_s_after_admit"] = _paused_spans(self.result["you_link_timeline"]["students"])

    async def _measure(self, label: str) -> dict:
        from bench.runner import measure_cpu

        start = now() + 0.5
        end = start + self.window
        async with aiohttp.ClientSession() as http:

            async def metrics() -> float | None:
                async with http.get(self.base_url + "/metrics") as r:
                    return selection_seconds(await r.text())

            async def cpu_and_selection() -> tuple[dict, float | None, float | None]:
                await asyncio.sleep(max(0.0, start - 0.3 - now()))
                s0 = await metrics()
                cpu = await measure_cpu(self._server(), [self._teacher(), *self.workers], start, end)
                return cpu, s0, await metrics()

            (cpu, s0, s1), *windows = await asyncio.gather(
                cpu_and_selection(),
                *(w.call("window", start=start, end=end, timeout=self.window + 60) for w in self.workers),
            )
        students = sorted((s for w in windows for s in w["students"]), key=lambda s: (not s["weak"], s["index"]))
        server_cpu_s = cpu["server_core_fraction"] * cpu["seconds"]
        selection = (s1 - s0) if s0 is not None and s1 is not None else None
        result: dict[str, Any] = {
            "server": {
                "cpu_pct": round(100 * cpu["server_core_fraction"], 1),
                "selection_cpu_s": round(selection, 3) if selection is not None else None,
                "selection_share_of_server_cpu_pct": round(100 * selection / server_cpu_s, 3)
                if selection is not None and server_cpu_s > 0
                else None,
                "selection_cpu_pct_of_core": round(100 * selection / cpu["seconds"], 3)
                if selection is not None
                else None,
                "rss_mb": round(cpu["rss"] / 1e6, 1),
            },
            "machine_load": {
                "clients_cpu_pct": round(100 * cpu["clients_core_fraction"], 1),
                "machine_busy_cores": round(cpu["machine_busy_cores"], 2),
                "other_processes_busy_cores": round(
                    max(0.0, cpu["machine_busy_cores"] - cpu["server_core_fraction"] - cpu["clients_core_fraction"]), 2
                ),
            },
            "groups": {
                "weak": _group([s for s in students if s["weak"]]),
                "clean": _group([s for s in students if not s["weak"]]),
            },
            "students": students,
        }
        weak, clean = result["groups"]["weak"], result["groups"]["clean"]
        self.say(
            f"{label}: server {result['server']['cpu_pct']} % of a core, selection "
            f"{result['server']['selection_share_of_server_cpu_pct']} % of it; camera fps weak "
            f"{weak.get('camera_fps', {}).get('mean')} on {weak.get('camera_layer')}, clean "
            f"{clean.get('camera_fps', {}).get('mean')} on {clean.get('camera_layer')}"
        )
        return result

    async def _teardown(self) -> None:
        await asyncio.gather(
            *(w.close() for w in [self.teacher, *self.workers] if w is not None), return_exceptions=True
        )
        if self.server is not None:
            await self.server.stop()


def _paused_spans(students: list[dict]) -> dict:
    """Per group, how many students' you:link said video "paused" at some point, and when first."""
    out = {}
    for group in ("weak", "clean"):
        firsts = [
            next((t for t, _, video, _ in s["you_link"] if video == "paused"), None)
            for s in students
            if s["weak"] == (group == "weak")
        ]
        out[group] = {
            "students_ever_paused": sum(f is not None for f in firsts),
            "first_paused_s": _spread([f for f in firsts if f is not None]),
        }
    return out


def _spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def _share(pairs: list[tuple[int, int]]) -> float | None:
    """100 x the sum of the firsts over the sum of the seconds."""
    total = sum(b for _, b in pairs)
    return round(100 * sum(a for a, _ in pairs) / total, 2) if total > 0 else None


def _mean_min(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "mean": None, "min": None}
    return {"n": len(values), "mean": round(statistics.fmean(values), 2), "min": round(min(values), 2)}


def _group(students: list[dict]) -> dict:
    """One group's numbers in a window. fps and layers: decoding students only when there are any
    (their fps is decoded frames; a counting student's is complete frames received)."""
    if not students:
        return {"students": 0}
    decoded = [s for s in students if s["decoded"]] or students

    def layers(slot: str) -> dict:
        return dict(Counter(s[slot]["layer"] for s in students))

    audio = [s["audio"] for s in students if s["audio"]["lost_pct"] is not None]
    links = [s["you_link"] for s in students if s["you_link"].get("reports")]
    server_rate = [link["data_mb_per_min"] for link in links if link.get("data_mb_per_min") is not None]
    relay = [s["relay_down_mb_per_min"] for s in students if s["relay_down_mb_per_min"] is not None]
    drops = [
        s["relay_down"]["queue_dropped_pct"]
        for s in students
        if (s.get("relay_down") or {}).get("queue_dropped_pct") is not None
    ]
    camera_layers, screen_layers = layers("teacher_camera"), layers("screen")
    return {
        "students": len(students),
        "decoding": sum(s["decoded"] for s in students),
        "fps_from": "decoded" if decoded[0]["decoded"] else "complete frames received (not decoded)",
        "camera_fps": _mean_min([s["teacher_camera"]["fps"] for s in decoded]),
        "screen_fps": _mean_min([s["screen"]["fps"] for s in decoded]),
        "camera_fps_received_all": _mean_min([s["teacher_camera"]["fps"] for s in students]),
        "camera_layers": camera_layers,
        "screen_layers": screen_layers,
        "camera_layer": max(camera_layers, key=camera_layers.__getitem__, default=None),
        "screen_layer": max(screen_layers, key=screen_layers.__getitem__, default=None),
        "layer_share_min": round(
            min(min(s["teacher_camera"]["layer_share"], s["screen"]["layer_share"]) for s in students), 3
        ),
        "audio_longest_lost_s": max((a["longest_lost_s"] for a in audio), default=None),
        "audio_lost_pct": _mean_min([a["lost_pct"] for a in audio])
        | {"max": max((a["lost_pct"] for a in audio), default=None)},
        "received_mb_per_min": _mean_min([s["received_mb_per_min"] for s in students]),
        "relay_down_mb_per_min": _mean_min(relay) if relay else None,
        "relay_queue_dropped_pct_mean": round(statistics.fmean(drops), 2) if drops else None,
        "server_data_mb_per_min": _mean_min(server_rate),
        "you_link_camera_reduced_share": round(statistics.fmean(link["camera_reduced_share"] for link in links), 3)
        if links
        else None,
        "you_link_screen_reduced_share": round(statistics.fmean(link["screen_reduced_share"] for link in links), 3)
        if links
        else None,
        "you_link_paused_reports": sum(link["paused_reports"] for link in links),
        # the receivers' own count, as their RTCP receiver reports carry it (cut-over jumps included)
        "video_rr_lost_pct": _share(
            [(s[slot]["rr_lost"], s[slot]["rr_expected"]) for s in students for slot in VIDEO_SLOTS]
        ),
        # counting students: the video packets really missed, the server's cut-over jumps left aside
        "video_missed_pct": _share(
            [
                (s[slot]["seq_expected"] - s[slot]["seq_received"], s[slot]["seq_expected"])
                for s in students
                for slot in VIDEO_SLOTS
                if "seq_expected" in s[slot]
            ]
        ),
        "cut_over_jumps": sum(s[slot].get("cut_over_jumps", 0) for s in students for slot in VIDEO_SLOTS),
        "you_link_quality": dict(Counter(link["last"]["quality"] for link in links)),
        "errors": [s["error"] for s in students if s.get("error")][:3],
    }


def _ratios(baseline: dict, weak: dict) -> dict:
    """Weak window over baseline window, measured in one run (the machine is noisy)."""

    def ratio(a, b):
        return round(b / a, 3) if a and b is not None else None

    out = {
        "server_cpu": ratio(baseline["server"]["cpu_pct"], weak["server"]["cpu_pct"]),
        "selection_cpu": ratio(baseline["server"]["selection_cpu_s"], weak["server"]["selection_cpu_s"]),
    }
    for group in ("weak", "clean"):
        b, w = baseline["groups"][group], weak["groups"][group]
        if not b.get("students"):
            continue
        out[group] = {
            "camera_fps": ratio(b["camera_fps"]["mean"], w["camera_fps"]["mean"]),
            "screen_fps": ratio(b["screen_fps"]["mean"], w["screen_fps"]["mean"]),
            "received_mb_per_min": ratio(b["received_mb_per_min"]["mean"], w["received_mb_per_min"]["mean"]),
        }
    return out


def report(result: dict) -> str:
    """The scenario's text table (one line per window and group)."""
    from bench.report import _fmt, markdown_table

    if not result.get("weak"):
        return f"weak links: failed ({result.get('error')})"
    head = [
        "window",
        "group",
        "students (decoding)",
        "camera fps mean/min",
        "screen fps mean/min",
        "camera / screen layer",
        "you:link camera reduced",
        "audio lost: longest s / mean %",
        "MB/min received",
        "MB/min server count",
    ]
    lines = []
    for label in ("baseline", "weak"):
        for name, g in result[label]["groups"].items():
            if not g.get("students"):
                continue
            lines.append(
                [
                    label,
                    name,
                    f"{g['students']} ({g['decoding']})",
                    f"{_fmt(g['camera_fps']['mean'], 1)} / {_fmt(g['camera_fps']['min'], 1)}",
                    f"{_fmt(g['screen_fps']['mean'], 1)} / {_fmt(g['screen_fps']['min'], 1)}",
                    f"{g['camera_layer']} / {g['screen_layer']}",
                    _fmt(g["you_link_camera_reduced_share"], 2),
                    f"{_fmt(g['audio_longest_lost_s'], 2)} / {_fmt(g['audio_lost_pct']['mean'], 2)}",
                    _fmt(g["received_mb_per_min"]["mean"], 2),
                    _fmt(g["server_data_mb_per_min"]["mean"], 2),
                ]
            )
    server = [
        "",
        "server: "
        + "; ".join(
            f"{label} {result[label]['server']['cpu_pct']} % of a core, layer selection "
            f"{result[label]['server']['selection_cpu_s']} s = "
            f"{result[label]['server']['selection_share_of_server_cpu_pct']} % of it "
            f"(machine {result[label]['machine_load']['machine_busy_cores']} cores busy, clients "
            f"{result[label]['machine_load']['clients_cpu_pct']} %)"
            for label in ("baseline", "weak")
        ),
    ]
    relay = "; ".join(
        f"{label} {_fmt(result[label]['groups']['weak'].get('relay_queue_dropped_pct_mean'), 2)} %"
        for label in ("baseline", "weak")
    )
    server.append(
        f"weak group's relays, datagrams to the student dropped by the rate queue (besides the 5 % "
        f"random loss): {relay}"
    )
    switch = result["switch"]
    return "\n".join(
        [
            f"weak links ({result['students']} students, {result['weak_students']} on 300 kbit/s, 5 % loss, 100 ms "
            f"each way; windows of {result['window_s']:g} s):",
            markdown_table(head, lines),
            *server,
            f"switch: on camera_low + screen_low after median {switch['to_low_layers_s']['median']} s, max "
            f"{switch['to_low_layers_s']['max']} s ({switch['not_on_low_within_30_s']} not within 30 s); you:link "
            f"reduced after median {switch['to_you_link_reduced_s']['median']} s",
            f"ratios weak/baseline: {result['ratios']}",
        ]
    )
