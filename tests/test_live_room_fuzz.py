"""Random event names and payloads fired at the server while a real class goes on (hypothesis).

One server and one class for all examples: a teacher and two admitted students, plus a fuzzing student
connection. Every request must be answered {ok: bool, ...}, the fuzzer stays connected and in the room
unless it legitimately left (room:leave, which closes its connection; it then joins again through the
lobby), and after each example the class still works: the teacher's chat reaches both students,
room:sync answers everyone, and nobody else was sanctioned, muted or disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, event as note, example, given, settings
from hypothesis import strategies as st

from liveclass.models import Enrollment
from signaling.policy import LOCKABLE, PERMISSION_NAMES, SOURCES
from signaling.server import REQUESTS
from tests.helpers import Person, add_user, seed_school
from tests.live import LiveClient, admitted, enter

CALL_TIMEOUT = 5.0
# What the teacher and the two students must never receive while only a student fuzzes.
UNTOUCHED = {
    "_disconnected",
    "you:kicked",
    "you:replaced",
    "you:muted",
    "you:permissions",
    "you:logged_out",
    "room:ended",
    "room:closing",
    "room:locks",
    "lobby:denied",
}

# Real keys of the request payloads (and a few near misses), so that many payloads get past the first checks.
KEYS = [
    "participant_id",
    "participant_ids",
    "text",
    "to",
    "all",
    "what",
    "locked",
    "source",
    "permissions",
    "reason",
    "message_id",
    "camera",
    "microphone",
    "screen",
    "chat",
    "room",
    "Text",
    "participant_id ",
]
# Stand-ins for participant ids that only exist at run time; replaced just before sending.
PEOPLE = ["$teacher", "$student", "$classmate", "$self"]
# Names the Socket.IO library itself uses, and near misses of ours.
TRICKY_EVENTS = [
    "connect",
    "disconnect",
    "connect_error",
    "message",
    "*",
    "",
    " room:sync",
    "ROOM:SYNC",
    "room:sync\x00",
    "chat:send:private",
    "chat:send_private",
    "__proto__",
    "constructor",
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # msgpack's whole range ...
    st.sampled_from([0, -1, 2**31, 2**53 + 1, -(2**63), 2**64 - 1]),  # ... and its edges
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), max_size=20),  # non-ASCII, astral too
    st.binary(max_size=40),
    st.sampled_from(["camera", "microphone", "screen", "room", "microphones", "cameras", "chat", "   ", *PEOPLE]),
)
payloads = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=16,
)
near_valid = st.dictionaries(
    st.sampled_from(KEYS),
    leaves | st.lists(leaves, max_size=3) | st.dictionaries(st.sampled_from(KEYS), leaves, max_size=3),
    max_size=4,
)
oversized = st.integers(60_000, 70_000).map(lambda n: {"text": "x" * n})  # around the 64 KB request limit
people = st.sampled_from(PEOPLE) | st.text(max_size=8)
# Plausible values for each field of the request payloads: well-formed requests, and near misses.
FIELD_VALUES = {
    "participant_id": people,
    "participant_ids": st.lists(people, max_size=3),
    "to": people | st.none(),
    "all": st.booleans(),
    "text": st.text(min_size=1, max_size=30) | st.sampled_from(["", "   ", "x" * 2001]),
    "reason": st.text(max_size=20) | st.none(),
    "message_id": st.text(max_size=12),
    "what": st.sampled_from(LOCKABLE),
    "locked": st.booleans(),
    "source": st.sampled_from(SOURCES),
    "permissions": st.dictionaries(st.sampled_from(PERMISSION_NAMES), st.booleans() | st.none(), max_size=4),
    **{name: st.booleans() | st.none() for name in PERMISSION_NAMES},
    # media negotiation: SDP-looking garbage, track lists, ICE candidates
    "sdp": st.text(max_size=60) | st.sampled_from(["v=0\r\n", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"]),
    "tracks": st.lists(
        st.fixed_dictionaries(
            {
                "mid": st.sampled_from(["0", "1", "x"]) | st.text(max_size=4),
                "source": st.sampled_from(SOURCES) | st.text(max_size=6),
            }
        ),
        max_size=3,
    ),
    "direction": st.sampled_from(["publish", "subscribe"]) | st.text(max_size=8),
    "candidate": st.none()
    | st.dictionaries(
        st.sampled_from(["candidate", "sdpMid", "sdpMLineIndex"]), st.text(max_size=30) | st.integers(-5, 5), max_size=3
    ),
    # data saver
    "mode": st.sampled_from(["off", "screen", "audio"]) | st.text(max_size=6),
    # quick polls
    "kind": st.sampled_from(["abcd", "truefalse"]) | st.text(max_size=6),
    "options": st.integers(-1, 8),
    "multiple": st.booleans(),
    "anonymous": st.booleans(),
    "correct": st.none()
    | st.lists(st.sampled_from(["A", "B", "C", "D", "true", "false"]) | st.text(max_size=3), max_size=3),
    "points": st.none() | st.floats(-1, 2000, allow_nan=False),
    "poll_id": st.text(max_size=12),
    "show_correct": st.booleans(),
    "choices": st.lists(st.sampled_from(["A", "B", "C", "D", "E", "true", "false"]) | st.text(max_size=3), max_size=4),
    # quizzes: questions from the bank (well-formed or not), times, the question answered
    "questions": st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"kind": st.sampled_from(["single", "multiple", "truefalse", "text", "number"]) | st.text(max_size=6)},
            optional={
                "text": st.text(max_size=20),
                "options": st.lists(st.text(max_size=5), max_size=7),
                "correct": st.none()
                | st.lists(st.sampled_from(["A", "B", "3,5", "Hà Nội"]) | st.text(max_size=4), max_size=3),
                "points": st.none() | st.floats(-1, 2000, allow_nan=False),
                "tolerance": st.none() | st.floats(-1, 10, allow_nan=False),
                "image_url": st.none() | st.sampled_from(["/api/question-images/a.b.c", "https://x.example/a"]),
            },
        ),
        max_size=3,
    ),
    "title": st.none() | st.text(max_size=10),
    "final": st.booleans(),
    "time_limit": st.none() | st.integers(0, 8000),
    "seconds_per_question": st.none() | st.integers(0, 700),
    "question": st.integers(-1, 25),
}


def shaped(event: str) -> st.SearchStrategy:
    """Payloads with the fields of `event`'s request (required ones always), values plausible or not."""
    fields = REQUESTS[event].model_fields
    required = {name: FIELD_VALUES[name] for name, f in fields.items() if f.is_required()}
    optional = {name: FIELD_VALUES[name] for name, f in fields.items() if not f.is_required()}
    return st.fixed_dictionaries(required, optional=optional)


anything = st.tuples(
    st.sampled_from(sorted(REQUESTS)) | st.sampled_from(TRICKY_EVENTS) | st.text(max_size=30),
    st.one_of(near_valid, payloads, oversized),
    st.lists(payloads, max_size=2),  # extra positional arguments, which no request has
)
well_formed = st.sampled_from(sorted(REQUESTS)).flatmap(lambda e: st.tuples(st.just(e), shaped(e), st.just([])))
requests = st.one_of(anything, well_formed)


@dataclass
class Classroom:
    session_id: int
    teacher: LiveClient
    students: list[LiveClient]
    fuzzer: LiveClient
    fuzzer_person: Person

    def ids(self) -> dict[str, str]:
        return {
            "$teacher": self.teacher.participant_id,
            "$student": self.students[0].participant_id,
            "$classmate": self.students[1].participant_id,
            "$self": self.fuzzer.participant_id,
        }


@pytest.fixture
async def classroom(server, monkeypatch):
    # A short rate-limit window: the fuzzer's messages get through often, and are still limited at times.
    monkeypatch.setattr("signaling.room.CHAT_RATE_WINDOW", 0.05)
    school = await seed_school(server)
    async with server.db() as db:
        classmate, fuzzing = await add_user(db, "student", "Trần Gia Huy"), await add_user(db, "student", "Lê Fuzz")
        db.add_all([Enrollment(class_id=school.school_class.id, student_id=u.id) for u in (classmate, fuzzing)])
        await db.commit()
    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    students = [await admitted(teacher, await server.logged_in(u), session_id) for u in (school.student, classmate)]
    fuzzer_person = await server.logged_in(fuzzing)
    fuzzer = await admitted(teacher, fuzzer_person, session_id)
    return Classroom(session_id, teacher, students, fuzzer, fuzzer_person)


def substitute(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    return value


async def readmit(room: Classroom) -> None:
    """The fuzzer left the room (room:leave): it asks again and the teacher lets it in."""
    await room.fuzzer.close()
    mark = room.teacher.mark()
    room.fuzzer = await enter(room.fuzzer_person, room.session_id)
    name = room.fuzzer_person.user.full_name
    lobby = await room.teacher.wait_for(
        "lobby:updated", lambda d: any(e["name"] == name for e in d["lobby"]), after=mark
    )
    entry = next(e for e in lobby["lobby"] if e["name"] == name)
    await room.teacher.ok("lobby:admit", {"participant_ids": [entry["participant_id"]]})
    await room.fuzzer.wait_for("room:state")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(requests, min_size=1, max_size=5))
# The names python-socketio reserves reach the server's own connect/disconnect/catch-all handlers.
@example(calls=[("connect", None, []), ("disconnect", None, []), ("*", None, []), ("room:sync", None, [])])
@example(
    calls=[
        ("connect", {"token": "x"}, [{"token": "y"}]),
        ("disconnect", "transport close", []),
        ("*", {"text": "a"}, [1]),
    ]
)
@example(calls=[("room:leave", {}, []), ("chat:send", {"text": "still here?"}, [])])
async def test_random_requests_never_break_the_class(classroom: Classroom, calls):
    room = classroom
    left = False
    for event, payload, extra in calls:
        ids = room.ids()
        payload, extra = substitute(payload, ids), substitute(extra, ids)
        data = tuple([payload, *extra]) if extra else payload
        if left and not room.fuzzer.sio.connected:
            break  # room:leave closes the connection after its answer
        try:
            answer = await room.fuzzer.call(event, data, timeout=CALL_TIMEOUT)  # a timeout fails the test
        except socketio.exceptions.SocketIOError:
            if left and not room.fuzzer.sio.connected:
                break
            raise
        assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), (event, answer)
        if answer["ok"]:
            assert set(answer) == {"ok", "data"}, answer
            assert event in REQUESTS, f"{event!r} is not a request, yet it was accepted"
            left = left or event == "room:leave"
        else:
            error = answer["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"], answer
            assert error["code"] != "internal_error", (event, data, answer)  # a bug in the server
            if event not in REQUESTS:
                assert error["code"] == "unknown_event", (event, answer)
        note(f"{event if event in REQUESTS else 'other'}: {'ok' if answer['ok'] else answer['error']['code']}")
        assert left or room.fuzzer.sio.connected, f"the fuzzer was disconnected by {event!r}"

    # The fuzzer is still in the room, unless it left of its own accord.
    if left:
        await room.fuzzer.wait_for("room:left", timeout=5)  # the server closes it a moment later; we go first
        await readmit(room)
    else:
        sync = await room.fuzzer.call("room:sync", timeout=CALL_TIMEOUT)
        assert sync["ok"] is True, sync
        assert sync["data"]["you"]["participant_id"] == room.fuzzer.participant_id

    # The rest of the class is unaffected.
    text = f"Kiểm tra {len(room.teacher.received)}"
    sent = await room.teacher.ok("chat:send", {"text": text})
    for student in room.students:
        message = await student.wait_for("chat:message", lambda m: m["message_id"] == sent["message_id"], timeout=5)
        assert message["text"] == text and message["from"]["role"] == "teacher"
    teacher_view = await room.teacher.ok("room:sync")
    present = {p["participant_id"]: p for p in teacher_view["participants"]}
    for client in (room.teacher, *room.students, room.fuzzer):
        assert present[client.participant_id]["connection"] == "connected"
    for student in room.students:
        view = await student.ok("room:sync")
        assert view["you"]["participant_id"] == student.participant_id
        assert {p["role"] for p in view["participants"]} == {"teacher", "student"}
    for client in (room.teacher, *room.students):  # nothing the fuzzer did reached them as a sanction
        assert not [e for e, _ in client.received if e in UNTOUCHED], (client.person.user.full_name, client.received)
