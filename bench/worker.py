"""A benchmark worker process: the synthetic teacher, or a few synthetic students.

    python -m bench.worker teacher|students|weak-teacher|weak-students

It reads one JSON command per line on standard input ({"id", "cmd", ...}) and answers each with one
JSON line on standard output ({"id", "ok", "data" | "error"}). Commands run concurrently. Logs go
to standard error. Times are time.monotonic() values, shared by every process of the machine.

`mode` "liveclass": the real protocol (HTTP login and join, Socket.IO lobby and rtc:*);
`mode` "relay": the MediaRelay baseline's plain HTTP signaling (relay.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, Sequence

import aiohttp
import socketio

from bench.client import Participant
from bench.peers import CountingSubscriber, Publisher, now

if TYPE_CHECKING:
    from bench.weaklink import WeakStudents, WeakTeacher

log = logging.getLogger("bench.worker")
CHAT_TIMEOUT = 10.0  # seconds a chat:send waits for its acknowledgement before it counts as unanswered


async def _sleep_until(t: float) -> None:
    delay = t - now()
    if delay > 0:
        await asyncio.sleep(delay)


def _delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {slot: {k: after[slot][k] - before.get(slot, {}).get(k, 0) for k in after[slot]} for slot in after}


async def _send_chat(person: Participant, times: list[float], text: str) -> list[dict]:
    """chat:send at each of `times` (time.monotonic() values), one after another: the time from the
    emit to the acknowledgement of each, and its message_id, or the error code (`timeout`: no answer
    within CHAT_TIMEOUT s; `disconnected`). A late answer delays the next message, never overlaps it."""
    sent = []
    for k, t in enumerate(times):
        await _sleep_until(t)
        emitted = now()
        try:
            answer = await person.ask("chat:send", {"text": f"{text} {k + 1}"}, timeout=CHAT_TIMEOUT)
        except socketio.exceptions.SocketIOError as exc:  # no answer: counted, the next one is still sent
            error = "timeout" if isinstance(exc, socketio.exceptions.TimeoutError) else "disconnected"
            sent.append({"t": emitted, "ack_s": None, "message_id": None, "error": error})
            continue
        acknowledged = now()
        ok = bool(answer.get("ok"))
        sent.append(
            {
                "t": emitted,
                "ack_s": acknowledged - emitted,
                "message_id": (answer.get("data") or {}).get("message_id") if ok else None,
                "error": None if ok else (answer.get("error") or {}).get("code", "unknown"),
            }
        )
    return sent


async def _close_all(*things) -> None:
    """Close each (peer connections, clients), bounded in time; one that fails does not stop the others."""
    for thing in things:
        if thing is not None:
            try:
                await asyncio.wait_for(thing.close(), 5)
            except Exception:  # noqa: BLE001
                pass


async def _window(
    subscribers: list[CountingSubscriber | None], start: float, end: float, log_slots: tuple[str, ...]
) -> list[dict | None]:
    """Per subscriber: what each slot received between `start` and `end`, and the frame log of
    `log_slots` (frames completed in the window)."""
    await _sleep_until(start)
    before = [None if s is None else {n: c.snapshot() for n, c in s.counters.items()} for s in subscribers]
    for s in subscribers:
        if s is not None:
            for name in log_slots:
                if name in s.counters:
                    s.counters[name].log_frames(start, end)
    await _sleep_until(end)
    out: list[dict | None] = []
    for s, b in zip(subscribers, before):
        if s is None or b is None:  # (b is None exactly when s is)
            out.append(None)
            continue
        after = {n: c.snapshot() for n, c in s.counters.items()}
        out.append(
            {
                "slots": _delta(b, after),
                "logs": {n: s.counters[n].log for n in log_slots if n in s.counters and s.counters[n].log is not None},
                "decoders": s.decoders(),
            }
        )
    return out


class Teacher:
    def __init__(self) -> None:
        self.person: Participant | None = None
        self.publisher: Publisher | None = None
        self.subscriber: CountingSubscriber | None = None
        self.session_id: int | None = None
        self.http: aiohttp.ClientSession | None = None

    def _person(self) -> Participant:
        """The logged-in teacher (cmd_start came first)."""
        assert self.person is not None, "cmd_start first"
        return self.person

    def _publisher(self) -> Publisher:
        """The publish connection (cmd_init or cmd_enter came first)."""
        assert self.publisher is not None, "not publishing"
        return self.publisher

    def _session_id(self) -> int:
        assert self.session_id is not None, "cmd_start first"
        return self.session_id

    async def cmd_init(
        self,
        mode: str,
        base_url: str,
        screen: bool = False,
        subscribe: bool = True,
        personal_id: str = "",
        password: str = "",
        period_id: int = 0,
    ) -> dict:
        if mode == "relay":
            self.publisher = Publisher(camera="live", microphone=True, screen=screen)
            sdp, tracks = await self.publisher.offer()
            self.http = aiohttp.ClientSession()
            async with self.http.post(base_url + "/publish", json={"sdp": sdp, "tracks": tracks}) as r:
                answer = (await r.json())["sdp"]
            await self.publisher.accept(answer)
            return {}
        await self.cmd_start(base_url, personal_id, password, period_id)
        return await self.cmd_enter(screen=screen, subscribe=subscribe)

    async def cmd_start(self, base_url: str, personal_id: str, password: str, period_id: int) -> dict:
        """Log in and start the period (POST /periods/{id}/start): the session and the node it was placed on."""
        self.person = Participant(base_url, personal_id, password)
        await self.person.login()
        session = await self.person.start_period(period_id)
        self.session_id = session["id"]
        return {"session_id": self.session_id, "node": session.get("node")}

    async def cmd_enter(
        self, screen: bool = False, subscribe: bool = True, camera: str = "live", media: bool = True
    ) -> dict:
        """Into the started session's room: publish camera (`live`-encoded or `replay`ed) and microphone
        (and the screen), then subscribe (the students' cameras come in the grid slots); with `media`
        false, only into the room (Socket.IO alone, e.g. for the chat scenario)."""
        person = self._person()
        await person.connect(self._session_id())
        await person.wait_for("room:state")
        if media:
            await self._publish(screen, camera)
            if subscribe:
                await self._subscribe()
            await self._publisher().senders["camera"].ready.wait()
        assert person.join is not None  # set by connect()
        return {
            "session_id": self.session_id,
            "participant_id": person.participant_id,
            "node": person.join["connect"]["node"],
        }

    async def _publish(self, screen: bool, camera: str) -> None:
        self.publisher = publisher = Publisher(camera=camera, microphone=True, screen=screen)
        sdp, tracks = await publisher.offer()
        answer = await self._person().call("rtc:publish", {"sdp": sdp, "tracks": tracks})
        await publisher.accept(answer["sdp"])
        await self._person().call(
            "media:state", {"camera": True, "microphone": True, **({"screen": True} if screen else {})}
        )

    async def _subscribe(self) -> None:
        self.subscriber = subscriber = CountingSubscriber()
        person = self._person()
        mark = person.mark()
        await person.call("rtc:subscribe")
        offer = await person.wait_for("rtc:offer", after=mark)
        await person.call("rtc:answer", {"sdp": await subscriber.answer(offer["sdp"], offer["slots"])})

    async def cmd_rejoin(
        self, base_url: str, deadline: float, screen: bool = False, subscribe: bool = True, camera: str = "live"
    ) -> dict:
        """The room's node was lost: drop the old media connections, get back into the room through
        `base_url` (a live node) with the resume token, publish and subscribe again."""
        await _close_all(self.subscriber, self.publisher)
        self.subscriber = self.publisher = None
        person = self._person()
        person.base_url = base_url
        done: dict[str, Any] = {}
        try:
            done.update(await person.rejoin(self._session_id(), deadline))
            done["t_back"] = now()
            await self._publish(screen, camera)
            done["t_published"] = now()
            if subscribe:
                await self._subscribe()
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            log.exception("teacher: rejoin failed")
            done["error"] = f"{type(exc).__name__}: {exc}"
        return {**done, "refusals": dict(person.refusals)}

    async def cmd_wait_lobby(self, count: int, within: float = 60) -> dict:
        data = await self._person().wait_for("lobby:updated", lambda d: len(d["lobby"]) >= count, within)
        return {"lobby": len(data["lobby"])}

    async def cmd_admit_all(self) -> dict:
        t = now()
        data = await self._person().call("lobby:admit", {"all": True})
        return {"t_admit": t, "t_acknowledged": now(), "admitted": len(data.get("admitted", []))}

    async def cmd_chat(self, times: list[float], text: str = "Cô hỏi câu") -> dict:
        """chat:send at each of `times` (see _send_chat)."""
        return {"sent": await _send_chat(self._person(), times, text)}

    async def cmd_record(self, action: str) -> dict:
        """rec:start / rec:stop (or rec:pause / rec:resume) over Socket.IO, as the web client's button."""
        t = now()
        status = await self._person().call("rec:" + action, timeout=120)
        return {"t": t, "seconds": now() - t, "status": status}

    async def cmd_window(self, start: float, end: float) -> dict:
        received = (await _window([self.subscriber], start, end, ()))[0]
        return {"received": received, "publisher": self._publisher().stats()}

    async def cmd_frames(self, start: float, end: float) -> dict:
        frames: dict[str, list[tuple]] = {}
        for source, sender in self._publisher().senders.items():
            assert sender.log is not None  # a Publisher's senders always log their frames
            frames[source] = [f for f in sender.log if start <= f[2] < end]
        return frames

    async def cmd_stats(self) -> dict:
        return {"publisher": self._publisher().stats()}

    async def close(self) -> None:
        await _close_all(self.subscriber, self.publisher, self.person, self.http)


class Student:
    def __init__(self, index: int, mode: str, base_url: str, account: dict, media: bool = True) -> None:
        self.index, self.mode, self.base_url = index, mode, base_url
        self.media = media  # false: Socket.IO only, no subscription once admitted (the chat scenario)
        self.camera = bool(account.get("camera"))
        self.person = (
            Participant(base_url, account.get("personal_id", ""), account.get("password", ""))
            if mode == "liveclass"
            else None
        )
        self.subscriber: CountingSubscriber | None = None
        self.publisher: Publisher | None = None
        self.times: dict[str, float | None] = {
            "admitted": None,
            "subscribe_sent": None,
            "offer": None,
            "answer_sent": None,
            "answered": None,
        }
        self.error: str | None = None
        self.media_task: asyncio.Task | None = None
        self.http: aiohttp.ClientSession | None = None
        self.session_id: int | None = None
        self.rejoined: dict | None = None  # after a lost node: attempts, the new node

    def _person(self) -> Participant:
        """The participant (mode "liveclass"; "relay" has none)."""
        assert self.person is not None, "no participant in relay mode"
        return self.person

    async def login(self) -> None:
        if self.person is not None:
            await self.person.login()

    async def enter(self, session_id: int | None) -> None:
        if self.mode == "relay":
            self.times["admitted"] = now()
            self.media_task = asyncio.ensure_future(self._media())
            return
        self.session_id = session_id
        person = self._person()
        assert session_id is not None, "a session to enter"
        person.on("lobby:admitted", self._admitted)
        await person.connect(session_id)
        await person.wait_for("lobby:waiting")

    def _admitted(self, data: Any) -> None:
        if self.media_task is not None:  # admitted once: a later room (after a lost node) is rejoin()'s
            return
        self.times["admitted"] = now()
        if not self.media:
            return
        self.media_task = asyncio.ensure_future(self._media())

    async def _media(self) -> None:
        try:
            if self.mode == "relay":
                self.subscriber = CountingSubscriber()
                self.times["subscribe_sent"] = now()
                self.http = aiohttp.ClientSession()
                async with self.http.post(self.base_url + "/subscribe") as r:
                    offer = await r.json()
                self.times["offer"] = now()
                answer = await self.subscriber.answer(offer["sdp"], offer["slots"])
                self.times["answer_sent"] = now()
                async with self.http.post(f"{self.base_url}/subscribe/{offer['id']}", json={"sdp": answer}) as r:
                    await r.json()
                self.times["answered"] = now()
                return
            await self._person().wait_for("room:state")
            await self._subscribe()
            if self.camera:
                await self._publish_camera()
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("student %s: media failed", self.index)

    async def _subscribe(self) -> None:
        """rtc:subscribe -> rtc:offer -> rtc:answer with a fresh counting subscriber."""
        person = self._person()
        self.subscriber = subscriber = CountingSubscriber()
        self.times["subscribe_sent"] = now()
        mark = person.mark()
        await person.call("rtc:subscribe")
        offer = await person.wait_for("rtc:offer", after=mark)
        self.times["offer"] = now()
        answer = await subscriber.answer(offer["sdp"], offer["slots"])
        self.times["answer_sent"] = now()
        await person.call("rtc:answer", {"sdp": answer})
        self.times["answered"] = now()

    async def _publish_camera(self) -> None:
        self.publisher = publisher = Publisher(camera="replay", microphone=False)
        person = self._person()
        sdp, tracks = await publisher.offer()
        answer = await person.call("rtc:publish", {"sdp": sdp, "tracks": tracks})
        await publisher.accept(answer["sdp"])
        await person.call("media:state", {"camera": True})

    def rejoin(self, base_url: str, deadline: float) -> None:
        """The room's node was lost: back into the room in the background (see _rejoin). What was
        received before is forgotten now, so that wait_media waits for the new room's media."""
        if self.media_task is not None:
            self.media_task.cancel()
        old = (self.subscriber, self.publisher)
        self.subscriber = self.publisher = None
        self.error = None
        self.times = {k: None for k in self.times}
        self.media_task = asyncio.ensure_future(self._rejoin(base_url, deadline, old))

    async def _rejoin(self, base_url: str, deadline: float, old: tuple) -> None:
        """Close the old media connections, get back into the room through `base_url` (a live node)
        with the resume token (no lobby), subscribe (and publish) again."""
        await _close_all(*old)
        person = self._person()
        person.base_url = base_url
        try:
            assert self.session_id is not None, "entered a session before"
            self.rejoined = await person.rejoin(self.session_id, deadline)
            self.times["admitted"] = now()  # back in the room (room:state), without the lobby
            await self._subscribe()
            if self.camera:
                await self._publish_camera()
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("student %s: rejoin failed", self.index)

    def first_frame_at(self, slot: str = "teacher_camera") -> float | None:
        counter = self.subscriber.counters.get(slot) if self.subscriber else None
        return counter.first_frame_at if counter else None

    def report(self) -> dict:
        counter = self.subscriber.counters.get("teacher_camera") if self.subscriber else None
        return {
            "index": self.index,
            "error": self.error,
            **{f"t_{k}": v for k, v in self.times.items()},
            "t_first_packet": counter.first_packet_at if counter else None,
            "t_first_frame": self.first_frame_at(),
            "publisher": self.publisher.stats() if self.publisher else None,
            **({"rejoined": self.rejoined, "refusals": dict(self.person.refusals)} if self.person else {}),
        }

    async def close(self) -> None:
        if self.media_task is not None:
            self.media_task.cancel()
        await _close_all(self.publisher, self.subscriber, self.person, self.http)


class Students:
    def __init__(self) -> None:
        self.students: list[Student] = []

    async def cmd_init(self, mode: str, base_url: str, accounts: list[dict], media: bool = True) -> dict:
        self.students = [Student(i, mode, base_url, a, media) for i, a in enumerate(accounts)]
        await asyncio.gather(*(s.login() for s in self.students))
        return {"students": len(self.students)}

    def _pick(self, which: list[int] | None) -> list[Student]:
        return self.students if which is None else [self.students[i] for i in which]

    async def cmd_enter(self, session_id: int | None = None, which: list[int] | None = None) -> dict:
        await asyncio.gather(*(s.enter(session_id) for s in self._pick(which)))
        return {"entered": len(self._pick(which))}

    async def cmd_rejoin(self, base_url: str, deadline: float, which: list[int] | None = None) -> dict:
        """The chosen students' room lost its node: each gets back in (see Student.rejoin) and
        subscribes again; answered at once (cmd_wait_media reports their first frames)."""
        chosen = self._pick(which)
        for student in chosen:
            student.rejoin(base_url, deadline)
        return {"rejoining": len(chosen)}

    async def cmd_wait_media(self, which: list[int] | None = None, within: float = 20) -> dict:
        """Reports once every chosen student has a first teacher frame (or failed), or after `within` s."""
        chosen = self._pick(which)
        deadline = now() + within
        while now() < deadline and any(s.first_frame_at() is None and s.error is None for s in chosen):
            await asyncio.sleep(0.02)
        return {"students": [s.report() for s in chosen]}

    async def cmd_wait_admitted(self, which: list[int] | None = None, within: float = 30) -> dict:
        """Until every chosen student is in the room (room:state, after lobby:admitted)."""
        chosen = self._pick(which)
        await asyncio.gather(*(s._person().wait_for("room:state", timeout=within) for s in chosen))
        return {"admitted": len(chosen)}

    async def cmd_chat(
        self, times: list[list[float]], which: list[int] | None = None, text: str = "Em trả lời câu"
    ) -> dict:
        """Each chosen student sends chat:send at its own list of `times` (see _send_chat), all at once."""
        chosen = self._pick(which)
        sent = await asyncio.gather(*(_send_chat(s._person(), t, text) for s, t in zip(chosen, times)))
        return {"students": [{"index": s.index, "sent": records} for s, records in zip(chosen, sent)]}

    async def cmd_window(
        self, start: float, end: float, which: list[int] | None = None, log_slots: Sequence[str] = ("teacher_camera",)
    ) -> dict:
        chosen = self._pick(which)
        received = await _window([s.subscriber for s in chosen], start, end, tuple(log_slots))
        return {
            "students": [
                {
                    "index": s.index,
                    "received": r,
                    "error": s.error,
                    "publisher": s.publisher.stats() if s.publisher else None,
                }
                for s, r in zip(chosen, received)
            ]
        }

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.students))


async def serve(actor) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    tasks: set[asyncio.Task] = set()

    def reply(message: dict) -> None:
        out.write(json.dumps(message, separators=(",", ":")) + "\n")
        out.flush()

    async def run(message: dict) -> None:
        try:
            handler = getattr(actor, "cmd_" + message["cmd"])
            args = {k: v for k, v in message.items() if k not in ("id", "cmd")}
            reply({"id": message["id"], "ok": True, "data": await handler(**args)})
        except Exception as exc:  # noqa: BLE001 - every command is answered
            log.error("command %s failed:\n%s", message.get("cmd"), traceback.format_exc())
            reply({"id": message.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    reply({"id": 0, "ok": True, "data": {"pid": os.getpid()}})
    while True:
        line = await reader.readline()
        if not line:
            break
        message = json.loads(line)
        if message["cmd"] == "quit":
            break
        task = asyncio.ensure_future(run(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await actor.close()
    reply({"id": -1, "ok": True, "data": "bye"})


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    role = sys.argv[1]
    actor: Teacher | Students | WeakTeacher | WeakStudents
    if role.startswith("weak-"):  # the weak-link scenario's actors (weaklink.py)
        from bench.weaklink import WeakStudents, WeakTeacher

        actor = WeakTeacher() if role == "weak-teacher" else WeakStudents()
    else:
        actor = Teacher() if role == "teacher" else Students()
    asyncio.run(serve(actor))


if __name__ == "__main__":
    main()
