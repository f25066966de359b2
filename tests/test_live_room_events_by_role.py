"""Every request × every room role: allowed, or refused with exactly the documented code.

The expectation table is written out here on purpose (not derived from signaling.policy.ACTIONS), so a
change of the policy shows up as a failing test that someone has to look at.
"""

from __future__ import annotations

from typing import Any, Callable

from liveclass.models import Enrollment
from signaling.server import REQUESTS
from tests.helpers import add_user, seed_school
from tests.live import LiveClient, admitted, enter

OK, FORBIDDEN = "ok", "forbidden"
ROLES = ("teacher", "student", "observer", "guest")

Ids = dict[str, str]  # room role (and "classmate") → participant id
PayloadOf = Callable[[Ids, str], Any]


def _private_to_teacher(ids: Ids, role: str) -> dict:
    # The teacher cannot write to themself: their private message goes to a student.
    return {"text": "Cho em hỏi riêng ạ", "to": ids["student"] if role == "teacher" else ids["teacher"]}


# (event, case) → (payload, expected answer for teacher, student, observer, guest).
# "ok" means {ok: true}; anything else is the error code of {ok: false}.
TABLE: dict[tuple[str, str], tuple[PayloadOf, tuple[str, str, str, str]]] = {
    ("room:sync", ""): (lambda ids, role: None, (OK, OK, OK, OK)),
    ("lobby:admit", "all waiting"): (lambda ids, role: {"all": True}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("lobby:deny", "all waiting, with a reason"): (
        lambda ids, role: {"all": True, "reason": "Hết giờ vào lớp"},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("chat:send", "public"): (lambda ids, role: {"text": "Chào cả lớp"}, (OK, OK, FORBIDDEN, OK)),
    ("chat:send", "private to the teacher"): (_private_to_teacher, (OK, OK, OK, OK)),
    ("chat:send", "private to a classmate"): (
        lambda ids, role: {"text": "Bạn ơi", "to": ids["classmate"]},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("chat:delete", ""): (lambda ids, role: {"message_id": ids["message"]}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("hand:raise", ""): (lambda ids, role: {}, (FORBIDDEN, OK, FORBIDDEN, OK)),
    ("hand:lower", "own hand"): (lambda ids, role: {}, (OK, OK, FORBIDDEN, OK)),
    ("hand:lower", "own hand, by id"): (lambda ids, role: {"participant_id": ids[role]}, (OK, OK, FORBIDDEN, OK)),
    ("hand:lower", "someone else's hand"): (
        lambda ids, role: {"participant_id": ids["classmate"]},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("hand:lower", "all hands"): (lambda ids, role: {"all": True}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("media:state", ""): (lambda ids, role: {"camera": True, "microphone": True}, (OK, OK, FORBIDDEN, OK)),
    ("media:saver", "audio only"): (lambda ids, role: {"mode": "audio"}, (OK, OK, OK, OK)),
    ("media:saver", "an unknown mode"): (lambda ids, role: {"mode": "video"}, ("invalid_payload",) * 4),
    ("media:grid", "a gallery page"): (
        lambda ids, role: {"participant_ids": [ids["classmate"]]},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("media:grid", "more than 12"): (
        lambda ids, role: {"participant_ids": [ids["classmate"]] * 13},
        ("invalid_payload",) * 4,
    ),
    ("mod:mute", ""): (
        lambda ids, role: {"participant_id": ids["classmate"], "source": "microphone"},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("mod:lock", ""): (lambda ids, role: {"what": "room", "locked": False}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("mod:permit", ""): (
        lambda ids, role: {"participant_id": ids["classmate"], "permissions": {"screen": False}},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("mod:stage", ""): (lambda ids, role: {"participant_id": ids["classmate"]}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("rtc:publish", "an offer that is not SDP"): (
        lambda ids, role: {"sdp": "v=0 nonsense", "tracks": [{"mid": "0", "source": "camera"}]},
        ("invalid_sdp", "invalid_sdp", FORBIDDEN, "invalid_sdp"),
    ),
    ("rtc:subscribe", ""): (lambda ids, role: {}, (OK, OK, OK, OK)),
    ("rtc:answer", "an answer that is not SDP"): (
        lambda ids, role: {"sdp": "v=0 nonsense"},
        ("invalid_sdp", "invalid_sdp", "invalid_sdp", "invalid_sdp"),
    ),
    ("rtc:candidate", "end of candidates"): (
        lambda ids, role: {"direction": "subscribe", "candidate": None},
        (OK, OK, OK, OK),
    ),
    ("rec:start", ""): (lambda ids, role: {}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("rec:pause", "while recording"): (lambda ids, role: {}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("rec:resume", "while paused"): (lambda ids, role: {}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("rec:stop", ""): (lambda ids, role: {}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    # A quick poll, in this order: opened (its id is kept in ids["poll"]), answered, closed, revealed.
    ("poll:open", "A/B/C/D with a correct answer"): (
        lambda ids, role: {"kind": "abcd", "correct": ["B"], "points": 1},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("poll:open", "while one is open"): (
        lambda ids, role: {"kind": "truefalse"},
        ("poll_open", FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", ""): (
        lambda ids, role: {"poll_id": ids["poll"], "choices": ["B"]},
        (FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "an unknown choice"): (
        lambda ids, role: {"poll_id": ids["poll"], "choices": ["G"]},
        (FORBIDDEN, "unknown_choice", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "two choices in a single-choice poll"): (
        lambda ids, role: {"poll_id": ids["poll"], "choices": ["A", "B"]},
        (FORBIDDEN, "single_choice", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "an unknown poll"): (
        lambda ids, role: {"poll_id": "q0-nope", "choices": ["A"]},
        (FORBIDDEN, "unknown_poll", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "for someone else (a participant field)"): (
        lambda ids, role: {"poll_id": ids["poll"], "choices": ["A"], "participant_id": ids["classmate"]},
        ("invalid_payload",) * 4,
    ),
    ("poll:close", ""): (lambda ids, role: {"poll_id": ids["poll"]}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("poll:answer", "after close"): (
        lambda ids, role: {"poll_id": ids["poll"], "choices": ["C"]},
        (FORBIDDEN, "poll_closed", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:reveal", "with the correct answer"): (
        lambda ids, role: {"poll_id": ids["poll"], "show_correct": True},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    # A quiz from the bank: a text and a number question, one at a time, answers final.
    ("poll:open", "a quiz, one question at a time, final answers"): (
        lambda ids, role: {
            "questions": [
                {"kind": "text", "text": "Thủ đô của Việt Nam?", "correct": ["Hà Nội"], "points": 1},
                {"kind": "number", "text": "2 + 2 = ?", "correct": ["4"], "points": 1},
            ],
            "seconds_per_question": 600,
            "final": True,
        },
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "the question after the one being asked"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 1, "text": "4"},
        (FORBIDDEN, "not_current_question", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "choices for a text question"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 0, "choices": ["A"]},
        (FORBIDDEN, "wrong_kind", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "a text over the limit"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 0, "text": "Hà Nội " * 100},
        (FORBIDDEN, "answer_too_long", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "a typed answer"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 0, "text": "hà nội"},
        (FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "a final answer changed"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 0, "text": "Huế"},
        (FORBIDDEN, "answer_final", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:answer", "an unknown question"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 7, "text": "1"},
        (FORBIDDEN, "unknown_question", FORBIDDEN, FORBIDDEN),
    ),
    ("poll:next", ""): (lambda ids, role: {"poll_id": ids["poll"]}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("poll:answer", "words for a number"): (
        lambda ids, role: {"poll_id": ids["poll"], "question": 1, "text": "bốn"},
        (FORBIDDEN, "not_a_number", FORBIDDEN, FORBIDDEN),
    ),
    # These change or end the room: run last, in the order below.
    ("mod:kick", ""): (
        lambda ids, role: {"participant_id": ids["classmate"], "reason": "Nói chuyện riêng"},
        (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ),
    ("room:end", ""): (lambda ids, role: {}, (OK, FORBIDDEN, FORBIDDEN, FORBIDDEN)),
    ("room:leave", ""): (lambda ids, role: {}, (OK, OK, OK, OK)),
}
LAST = [("mod:kick", ""), ("room:end", ""), ("room:leave", "")]


def test_the_table_covers_every_request():
    assert {event for event, _ in TABLE} == set(REQUESTS)


async def test_every_request_by_every_role(server):
    school = await seed_school(server, parents_invited=True)
    async with server.db() as db:
        classmate_user = await add_user(db, "student", "Trần Gia Huy")
        db.add(Enrollment(class_id=school.school_class.id, student_id=classmate_user.id))
        await db.commit()
    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    clients: dict[str, LiveClient] = {"teacher": teacher}
    clients["student"] = await admitted(teacher, await server.logged_in(school.student), session_id)
    clients["guest"] = await admitted(teacher, await server.logged_in(school.parent), session_id)
    classmate = await admitted(teacher, await server.logged_in(classmate_user), session_id)
    clients["observer"] = await enter(await server.logged_in(school.observer), session_id)
    for role, client in clients.items():
        assert (await client.wait_for("room:state"))["you"]["role"] == role
    ids: Ids = {role: client.participant_id for role, client in clients.items()}
    ids["classmate"] = classmate.participant_id
    ids["message"] = (await teacher.ok("chat:send", {"text": "Bài hôm nay: hàm số"}))["message_id"]
    await classmate.ok("hand:raise")  # someone else's hand, for the learners to (not) lower

    wrong: list[str] = []
    done: set[tuple[str, str, str]] = set()

    async def run(key: tuple[str, str], roles=ROLES) -> None:
        payload_of, expected = TABLE[key]
        for role in roles:
            want = expected[ROLES.index(role)]
            answer = await clients[role].call(key[0], payload_of(ids, role))
            assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), (key, role, answer)
            got = OK if answer["ok"] else answer["error"]["code"]
            if answer["ok"] and key[0] == "poll:open":
                ids["poll"] = answer["data"]["poll_id"]
            if not answer["ok"]:
                assert answer["error"]["message"], (key, role, answer)
            if got != want:
                wrong.append(f"{key[0]} ({key[1] or '-'}) as {role}: expected {want}, got {got}: {answer}")
            done.add((*key, role))

    for key in TABLE:
        if key not in LAST:
            await run(key)
    # The classmate is kicked only after everyone else was refused; the end is refused to all but the
    # teacher; everyone leaves; the teacher comes back on a fresh connection and ends the period.
    await run(("mod:kick", ""), ["student", "observer", "guest", "teacher"])
    await run(("room:end", ""), ["student", "observer", "guest"])
    await run(("room:leave", ""), ["student", "observer", "guest", "teacher"])
    await teacher.close()
    clients["teacher"] = await enter(teacher_person, session_id)
    await clients["teacher"].wait_for("room:state")
    await run(("room:end", ""), ["teacher"])

    assert not wrong, "\n".join(wrong)
    assert done == {(*key, role) for key in TABLE for role in ROLES}
