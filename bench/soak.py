"""The soak (`liveclass bench --soak MINUTES`, or `python -m bench.soak MINUTES`): one class
with churn for MINUTES minutes, the server sampled all along, and its records checked at the end.

A script, run by hand for its half hour (docs/benchmarks.md has its command and results); the suite
runs it for 0.3 minutes (tests/test_bench.py), to prove it still runs and checks. What it does:

1. A real `liveclass serve` (SQLite in a fresh temporary data directory, a free loopback port), seeded
   with a teacher, STUDENTS students and a period running now (runner.seed / start_liveclass).
2. The teacher (the bench's worker.Teacher, in this process) starts the period, enters, and publishes a
   camera (pre-encoded VP8 frames replayed at 30 fps, ~1 Mbit/s) and a microphone (an Opus tone).
   The students (client.Participant, Socket.IO only) log in and wait in the lobby; the teacher admits
   them. MEDIA of them also receive the teacher's media with the bench's counting subscriber, and the
   first of those publishes a microphone too. Every client runs in this process.
3. For MINUTES minutes, a schedule drawn from a fixed random seed (each student and the teacher have
   their own generator):
   - each student, after 60-240 s in the room, does one of: drop (the transport closed without
     leaving) and resume with the resume token after 5-40 s (back without the lobby); drop and come
     back after 65-90 s, past the 60 s grace period (through the lobby again); leave (`room:leave`)
     and join again after 5-30 s (through the lobby). At most MAX_CHURN each, and only when it can
     be back well before the end;
   - while in the room, each student chats every 20-70 s (the limit is 5 per 10 s) and raises a hand
     every 60-180 s, lowered 5-30 s later by the student or, one time in three, by the teacher;
   - the teacher admits whoever waits in the lobby 1-4 s after they arrive, chats every 20-45 s,
     records for 90-240 s then pauses 45-120 s (rec:start / rec:stop), and switches the camera off
     for 5-20 s every 3-7 minutes.
   Every SAMPLE seconds: the server process's RSS, open file descriptors, threads, TCP and UDP
   sockets, CPU (psutil), and its event loop's tasks, rooms, participants and media slots (GET
   /metrics). Also: idle (before anyone joins), settled (everyone in, before the churn), settled
   again after it, and after the period ended.
4. At the end: every student back in the room, the recording stopped, the period ended over HTTP,
   the clients closed, the server stopped with SIGTERM. Then the SQLite store is read: every chat
   message acknowledged `ok` is in chat_messages; every admission acknowledged is a lobby_admitted
   record (per account); every hand raised or lowered with an ok, every leave, is a record; the
   recordings made are the recording_saved records, their folders the rows of `recordings`, and
   every listed file exists with its size and checksum; every attendance interval is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
import types
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import aiohttp
import psutil
import socketio

from bench.client import Participant, ProtocolError
from bench.peers import CountingSubscriber, Publisher, now
from bench.runner import PASSWORD, PRIORITY, ServerProcess, busy_cores, machine, remove_workdir, seed, start_liveclass
from bench.worker import Teacher

GRACE_S = 60.0  # the server's default LIVECLASS_RECONNECT_GRACE_SECONDS (not changed here)

# The schedule (seconds). Each student: IN_ROOM between two churn actions, then one of ACTIONS.
IN_ROOM = (60.0, 240.0)
ACTIONS = {
    "drop_resume": ((5.0, 40.0), 0.5),  # offline for, weight
    "drop_past_grace": ((65.0, 90.0), 0.2),
    "leave_rejoin": ((5.0, 30.0), 0.3),
}
MAX_CHURN = 12  # churn actions per student at most
CHAT_GAP = (20.0, 70.0)
HAND_GAP = (60.0, 180.0)
HAND_UP = (5.0, 30.0)
TEACHER_LOWERS = 1 / 3
ADMIT_DELAY = (1.0, 4.0)
TEACHER_CHAT_GAP = (20.0, 45.0)
RECORD_FIRST = (20.0, 40.0)
RECORD_ON = (90.0, 240.0)
RECORD_OFF = (45.0, 120.0)
CAMERA_GAP = (180.0, 420.0)
CAMERA_OFF = (5.0, 20.0)
BACK_BY = 30.0  # a churn action starts only if it is over (admission included) this long before the end
QUIET = 5.0  # chat and hands stop this long before the end

# Flat: the last 5 minutes' mean against minutes 5-10's, within 10 % or this many units.
FLAT_RELATIVE = 0.10
FLAT_UNITS = {"rss_mb": 0.0, "fds": 5.0, "threads": 2.0, "tasks": 10.0}

NETWORK_ERRORS = (
    ProtocolError,
    aiohttp.ClientError,
    socketio.exceptions.SocketIOError,
    asyncio.TimeoutError,
    ConnectionError,
    OSError,
)


async def _sleep_until(t: float) -> None:
    delay = t - now()
    if delay > 0:
        await asyncio.sleep(delay)


async def _first_event(person: Participant, names: tuple[str, ...], after: int, timeout: float) -> tuple[str, Any]:
    """The first of `names` to arrive after the mark `after`."""

    async def found():
        async with person._changed:
            while True:
                for name, data in person.received[after:]:
                    if name in names:
                        return name, data
                await person._changed.wait()

    return await asyncio.wait_for(found(), timeout)


def _coroutine_name(task: asyncio.Task) -> str:
    """The name of the coroutine function a task runs."""
    coro = task.get_coro()
    return coro.__qualname__ if isinstance(coro, types.CoroutineType) else repr(coro)


async def _close_quietly(thing: Any) -> None:
    if thing is not None:
        try:
            await asyncio.wait_for(thing.close(), 5)
        except Exception:  # noqa: BLE001 - closing what may be dead already
            pass


@dataclass
class SoakOptions:
    minutes: float = 30.0
    students: int = 20
    media: int = 3  # students who also receive the teacher's media (the first also publishes a microphone)
    seed: int = 20260
    sample: float = 10.0  # seconds between two samples
    workdir: Path = Path(".")
    progress: Callable[[str], None] = print


# ------------------------------------------------------------------------------------- the people
class SoakTeacher:
    """The bench's Teacher (worker.py) driven from here: admits, chats, records, switches the camera."""

    def __init__(self, soak: "Soak") -> None:
        self.soak = soak
        self.rng = random.Random(f"{soak.opts.seed}-teacher")
        self.teacher = Teacher()
        self.lobby: list[dict] = []
        self.recording = False
        self.recordings: list[dict] = []  # each recording made: started / stopped (soak seconds), ack times

    @property
    def person(self) -> Participant:
        person = self.teacher.person
        assert person is not None, "start() first"
        return person

    async def start(self, base_url: str, account: dict, period_id: int) -> int:
        started = await self.teacher.cmd_start(base_url, account["personal_id"], PASSWORD, period_id)
        self.person.on("lobby:updated", self._lobby)
        await self.teacher.cmd_enter(subscribe=False, camera="replay")
        return started["session_id"]

    def _lobby(self, data: Any) -> None:
        self.lobby = list(data.get("lobby", []))

    async def admit_loop(self) -> None:
        """Whoever waits is admitted ADMIT_DELAY s later (by participant id), until the soak closes."""
        soak = self.soak
        while not soak.closing:
            if not self.lobby:
                await asyncio.sleep(0.25)
                continue
            await asyncio.sleep(self.rng.uniform(*ADMIT_DELAY))
            entries = list(self.lobby)
            if not entries:
                continue
            who = {e["participant_id"]: e.get("personal_id") for e in entries}
            try:
                answer = await self.person.ask("lobby:admit", {"participant_ids": list(who)}, timeout=30)
            except NETWORK_ERRORS as exc:
                soak.problem(f"teacher: lobby:admit unanswered: {type(exc).__name__}: {exc}")
                continue
            if answer.get("ok"):
                for pid in answer["data"]["admitted"]:
                    soak.counts["admissions_acknowledged"] += 1
                    soak.expect[who.get(pid)]["admitted"] += 1
            else:  # e.g. not_in_lobby: someone left meanwhile; the next lobby:updated says who waits now
                soak.counts[f"lobby:admit refused ({answer['error']['code']})"] += 1
                await asyncio.sleep(0.5)

    async def chat_loop(self, end: float) -> None:
        k = 0
        while True:
            at = now() + self.rng.uniform(*TEACHER_CHAT_GAP)
            if at >= end:
                return
            await _sleep_until(at)
            k += 1
            await self.soak.chat(self.person, f"Cô nhắc lần {k}: các em chú ý bài 3", "teacher")

    async def record(self, action: str) -> None:
        soak = self.soak
        t = now()
        try:
            answer = await self.person.ask("rec:" + action, timeout=120)
        except NETWORK_ERRORS as exc:
            soak.problem(f"teacher: rec:{action} unanswered: {type(exc).__name__}: {exc}")
            return
        seconds = now() - t
        if not answer.get("ok"):
            soak.problem(f"teacher: rec:{action} refused: {answer.get('error')}")
            return
        state = (answer.get("data") or {}).get("state")
        if action == "start" and not self.recording and state == "recording":
            self.recording = True
            soak.counts["recordings_started"] += 1
            self.recordings.append({"started_s": round(t - soak.t0, 1), "start_ack_ms": round(1000 * seconds, 1)})
        elif action == "stop" and self.recording and state == "off":
            self.recording = False
            soak.counts["recordings_stopped"] += 1
            self.recordings[-1].update({"stopped_s": round(t - soak.t0, 1), "stop_ack_ms": round(1000 * seconds, 1)})
        else:
            soak.problem(f"teacher: rec:{action} answered state {state!r} (recording: {self.recording})")

    async def recording_loop(self, end: float) -> None:
        await asyncio.sleep(self.rng.uniform(*RECORD_FIRST))
        while now() + 30 < end:
            await self.record("start")
            await asyncio.sleep(max(0.0, min(self.rng.uniform(*RECORD_ON), end - 10 - now())))
            await self.record("stop")
            await asyncio.sleep(max(0.0, min(self.rng.uniform(*RECORD_OFF), end - now())))

    async def camera_loop(self, end: float) -> None:
        while True:
            off_at = now() + self.rng.uniform(*CAMERA_GAP)
            off_for = self.rng.uniform(*CAMERA_OFF)
            if off_at + off_for + 10 >= end:
                return
            await _sleep_until(off_at)
            for camera in (False, True):
                try:
                    answer = await self.person.ask("media:state", {"camera": camera}, timeout=30)
                    if not answer.get("ok"):
                        self.soak.problem(f"teacher: media:state camera={camera} refused: {answer.get('error')}")
                except NETWORK_ERRORS as exc:
                    self.soak.problem(f"teacher: media:state unanswered: {type(exc).__name__}: {exc}")
                if not camera:
                    await asyncio.sleep(off_for)
            self.soak.counts["teacher_camera_off_on"] += 1

    async def lower_hand(self, participant_id: str) -> list[str]:
        answer = await self.person.ask("hand:lower", {"participant_id": participant_id}, timeout=30)
        if not answer.get("ok"):
            raise ProtocolError(f"hand:lower: {answer.get('error')}")
        return list(answer["data"]["lowered"])

    async def close(self) -> None:
        await self.teacher.close()


class SoakStudent:
    """One student's life: in the room (chat, hands), then a churn action, and again."""

    def __init__(self, soak: "Soak", index: int, account: dict, media: bool, microphone: bool) -> None:
        self.soak, self.index = soak, index
        self.personal_id = account["personal_id"]
        self.churn_rng = random.Random(f"{soak.opts.seed}-student-{index}-churn")
        self.rng = random.Random(f"{soak.opts.seed}-student-{index}-activity")
        self.person = Participant(soak.base_url, self.personal_id, PASSWORD)
        self.media, self.microphone = media, microphone
        self.state = "out"  # out | lobby | room
        self.hand = False
        self.subscriber: CountingSubscriber | None = None
        self.publisher: Publisher | None = None
        self.frames_closed = 0  # teacher camera frames counted by subscribers already closed
        self.subscriptions = 0
        self.next_chat = self.next_hand = 0.0
        self.chats = 0
        self.failed: str | None = None

    def say(self, text: str) -> None:
        self.soak.problem(f"student {self.index}: {text}")

    # -- in and out
    async def enter(self, resume: bool) -> str:
        """Connect (with the seat's resume token if `resume`) until in the room; 'room:state' if it
        came back without the lobby, 'lobby:waiting' if it was admitted from the lobby."""
        soak = self.soak
        session_id = soak.session_id
        assert session_id is not None, "the teacher started the session first"
        for attempt in range(1, 7):
            await self.person._drop_socket()
            mark = self.person.mark()
            try:
                await self.person.connect(session_id, resume=resume)
                first, _ = await _first_event(self.person, ("room:state", "lobby:waiting"), mark, 20)
                if first == "lobby:waiting":
                    self.state = "lobby"
                    soak.counts["lobby_entries"] += 1
                    await self.person.wait_for("room:state", after=mark, timeout=120)
                self.state = "room"
                break
            except NETWORK_ERRORS as exc:
                soak.counts["connect_attempts_failed"] += 1
                self.say(
                    f"connect attempt {attempt} failed: {type(exc).__name__}: {exc} "
                    f"(refusals so far {dict(self.person.refusals)})"
                )
                self.state = "out"
                await asyncio.sleep(2.0 * attempt)
        else:
            raise RuntimeError("could not get into the room")
        if self.media:
            await self.start_media()
        return first

    async def start_media(self) -> None:
        """Subscribe (the teacher's camera and audio), then publish a microphone if this one does."""
        person = self.person
        self.subscriber = CountingSubscriber()
        mark = person.mark()
        await person.call("rtc:subscribe")
        offer = await person.wait_for("rtc:offer", after=mark)
        await person.call("rtc:answer", {"sdp": await self.subscriber.answer(offer["sdp"], offer["slots"])})
        self.subscriptions += 1
        self.soak.counts["media_subscriptions"] += 1
        if self.microphone:
            self.publisher = Publisher(camera=None, microphone=True)
            sdp, tracks = await self.publisher.offer()
            answer = await person.call("rtc:publish", {"sdp": sdp, "tracks": tracks})
            await self.publisher.accept(answer["sdp"])
            await person.call("media:state", {"microphone": True})
            self.soak.counts["media_publications"] += 1

    async def stop_media(self) -> None:
        if self.subscriber is not None:
            self.frames_closed += self._frames(self.subscriber)
        subscriber, publisher = self.subscriber, self.publisher
        self.subscriber = self.publisher = None
        await _close_quietly(subscriber)
        await _close_quietly(publisher)

    @staticmethod
    def _frames(subscriber: CountingSubscriber) -> int:
        counter = subscriber.counters.get("teacher_camera")
        return counter.frames if counter is not None else 0

    def frames(self) -> int:
        return self.frames_closed + (self._frames(self.subscriber) if self.subscriber is not None else 0)

    async def drop(self) -> None:
        """The connection closed without leaving: the seat is kept for the grace period."""
        await self.person._drop_socket()
        self.state = "out"
        self.soak.expect[self.personal_id]["dropped"] += 1
        await self.stop_media()

    # -- churn actions
    async def drop_resume(self, offline: float) -> None:
        await self.drop()
        await asyncio.sleep(offline)
        how = await self.enter(resume=True)
        if how == "room:state":
            self.soak.counts["drop_resume"] += 1
            self.soak.expect[self.personal_id]["reconnected"] += 1
        else:
            self.soak.counts["drop_resume_through_lobby (unexpected)"] += 1
            self.soak.expect[self.personal_id]["grace_expired"] += 1
            self.say(f"came back after {offline:.0f} s with the resume token but went through the lobby")

    async def drop_past_grace(self, offline: float) -> None:
        await self.drop()
        await asyncio.sleep(offline)
        how = await self.enter(resume=True)  # the old token: no seat any more, a new arrival
        if how == "lobby:waiting":
            self.soak.counts["drop_past_grace"] += 1
            self.soak.expect[self.personal_id]["grace_expired"] += 1
        else:
            self.soak.counts["drop_past_grace_resumed (unexpected)"] += 1
            self.soak.expect[self.personal_id]["reconnected"] += 1
            self.say(f"came back after {offline:.0f} s, past the grace period, without the lobby")

    async def leave_rejoin(self, offline: float) -> None:
        answer = await self.person.ask("room:leave", timeout=30)
        if not answer.get("ok"):
            raise ProtocolError(f"room:leave: {answer.get('error')}")
        self.soak.expect[self.personal_id]["left"] += 1
        self.state = "out"
        await self.stop_media()
        await asyncio.sleep(1.5)  # the server closes the connection about a second after room:left
        await self.person._drop_socket()
        await asyncio.sleep(max(0.0, offline - 1.5))
        how = await self.enter(resume=False)
        self.soak.counts["leave_rejoin"] += 1
        if how != "lobby:waiting":
            self.say("joined again after leaving without the lobby")

    # -- in the room
    async def chat(self) -> None:
        self.chats += 1
        await self.soak.chat(self.person, f"Em {self.index + 1} hỏi câu {self.chats}", "students")

    async def raise_hand(self) -> None:
        answer = await self.person.ask("hand:raise", timeout=30)
        if answer.get("ok"):
            self.hand = True
            self.soak.counts["hands_raised"] += 1
            self.soak.expect[self.personal_id]["hand_raised"] += 1
        else:
            self.soak.counts[f"hand:raise refused ({answer['error']['code']})"] += 1

    async def lower_hand(self, by_teacher: bool = False) -> None:
        if by_teacher:
            teacher, participant_id = self.soak.teacher, self.person.participant_id
            assert teacher is not None and participant_id is not None  # (in the room, the teacher too)
            lowered = await teacher.lower_hand(participant_id)
        else:
            answer = await self.person.ask("hand:lower", timeout=30)
            if not answer.get("ok"):
                self.soak.counts[f"hand:lower refused ({answer['error']['code']})"] += 1
                return
            lowered = answer["data"]["lowered"]
        self.hand = False
        if lowered:
            self.soak.counts["hands_lowered_by_teacher" if by_teacher else "hands_lowered_by_student"] += len(lowered)
            self.soak.expect[self.personal_id]["hand_lowered"] += len(lowered)
        else:
            self.say("a raised hand was not lowered (nothing to lower)")

    async def activity(self, until: float) -> None:
        """Chat and hands until `until` (each on its own clock, kept across stretches)."""
        while True:
            t = min(self.next_chat, self.next_hand)
            if t >= until:
                await _sleep_until(until)
                return
            await _sleep_until(t)
            try:
                if t == self.next_chat:
                    self.next_chat = now() + self.rng.uniform(*CHAT_GAP)
                    await self.chat()
                elif self.hand:
                    self.next_hand = now() + self.rng.uniform(*HAND_GAP)
                    await self.lower_hand(by_teacher=self.rng.random() < TEACHER_LOWERS)
                else:
                    self.next_hand = now() + self.rng.uniform(*HAND_UP)
                    await self.raise_hand()
            except NETWORK_ERRORS as exc:
                self.soak.counts["requests_unanswered"] += 1
                self.say(f"request failed in the room: {type(exc).__name__}: {exc}")

    async def life(self) -> None:
        soak = self.soak
        self.next_chat = now() + self.rng.uniform(0, CHAT_GAP[1])
        self.next_hand = now() + self.rng.uniform(0, HAND_GAP[1])
        churns = 0
        try:
            while True:
                stretch_end = now() + self.churn_rng.uniform(*IN_ROOM)
                names = list(ACTIONS)
                action = self.churn_rng.choices(names, [ACTIONS[n][1] for n in names])[0]
                offline = self.churn_rng.uniform(*ACTIONS[action][0])
                if churns >= MAX_CHURN or stretch_end + offline + max(ADMIT_DELAY) + 10 > soak.churn_end:
                    await self.activity(soak.activity_end)
                    break
                await self.activity(stretch_end)
                if self.hand:
                    await self.lower_hand()
                await getattr(self, action)(offline)
                churns += 1
            if self.hand:
                await self.lower_hand()
        except Exception as exc:  # noqa: BLE001 - reported; the others go on
            self.failed = f"{type(exc).__name__}: {exc}"
            self.say(f"FAILED: {self.failed}\n{traceback.format_exc(limit=4)}")

    async def close(self) -> None:
        await self.stop_media()
        await self.person.close()


# --------------------------------------------------------------------------------------- the soak
class Soak:
    def __init__(self, opts: SoakOptions) -> None:
        self.opts = opts
        self.dir = opts.workdir
        self.data_dir = self.dir / "data"
        self.server: ServerProcess | None = None
        self.base_url = ""
        self.session_id: int | None = None
        self.period_id: int | None = None
        self.teacher: SoakTeacher | None = None
        self.students: list[SoakStudent] = []
        self.http: aiohttp.ClientSession | None = None
        self.counts: Counter = Counter()
        self.expect: dict[str | None, Counter] = defaultdict(Counter)  # personal id -> kind -> acknowledged
        self.chat_ids: dict[str, set[str]] = {"teacher": set(), "students": set()}
        self.chat_ack_ms: list[float] = []
        self.problems: list[str] = []
        self.samples: list[dict] = []
        self.marks: dict[str, dict] = {}
        self.closing = False
        self.t0 = now()
        self.churn_end = self.activity_end = self.end = 0.0
        self._me = psutil.Process()
        self._last_cpu: tuple[float, float, float, Any] | None = None

    def say(self, text: str) -> None:
        self.opts.progress(text)

    def problem(self, text: str) -> None:
        self.counts["problems"] += 1
        if len(self.problems) < 200:
            self.problems.append(f"{now() - self.t0:7.1f}s {text}")
        self.say(f"  ! {text.splitlines()[0]}")

    async def chat(self, person: Participant, text: str, who: str) -> None:
        t = now()
        try:
            answer = await person.ask("chat:send", {"text": text}, timeout=15)
        except NETWORK_ERRORS as exc:
            self.counts[f"chat_{who}_unanswered"] += 1
            self.problem(f"{who}: chat:send unanswered: {type(exc).__name__}: {exc}")
            return
        if answer.get("ok"):
            self.chat_ids[who].add(answer["data"]["message_id"])
            self.chat_ack_ms.append(1000 * (now() - t))
            self.counts[f"chat_{who}_ok"] += 1
        else:
            self.counts[f"chat_{who}_refused ({answer['error']['code']})"] += 1

    # -- measuring
    async def sample(self, label: str | None = None) -> dict:
        assert self.server is not None, "the server first"
        proc = self.server.process
        t = now()
        with proc.oneshot():
            times = proc.cpu_times()
            cpu = times.user + times.system
            rss, fds, threads = proc.memory_info().rss, proc.num_fds(), proc.num_threads()
        tcp: int | None
        udp: int | None
        try:
            tcp = len(proc.net_connections(kind="tcp"))
            udp = len(proc.net_connections(kind="udp"))
        except psutil.Error:
            tcp = udp = None
        kinds = fd_kinds(proc.pid)
        me = self._me.cpu_times()
        machine_times = psutil.cpu_times()
        metrics = await self._metrics()
        s = {
            "t": round(t - self.t0, 1),
            "minute": round((t - self.t0) / 60, 2),
            **({"label": label} if label else {}),
            "rss_mb": round(rss / 1e6, 1),
            "fds": fds,
            "threads": threads,
            "tcp": tcp,
            "udp": udp,
            "fd_kinds": kinds,
            "cpu_s": round(cpu, 2),
            **metrics,
            "students_in_room": sum(s.state == "room" for s in self.students),
            "students_in_lobby": sum(s.state == "lobby" for s in self.students),
            "media_frames": sum(s.frames() for s in self.students),
        }
        if self._last_cpu is not None and label is None:
            t0, cpu0, me0, m0 = self._last_cpu
            span = t - t0
            s["cpu_pct"] = round(100 * (cpu - cpu0) / span, 1)
            s["soak_clients_cpu_pct"] = round(100 * (me.user + me.system - me0) / span, 1)
            s["machine_busy_cores"] = round(_busy(machine_times, m0) / span, 2)
        if label is None:
            self._last_cpu = (t, cpu, me.user + me.system, machine_times)
        return s

    async def _metrics(self) -> dict:
        assert self.http is not None, "the server first"
        try:
            async with self.http.get(self.base_url + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as r:
                text = await r.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.problem(f"GET /metrics failed: {type(exc).__name__}: {exc}")
            return {"tasks": None}
        return parse_metrics(text)

    async def sampler(self) -> None:
        k = 0
        while True:
            at = self.t0 + k * self.opts.sample
            if at > self.end + 0.5:
                return
            await _sleep_until(at)
            s = await self.sample()
            self.samples.append(s)
            if k and round(s["t"]) % 60 == 0 or at + self.opts.sample > self.end + 0.5:
                self.say(
                    f"minute {s['minute']:5.1f}: RSS {s['rss_mb']} MB, fds {s['fds']}, threads {s['threads']}, "
                    f"tasks {s['tasks']}, udp {s['udp']}, server CPU {s.get('cpu_pct')} %, machine "
                    f"{s.get('machine_busy_cores')} cores busy; in room {s['students_in_room']}, lobby "
                    f"{s['students_in_lobby']}; chat ok "
                    f"{self.counts['chat_students_ok'] + self.counts['chat_teacher_ok']}, "
                    f"problems {self.counts['problems']}"
                )
            k += 1

    # -- the run
    async def run(self) -> dict:
        opts = self.opts
        result: dict[str, Any] = {
            "tool": "liveclass bench --soak",
            "format": 1,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "options": {
                "minutes": opts.minutes,
                "students": opts.students,
                "media_students": opts.media,
                "microphone_students": 1 if opts.media else 0,
                "seed": opts.seed,
                "sample_s": opts.sample,
                "grace_s": GRACE_S,
                "server_nice": PRIORITY["nice"],
                "store": "sqlite",
                "schedule_s": {
                    "in_room": IN_ROOM,
                    "actions": {k: {"offline": v[0], "weight": v[1]} for k, v in ACTIONS.items()},
                    "max_churn_per_student": MAX_CHURN,
                    "chat_gap": CHAT_GAP,
                    "hand_gap": HAND_GAP,
                    "hand_up": HAND_UP,
                    "teacher_lowers": TEACHER_LOWERS,
                    "admit_delay": ADMIT_DELAY,
                    "teacher_chat_gap": TEACHER_CHAT_GAP,
                    "record_on": RECORD_ON,
                    "record_off": RECORD_OFF,
                    "camera_gap": CAMERA_GAP,
                    "camera_off": CAMERA_OFF,
                },
            },
        }
        result["machine"]["busy_cores_before_start"] = await busy_cores(2.0)
        started = time.monotonic()
        try:
            await self._run(result)
        finally:
            await self._teardown(result)
        result["duration_s"] = round(time.monotonic() - started, 1)
        result["churn"] = dict(sorted(self.counts.items()))
        result["problems"] = self.problems
        result["failed_students"] = {s.index: s.failed for s in self.students if s.failed}
        return result

    async def _run(self, result: dict) -> None:
        opts = self.opts
        self.say(
            f"soak: a teacher and {opts.students} students ({opts.media} receiving media) for "
            f"{opts.minutes:g} minutes, seed {opts.seed}"
        )
        accounts = await seed(self.data_dir, opts.students)
        self.period_id = accounts["period_id"]
        self.server, self.base_url = await start_liveclass(self.data_dir, self.dir / "server.log")
        self.http = aiohttp.ClientSession()
        await asyncio.sleep(2)
        self.marks["idle"] = await self.sample("idle")
        # the class: the teacher in, then everyone through the lobby
        self.teacher = SoakTeacher(self)
        self.session_id = await self.teacher.start(self.base_url, accounts["teacher"], self.period_id)
        self.students = [
            SoakStudent(self, i, a, media=i < opts.media, microphone=i == 0) for i, a in enumerate(accounts["students"])
        ]
        await asyncio.gather(*(s.person.login() for s in self.students))
        admitting = asyncio.ensure_future(self.teacher.admit_loop())
        try:
            await asyncio.gather(*(s.enter(resume=False) for s in self.students))
            self.say(f"everyone in the room ({self.counts['admissions_acknowledged']} admitted)")
            await asyncio.sleep(20)  # (the HTTP keep-alive connections of the logins and joins close)
            self.marks["settled_start"] = await self.sample("settled_start")
            # the churn
            self.t0 = now()
            self.end = self.t0 + 60 * opts.minutes
            self.activity_end = self.end - QUIET
            self.churn_end = self.end - BACK_BY
            self._last_cpu = None
            sampling = asyncio.ensure_future(self.sampler())
            lives = [asyncio.ensure_future(s.life()) for s in self.students]
            teacher_loops = [
                asyncio.ensure_future(loop(self.activity_end))
                for loop in (self.teacher.chat_loop, self.teacher.recording_loop, self.teacher.camera_loop)
            ]
            await sampling
            self.say("the end of the schedule: waiting for everyone to be back in the room")
            done, pending = await asyncio.wait([*lives, *teacher_loops], timeout=150)
            for task in pending:
                self.problem(f"still busy 150 s after the end ({_coroutine_name(task)}): cancelled")
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    self.problem(f"teacher loop failed: {task.exception()!r}")
            if self.teacher.recording:
                await self.teacher.record("stop")
            self.closing = True
        finally:
            self.closing = True
            admitting.cancel()
        await asyncio.sleep(15)
        self.marks["settled_end"] = await self.sample("settled_end")
        # the end: the period over HTTP, then the clients, then the server
        mark = self.teacher.person.mark()
        ended = await self.teacher.person.request("POST", f"/periods/{self.period_id}/end")
        result["period_end"] = {"ended_at": ended.get("ended_at")}
        try:
            await self.teacher.person.wait_for("room:ended", after=mark, timeout=15)
            result["period_end"]["teacher_told"] = True
        except asyncio.TimeoutError:
            self.problem("no room:ended for the teacher within 15 s of POST /periods/{id}/end")
        result["period_end"]["students_told"] = sum(
            any(name == "room:ended" for name, _ in s.person.received) for s in self.students
        )
        await self._close_clients()
        await asyncio.sleep(10)
        self.marks["after_end"] = await self.sample("after_end")
        await self._stop_server(result)
        result["media"] = self._media()
        result["samples"] = self.samples
        result["marks"] = self.marks
        result["per_minute"] = per_minute(self.samples, opts.sample)
        result["flat"] = flatness(self.samples, opts.minutes)
        result["settled"] = compare_marks(self.marks)
        result["recordings_made"] = self.teacher.recordings
        result["chat_ack_ms"] = _summary(self.chat_ack_ms)
        result["records"] = await asyncio.to_thread(
            check_records,
            self.data_dir / "liveclass.db",
            self.data_dir / "recordings",
            self.session_id,
            {k: sorted(v) for k, v in self.chat_ids.items()},
            {k: dict(v) for k, v in self.expect.items()},
            {"started": self.counts["recordings_started"], "stopped": self.counts["recordings_stopped"]},
        )
        result["server_log"] = scan_log(self.dir / "server.log")

    def _media(self) -> dict:
        """What the media students received: teacher camera frames per minute, all of them together."""
        rates = []
        for a, b in zip(self.samples, self.samples[1:]):
            if b["t"] > a["t"]:
                rates.append(round((b["media_frames"] - a["media_frames"]) * 60 / (b["t"] - a["t"])))
        return {
            "students": self.opts.media,
            "subscriptions": self.counts["media_subscriptions"],
            "teacher_camera_frames_received": sum(s.frames() for s in self.students),
            "frames_per_minute_all_media_students": _summary(rates),
            "note": "30 fps to each connected media student is 1800 frames a minute each",
        }

    async def _close_clients(self) -> None:
        await asyncio.gather(*(s.close() for s in self.students), return_exceptions=True)
        if self.teacher is not None:
            await _close_quietly(self.teacher)

    async def _stop_server(self, result: dict) -> None:
        """SIGTERM, and how long until the process exits, and its status."""
        server = self.server
        assert server is not None, "the server first"
        popen = server.popen
        t = now()
        popen.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(popen.wait, 60)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
            code = None
            self.problem("the server did not exit within 60 s of SIGTERM: killed")
            popen.kill()
            popen.wait()
        result["server_stop"] = {"signal": "SIGTERM", "exit_code": code, "seconds": round(now() - t, 2)}
        await server.stop()  # (already exited: closes its log)

    async def _teardown(self, result: dict) -> None:
        self.closing = True
        try:
            await self._close_clients()
        except Exception:  # noqa: BLE001
            pass
        if self.http is not None:
            await self.http.close()
        if self.server is not None and self.server.popen.poll() is None:
            self.server.popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.server.popen.wait, 60)
            except Exception:  # noqa: BLE001
                self.server.popen.kill()
            await self.server.stop()


# -------------------------------------------------------------------------------------- numbers
def _busy(m1, m0) -> float:
    def busy(m):
        return m.user + m.system + m.nice + getattr(m, "irq", 0) + getattr(m, "softirq", 0)

    return busy(m1) - busy(m0)


def fd_kinds(pid: int) -> dict[str, int]:
    """The process's open file descriptors by kind: socket, pipe, anon_inode:[eventfd], and files by
    their directory's last part (…/recordings/1/20260101T…: 'file:recordings', the store: 'file:liveclass.db')."""
    kinds: Counter = Counter()
    base = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(base)
    except OSError:
        return {}
    for name in names:
        try:
            target = os.readlink(base / name)
        except OSError:
            continue
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target] += 1
        elif "/recordings/" in target:
            kinds["file:recordings"] += 1
        elif target.startswith("/dev/"):
            kinds[target] += 1
        else:
            kinds["file:" + Path(target).name] += 1
    return dict(sorted(kinds.items()))


_LABELS = re.compile(r'(\w+)="([^"]*)"')


def parse_metrics(text: str) -> dict:
    """The gauges the soak watches from a /metrics page."""
    out: dict[str, Any] = {
        "tasks": None,
        "rooms": None,
        "participants": 0,
        "participants_by_state": {},
        "media_tracks": 0,
        "media_slots": 0,
    }
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        metric, _, labels = name.partition("{")
        if metric == "liveclass_asyncio_tasks":
            out["tasks"] = int(float(value))
        elif metric == "liveclass_rooms":
            out["rooms"] = int(float(value))
        elif metric == "liveclass_participants":
            state = dict(_LABELS.findall(labels)).get("state", "?")
            out["participants"] += int(float(value))
            out["participants_by_state"][state] = out["participants_by_state"].get(state, 0) + int(float(value))
        elif metric == "liveclass_media_tracks":
            out["media_tracks"] += int(float(value))
        elif metric == "liveclass_media_slots":
            out["media_slots"] += int(float(value))
    return out


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "min": round(ordered[0], 1),
        "median": round(statistics.median(ordered), 1),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max": round(ordered[-1], 1),
    }


WATCHED = ("rss_mb", "fds", "threads", "tasks", "udp", "tcp", "cpu_pct")


def per_minute(samples: list[dict], sample: float = 10.0) -> list[dict]:
    """The sample nearest each whole minute (within half a sampling interval), with the server's CPU
    over the minute before it."""
    rows, previous = [], None
    for minute in range(int(max((s["t"] for s in samples), default=0) // 60) + 2):
        near = min(samples, key=lambda s: abs(s["t"] - 60 * minute), default=None)
        if near is None or abs(near["t"] - 60 * minute) > sample / 2:
            continue
        row = {
            "minute": minute,
            **{
                k: near.get(k)
                for k in (
                    "rss_mb",
                    "fds",
                    "threads",
                    "tasks",
                    "tcp",
                    "udp",
                    "rooms",
                    "participants",
                    "media_tracks",
                    "media_slots",
                    "students_in_room",
                    "students_in_lobby",
                )
            },
        }
        if previous is not None and near["t"] > previous["t"]:
            row["cpu_pct"] = round(100 * (near["cpu_s"] - previous["cpu_s"]) / (near["t"] - previous["t"]), 1)
        rows.append(row)
        previous = near
    return rows


def _windows(minutes: float) -> tuple[tuple[float, float], tuple[float, float]]:
    if minutes >= 15:
        return (5.0, 10.0), (minutes - 5.0, minutes)
    return (minutes / 6, minutes / 3), (minutes * 5 / 6, minutes)


def flatness(samples: list[dict], minutes: float) -> dict:
    """Each watched number: its mean over the early window (minutes 5-10) against the last 5 minutes',
    flat if within FLAT_RELATIVE or FLAT_UNITS; its first, middle, last, min and max; and its trend
    (least squares over everything from the early window on, per 10 minutes)."""
    early, late = _windows(minutes)
    out: dict[str, Any] = {"early_window_min": list(early), "late_window_min": list(late)}
    for key in ("rss_mb", "fds", "threads", "tasks", "udp", "tcp", "cpu_pct"):
        series = [(s["minute"], s[key]) for s in samples if s.get(key) is not None]
        if not series:
            continue
        early_values = [v for m, v in series if early[0] <= m <= early[1]]
        late_values = [v for m, v in series if late[0] <= m <= late[1]]
        values = [v for _, v in series]
        entry: dict[str, Any] = {
            "first": values[0],
            "middle": values[len(values) // 2],
            "last": values[-1],
            "min": min(values),
            "max": max(values),
        }
        if early_values and late_values:
            em, lm = statistics.fmean(early_values), statistics.fmean(late_values)
            entry.update(
                {
                    "early_mean": round(em, 2),
                    "late_mean": round(lm, 2),
                    "change": round(lm - em, 2),
                    "change_pct": round(100 * (lm - em) / em, 1) if em else None,
                }
            )
            if key in FLAT_UNITS:
                entry["flat"] = abs(lm - em) <= max(FLAT_RELATIVE * abs(em), FLAT_UNITS[key])
        tail = [(m, v) for m, v in series if m >= early[0]]
        if len(tail) >= 3:
            entry["trend_per_10_min"] = round(10 * _slope(tail), 3)
        out[key] = entry
    out["all_flat"] = all(out[k].get("flat", True) for k in FLAT_UNITS if k in out)
    return out


def _slope(points: list[tuple[float, float]]) -> float:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def compare_marks(marks: dict[str, dict]) -> dict:
    """The same class before and after the churn (everyone in, recording off), and the server idle
    before the class against after its end."""
    out = {}
    for a, b in (("settled_start", "settled_end"), ("idle", "after_end")):
        if a in marks and b in marks:
            out[f"{a}->{b}"] = {
                k: [marks[a].get(k), marks[b].get(k)]
                for k in (
                    "rss_mb",
                    "fds",
                    "threads",
                    "tasks",
                    "tcp",
                    "udp",
                    "rooms",
                    "participants",
                    "media_tracks",
                    "media_slots",
                )
            }
    return out


# -------------------------------------------------------------------------------------- records
def check_records(
    db_path: Path,
    recordings_dir: Path,
    session_id: int,
    chat_ids: dict[str, list[str]],
    expect: dict[str | None, dict],
    recordings: dict,
) -> dict:
    """The store after the server stopped, against what was acknowledged."""
    lost: list[str] = []
    mismatches: list[str] = []
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        users = dict(db.execute("SELECT id, personal_id FROM users"))
        events: list[tuple[str, Any, Any, Any]] = [  # type, actor, target, data (free-form JSON, or None)
            (t, a, tg, json.loads(d) if d else None)
            for t, a, tg, d in db.execute(
                "SELECT type, actor_id, target_id, data FROM session_events WHERE session_id = ? ORDER BY id",
                (session_id,),
            )
        ]
        stored_chat = {row[0] for row in db.execute("SELECT id FROM chat_messages WHERE session_id = ?", (session_id,))}
        intervals = db.execute(
            "SELECT user_id, left_at, end_reason FROM attendance_intervals WHERE session_id = ?", (session_id,)
        ).fetchall()
        rows = db.execute(
            "SELECT path, size, sha256 FROM recordings WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
        ended_at = db.execute("SELECT ended_at FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
    types = Counter(t for t, *_ in events)
    # chat
    acknowledged = set(chat_ids["teacher"]) | set(chat_ids["students"])
    chat_lost = sorted(acknowledged - stored_chat)
    lost += [f"chat message {m}" for m in chat_lost]
    chat = {
        "acknowledged": len(acknowledged),
        "teacher": len(chat_ids["teacher"]),
        "students": len(chat_ids["students"]),
        "rows": len(stored_chat),
        "lost": len(chat_lost),
        "stored_without_ok": len(stored_chat - acknowledged),
    }
    # per account: what was acknowledged (or done) against the records
    stored: dict[str | None, Counter] = defaultdict(Counter)  # (None: no such user, as in `expect`)
    for t, _actor, target, data in events:
        who = users.get(target)
        kind = {
            "lobby_admitted": "admitted",
            "hand_raised": "hand_raised",
            "hand_lowered": "hand_lowered",
            "participant_dropped": "dropped",
            "participant_reconnected": "reconnected",
        }.get(t)
        if t == "participant_left":
            reason = (data or {}).get("reason")
            kind = reason if reason in ("left", "grace_expired") else None
        if kind:
            stored[who][kind] += 1
    opened = Counter(users.get(u) for u, _left, _reason in intervals)
    acked_kinds = ("admitted", "hand_raised", "hand_lowered", "left")  # answered ok: must be in the records
    per_kind: dict[str, dict] = {}
    for kind in ("admitted", "hand_raised", "hand_lowered", "left", "dropped", "reconnected", "grace_expired"):
        exp = sum(c.get(kind, 0) for c in expect.values())
        got = sum(c.get(kind, 0) for c in stored.values())
        per_kind[kind] = {"expected": exp, "stored": got}
        for who in sorted({*expect, *stored} - {None}, key=str):
            e, g = expect.get(who, {}).get(kind, 0), stored.get(who, Counter()).get(kind, 0)
            if g < e and kind in acked_kinds:
                lost.append(f"{kind}: account {who}: {e} acknowledged, {g} in the records")
            elif g != e:
                mismatches.append(f"{kind}: account {who}: {e} done, {g} in the records")
    # attendance: every interval closed; per student, one interval per admission and per resume
    open_intervals = [(users.get(u), reason) for u, left, reason in intervals if left is None]
    lost += [f"attendance interval of {who} still open" for who, _ in open_intervals]
    for who, c in expect.items():
        if who is not None and opened.get(who, 0) != c.get("admitted", 0) + c.get("reconnected", 0):
            mismatches.append(
                f"attendance: account {who}: {opened.get(who, 0)} intervals, "
                f"{c.get('admitted', 0)} admissions + {c.get('reconnected', 0)} resumes"
            )
    attendance = {
        "intervals": len(intervals),
        "open": len(open_intervals),
        "end_reasons": dict(Counter(r for _, _, r in intervals)),
    }
    # recordings
    manifests = [d["manifest"] for t, _a, _t, d in events if t == "recording_saved"]
    saved_folders = [f"{m['session_id']}/{m['recording_id']}" for m in manifests]
    by_folder: dict[str, list] = defaultdict(list)
    for path, size, digest in rows:
        by_folder[path.rsplit("/", 1)[0]].append((path, size, digest))
    files_missing, size_wrong, checksum_wrong, checked_bytes = [], [], [], 0
    for path, size, digest in rows:
        file = recordings_dir / path
        if not file.is_file():
            files_missing.append(path)
            continue
        actual = file.stat().st_size
        checked_bytes += actual
        if actual != size:
            size_wrong.append(f"{path}: {size} listed, {actual} on disk")
        elif digest and _sha256(file) != digest:
            checksum_wrong.append(path)
    listed_files = sum(len(m.get("files", [])) for m in manifests)
    unfinished = [
        f
        for f in saved_folders
        if not (
            json.loads((recordings_dir / f / "manifest.json").read_text()).get("finished")
            if (recordings_dir / f / "manifest.json").is_file()
            else False
        )
    ]
    made = recordings["started"]
    recording = {
        "made": made,
        "stopped_with_ok": recordings["stopped"],
        "recording_started": types.get("recording_started", 0),
        "recording_stopped": types.get("recording_stopped", 0),
        "recording_saved": len(manifests),
        "folders_in_recordings_table": len(by_folder),
        "files_listed": listed_files,
        "rows": len(rows),
        "bytes_on_disk": checked_bytes,
        "files_missing": files_missing,
        "size_wrong": size_wrong,
        "checksum_wrong": checksum_wrong,
        "manifest_not_finished": unfinished,
        "folders_match": sorted(saved_folders) == sorted(by_folder),
    }
    if len(manifests) < made:
        lost.append(f"recordings: {made} made, {len(manifests)} recording_saved records")
    if sorted(saved_folders) != sorted(by_folder) or listed_files != len(rows):
        lost.append(
            f"recordings: saved folders {sorted(saved_folders)} / files {listed_files} against "
            f"the recordings table's folders {sorted(by_folder)} / rows {len(rows)}"
        )
    lost += [f"recording file missing: {p}" for p in files_missing]
    lost += [f"recording file size: {p}" for p in size_wrong]
    lost += [f"recording file checksum: {p}" for p in checksum_wrong]
    if types.get("recording_started", 0) != made or types.get("recording_stopped", 0) != recordings["stopped"]:
        mismatches.append(
            f"recording_started {types.get('recording_started', 0)} / recording_stopped "
            f"{types.get('recording_stopped', 0)} records for {made} started / "
            f"{recordings['stopped']} stopped with ok"
        )
    if ended_at is None or types.get("room_ended", 0) != 1:
        lost.append(f"the period's end: sessions.ended_at {ended_at}, room_ended records {types.get('room_ended', 0)}")
    return {
        "lost": len(lost),
        "lost_list": lost[:100],
        "mismatches": mismatches[:100],
        "chat": chat,
        "per_kind": per_kind,
        "attendance": attendance,
        "recordings": recording,
        "session_ended_at": ended_at,
        "events_by_type": dict(sorted(types.items())),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_VARIABLE = re.compile(r"[0-9a-f]{8,}|\d+")  # ids, numbers: messages that differ only there count as one


def scan_log(path: Path) -> dict:
    """The server's warnings and errors (it logs at WARNING and above here), counted by their first line."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    levels: Counter = Counter()
    first: Counter = Counter()
    for line in lines:
        m = re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) (\S+): (.*)", line)
        if m:
            levels[m.group(1)] += 1
            message = _VARIABLE.sub("#", m.group(3))[:160]
            first[f"{m.group(1)} {m.group(2)}: {message}"] += 1
    return {
        "lines": len(lines),
        "by_level": dict(levels),
        "tracebacks": sum("Traceback" in line for line in lines),
        "messages": dict(first.most_common(25)),
    }


# -------------------------------------------------------------------------------------- report
def text_report(r: dict) -> str:
    out = [
        f"Soak: {r['options']['minutes']:g} minutes, a teacher and {r['options']['students']} students "
        f"({r['options']['media_students']} receiving media), seed {r['options']['seed']}"
    ]
    pm = r.get("per_minute", [])
    if pm:
        out.append("minute   RSS MB   fds  threads  tasks  udp  CPU %  in room")
        picks = sorted({0, 1, 5, 15, len(pm) // 2, len(pm) - 1} & set(range(len(pm))))
        for i in picks:
            row = pm[i]
            cells = [
                row["minute"],
                row["rss_mb"],
                row["fds"],
                row["threads"],
                row["tasks"],
                row["udp"],
                row.get("cpu_pct", "-"),
                row["students_in_room"],
            ]
            out.append(" ".join(f"{str(c):>{w}}" for c, w in zip(cells, (6, 8, 5, 8, 6, 4, 6, 8))))
    flat = r.get("flat", {})
    for key in ("rss_mb", "fds", "threads", "tasks"):
        e = flat.get(key)
        if e and "early_mean" in e:
            out.append(
                f"{key}: minutes {flat['early_window_min']} mean {e['early_mean']} -> last "
                f"{flat['late_window_min']} mean {e['late_mean']} ({e['change_pct']} %), min {e['min']}, "
                f"max {e['max']}, trend {e.get('trend_per_10_min')} per 10 min: "
                f"{'flat' if e.get('flat') else 'NOT flat'}"
            )
    for name, pair in r.get("settled", {}).items():
        out.append(f"{name}: " + ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in pair.items()))
    out.append("churn: " + ", ".join(f"{k} {v}" for k, v in r.get("churn", {}).items()))
    rec = r.get("records", {})
    if rec:
        out.append(
            f"records: chat {rec['chat']['acknowledged']} acknowledged, {rec['chat']['rows']} rows; "
            f"admissions {rec['per_kind']['admitted']}; recordings {rec['recordings']['made']} made, "
            f"{rec['recordings']['recording_saved']} saved, {rec['recordings']['rows']} files; attendance "
            f"{rec['attendance']['intervals']} intervals, {rec['attendance']['open']} open"
        )
        out.append(f"lost: {rec['lost']}" + ("" if not rec["lost"] else ": " + "; ".join(rec["lost_list"][:10])))
        if rec["mismatches"]:
            out.append("mismatches: " + "; ".join(rec["mismatches"][:10]))
    stop = r.get("server_stop", {})
    out.append(
        f"server stop: exit {stop.get('exit_code')} after {stop.get('seconds')} s; log "
        f"{r.get('server_log', {}).get('by_level')}, tracebacks {r.get('server_log', {}).get('tracebacks')}"
    )
    if r.get("problems"):
        out.append(f"problems ({len(r['problems'])}): " + " | ".join(p.splitlines()[0] for p in r["problems"][:8]))
    return "\n".join(out)


def run_soak(
    minutes: float,
    students: int = 20,
    media: int = 3,
    seed_value: int = 20260,
    sample: float = 10.0,
    out: Path | None = None,
    keep: bool = False,
    command: str | None = None,
    priority: bool = True,
) -> dict:
    """Run the soak (blocking); print the summary, write the JSON to `out`. `priority`: the server at
    nice -5, as the bench's (it stands for a machine of its own)."""
    if not 1 <= students <= 200 or minutes <= 0:
        raise SystemExit("liveclass: the soak needs 1-200 students and some minutes")
    PRIORITY["nice"] = -5 if priority else 0
    workdir = Path(tempfile.mkdtemp(prefix="liveclass-soak-"))

    def progress(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    opts = SoakOptions(
        minutes=minutes,
        students=students,
        media=min(media, students),
        seed=seed_value,
        sample=sample,
        workdir=workdir,
        progress=progress,
    )
    failed = True
    try:
        result = asyncio.run(Soak(opts).run())
        result["command"] = command or "liveclass " + " ".join(sys.argv[1:])
        print(text_report(result))
        if out:
            out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
            print(f"results: {out}")
        failed = bool(result.get("records", {}).get("lost")) or "records" not in result
    finally:
        if keep or failed:
            print(f"work directory (server log, store, recordings): {workdir}", file=sys.stderr)
        else:
            remove_workdir(workdir)
    if failed:
        raise SystemExit(1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("minutes", type=float, help="minutes of churn (30 for the documented soak)")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--media", type=int, default=3, help="students who receive media (default 3)")
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-priority", action="store_true", help="do not run the server at nice -5")
    args = parser.parse_args(argv)
    run_soak(
        args.minutes,
        args.students,
        args.media,
        args.seed,
        args.sample,
        args.out,
        args.keep,
        command="python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
        priority=not args.no_priority,
    )


if __name__ == "__main__":
    main()
