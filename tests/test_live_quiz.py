"""Quizzes in the room with real Socket.IO clients: questions from the bank (choice, true/false, text, number),
all at once or one at a time with a time per question, scores, the reveal, and the records of every answer."""

from __future__ import annotations

import json
import time

import msgpack
from sqlalchemy import select

from liveclass.models import Enrollment, SessionEvent
from signaling.events import ListSink
from signaling.polls import Poll, normalise_text, parse_number
from signaling.protocol import PollAnswer, PollOpen, RoomError, parse
from signaling.room import Room
from signaling.room_state import restore, snapshot
from tests.helpers import add_user, eventually, seed_school
from tests.live import admitted, enter
from tests.rooms import class_in_progress

QUIZ = [
    {
        "kind": "multiple",
        "text": "Những số nào là số nguyên tố?",
        "options": ["2", "4", "5", "9"],
        "correct": ["A", "C"],
        "points": 2,
        "explanation": "4 = 2·2 và 9 = 3·3.",
        "bank_id": 11,
    },
    {"kind": "text", "text": "Thủ đô của Việt Nam là thành phố nào?", "correct": ["Hà Nội", "Ha Noi"], "points": 1},
    {
        "kind": "number",
        "text": "Số π làm tròn đến hàng phần trăm?",
        "correct": ["3.14"],
        "tolerance": 0.005,
        "points": 1,
    },
]


async def _poll_records(server, session_id: int, at_least: int = 0) -> list[SessionEvent]:
    """The session's poll records (waiting, up to 5 s, for `at_least` of them: what a timer did is written
    in the background)."""

    async def stored() -> list[SessionEvent]:
        async with server.db() as db:
            rows = (
                (
                    await db.execute(
                        select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        return [r for r in rows if r.type.startswith("poll_")]

    async def enough() -> bool:
        return len(await stored()) >= at_least

    await eventually(enough, 5, f"{at_least} poll records")
    return await stored()


async def _class_of_three(server):
    school = await seed_school(server, parents_invited=True)
    async with server.db() as db:
        huy = await add_user(db, "student", "Trần Gia Huy")
        trang = await add_user(db, "student", "Lê Thu Trang")
        db.add_all([Enrollment(class_id=school.school_class.id, student_id=u.id) for u in (huy, trang)])
        await db.commit()
    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    clients = {"teacher": teacher}
    for name, user in (("anh", school.student), ("huy", huy), ("trang", trang), ("parent", school.parent)):
        clients[name] = await admitted(teacher, await server.logged_in(user), session_id)
    clients["observer"] = await enter(await server.logged_in(school.observer), session_id)
    await clients["observer"].wait_for("room:state")
    return school, session_id, clients, {"huy": huy, "trang": trang}


async def test_a_three_question_quiz_graded_scored_revealed_and_recorded(server):
    school, session_id, c, users = await _class_of_three(server)
    teacher, anh, huy, trang, parent, observer = (
        c[k] for k in ("teacher", "anh", "huy", "trang", "parent", "observer")
    )
    poll_id = (await teacher.ok("poll:open", {"questions": QUIZ, "title": "Kiểm tra 5 phút", "time_limit": 300}))[
        "poll_id"
    ]
    shown = (await anh.wait_for("poll:opened"))["poll"]
    assert shown["title"] == "Kiểm tra 5 phút" and shown["pace"] == "all" and 290 < shown["deadline_in"] <= 300
    assert [q["kind"] for q in shown["questions"]] == ["multiple", "text", "number"]
    assert shown["questions"][0]["options"] == [
        {"id": "A", "text": "2"},
        {"id": "B", "text": "4"},
        {"id": "C", "text": "5"},
        {"id": "D", "text": "9"},
    ]
    for client in (anh, parent, observer):  # no spoilers before the reveal
        seen = client.events("poll:opened")[-1]["poll"] if client is not anh else shown
        assert all(q["correct"] is None and q["explanation"] is None for q in seen["questions"]), client
        assert "Hà Nội" not in json.dumps(seen, ensure_ascii=False)
    assert (await parent.wait_for("poll:opened"))["poll"]["may_answer"] is False
    assert (await teacher.wait_for("poll:opened"))["poll"]["questions"][1]["correct"] == ["Hà Nội", "Ha Noi"]

    # Ánh: all right (a text written differently, a number within the tolerance). Huy: partly. Trang: nothing.
    await anh.ok("poll:answer", {"poll_id": poll_id, "question": 0, "choices": ["C", "A"]})
    await anh.ok("poll:answer", {"poll_id": poll_id, "question": 1, "text": "  hà   NỘI "})
    await anh.ok("poll:answer", {"poll_id": poll_id, "question": 2, "text": "3,14"})
    await huy.ok("poll:answer", {"poll_id": poll_id, "question": 0, "choices": ["A"]})
    await huy.ok("poll:answer", {"poll_id": poll_id, "question": 1, "text": "Ha Noi"})
    await huy.ok("poll:answer", {"poll_id": poll_id, "question": 2, "text": "3.2"})
    assert await huy.refused("poll:answer", {"poll_id": poll_id, "question": 1, "text": "x" * 501}) == "answer_too_long"
    assert await huy.refused("poll:answer", {"poll_id": poll_id, "question": 2, "text": "ba phẩy"}) == "not_a_number"
    counts = await teacher.wait_for("poll:counts", lambda d: d["answered"] == 2 and d["complete"] == 2)
    assert counts["eligible"] == 3 and [p["name"] for p in counts["not_answered"]] == ["Lê Thu Trang"]
    assert [q["counts"] for q in counts["questions"]] == [
        {"A": 2, "B": 0, "C": 1, "D": 0},
        {"ha noi": 1, "hà nội": 1},
        {"3.14": 1, "3.2": 1},
    ]
    assert [q["right"] for q in counts["questions"]] == [1, 2, 1]
    assert {s["name"]: (s["score"], s["right"]) for s in counts["scores"]} == {
        "Phạm Ngọc Ánh": (4, 3),
        "Trần Gia Huy": (1, 1),
    }

    # Reveal with the answers: each student sees their own result, score and the explanations; the class the
    # counts; nobody but the teacher a name.
    await teacher.ok("poll:reveal", {"poll_id": poll_id, "show_correct": True})
    results = {k: (await c[k].wait_for("poll:results"))["poll"] for k in c}
    mine = results["anh"]["mine"]
    assert (mine["score"], mine["max_score"], mine["right"]) == (4, 4, 3)
    assert [mine["answers"][str(i)]["correct"] for i in range(3)] == [True, True, True]
    assert results["huy"]["mine"]["score"] == 1 and results["huy"]["mine"]["answers"]["2"]["correct"] is False
    assert results["trang"]["mine"] is None
    for k in ("anh", "huy", "trang", "parent", "observer"):
        assert results[k]["questions"][0]["explanation"] == "4 = 2·2 và 9 = 3·3."
        assert results[k]["results"]["questions"][1]["counts"] == {"ha noi": 1, "hà nội": 1}
        text = json.dumps([d for e, d in c[k].received if e.startswith("poll:")], ensure_ascii=False)
        assert "Trần Gia Huy" not in text and "Lê Thu Trang" not in text, k

    records = await _poll_records(server, session_id)
    assert [r.type for r in records] == ["poll_opened"] + ["poll_answered"] * 6 + ["poll_closed", "poll_revealed"]
    opened = records[0].data
    assert opened["quick"] is False and opened["time_limit"] == 300 and opened["title"] == "Kiểm tra 5 phút"
    assert [q["text"] for q in opened["questions"]] == [q["text"] for q in QUIZ]
    assert opened["questions"][2]["correct"] == ["3.14"] and opened["questions"][0]["bank_id"] == 11
    answers = {
        (r.actor_id, r.data["question"]): (r.data["choices"], r.data["text"], r.data["correct"], r.data["points"])
        for r in records[1:7]
    }
    assert answers == {
        (school.student.id, 0): (["A", "C"], None, True, 2),
        (school.student.id, 1): (None, "hà NỘI", True, 1),
        (school.student.id, 2): (None, "3,14", True, 1),
        (users["huy"].id, 0): (["A"], None, False, 0),
        (users["huy"].id, 1): (None, "Ha Noi", True, 1),
        (users["huy"].id, 2): (None, "3.2", False, 0),
    }
    closed = records[7].data
    assert closed["not_answered_user_ids"] == [users["trang"].id] and closed["answered"] == 2
    assert [q["right"] for q in closed["questions"]] == [1, 2, 1]


async def test_one_question_at_a_time_moves_on_when_its_time_is_up(server):
    school, session_id, c, users = await _class_of_three(server)
    teacher, anh, huy = c["teacher"], c["anh"], c["huy"]
    quiz = [
        {"kind": "truefalse", "text": "Nước sôi ở 100 °C (áp suất thường).", "correct": ["true"], "points": 1},
        {"kind": "single", "text": "3 × 4 = ?", "options": ["7", "12", "34"], "correct": ["B"], "points": 1},
    ]
    poll_id = (await teacher.ok("poll:open", {"questions": quiz, "seconds_per_question": 5, "final": True}))["poll_id"]
    first = (await anh.wait_for("poll:opened"))["poll"]
    assert first["pace"] == "one" and first["current"] == 0
    assert [q["open"] for q in first["questions"]] == [True, False]
    await anh.ok("poll:answer", {"poll_id": poll_id, "question": 0, "choices": ["true"]})
    assert await anh.refused("poll:answer", {"poll_id": poll_id, "question": 0, "choices": ["false"]}) == "answer_final"
    assert (
        await anh.refused("poll:answer", {"poll_id": poll_id, "question": 1, "choices": ["B"]})
        == "not_current_question"
    )
    assert await huy.refused("poll:next", {"poll_id": poll_id}) == "forbidden"

    # Nobody touches anything: after 5 s the server shows the second question, to everyone.
    began = time.monotonic()
    second = (await huy.wait_for("poll:updated", timeout=10))["poll"]
    waited = time.monotonic() - began
    assert second["current"] == 1 and [q["open"] for q in second["questions"]] == [False, True]
    assert 3.0 < waited < 8.0, waited
    assert (
        await huy.refused("poll:answer", {"poll_id": poll_id, "question": 0, "choices": ["true"]})
        == "not_current_question"
    )
    await huy.ok("poll:answer", {"poll_id": poll_id, "question": 1, "choices": ["B"]})
    # ... and after the last question's time the poll closes by itself.
    closed = (await anh.wait_for("poll:closed", timeout=10))["poll"]
    assert closed["state"] == "closed" and closed["may_answer"] is False
    assert await anh.refused("poll:answer", {"poll_id": poll_id, "question": 1, "choices": ["B"]}) == "poll_closed"
    records = await _poll_records(server, session_id, at_least=5)
    assert [r.type for r in records] == [
        "poll_opened",
        "poll_answered",
        "poll_question",
        "poll_answered",
        "poll_closed",
    ]
    assert records[2].data == {"poll_id": poll_id, "question": 1} and records[2].actor_id is None
    assert records[-1].data["reason"] == "time_up"

    # The teacher can move on sooner: poll:next on the last question closes the poll.
    poll_id = (await teacher.ok("poll:open", {"questions": quiz, "seconds_per_question": 60}))["poll_id"]
    assert (await teacher.ok("poll:next", {"poll_id": poll_id}))["current"] == 1
    assert (await teacher.ok("poll:next", {"poll_id": poll_id}))["state"] == "closed"


async def test_a_question_that_cannot_be_asked_is_refused_with_its_number(server):
    school, session_id, c, users = await _class_of_three(server)
    teacher = c["teacher"]
    bad = [
        ({"kind": "single", "text": "?", "options": ["x"]}, "invalid_question"),
        ({"kind": "single", "text": "?", "options": ["x", "y"], "correct": ["C"]}, "invalid_question"),
        ({"kind": "single", "text": "?", "options": ["x", "y"], "correct": ["A", "B"]}, "invalid_question"),
        ({"kind": "number", "text": "?", "correct": ["bốn"]}, "invalid_question"),
        ({"kind": "text", "text": "?", "points": 2}, "invalid_question"),
        ({"kind": "text", "text": "?", "image_url": "https://tracker.example/x.png"}, "invalid_payload"),
    ]
    for question, code in bad:
        answer = await teacher.call("poll:open", {"questions": [QUIZ[1], question]})
        assert not answer["ok"] and answer["error"]["code"] == code, (question, answer)
        if code == "invalid_question":
            assert answer["error"]["question"] == 1 and answer["error"]["message"].startswith("Question 2")
    assert (
        await teacher.refused("poll:open", {"questions": [QUIZ[1]], "time_limit": 60, "seconds_per_question": 10})
        == "invalid_poll"
    )
    assert await teacher.refused("poll:open", {"kind": "abcd", "questions": [QUIZ[1]]}) == "invalid_poll"
    # A quiz of 20 long questions is not too large; 21 questions are refused.
    long = {
        "kind": "single",
        "text": "Câu hỏi dài " * 80,
        "options": ["Lựa chọn dài " * 15] * 6,
        "correct": ["A"],
        "explanation": "Giải thích " * 90,
    }
    assert (await teacher.ok("poll:open", {"questions": [long] * 20}))["poll_id"]
    assert (await c["anh"].wait_for("poll:opened"))["poll"]["questions"][19]["text"].startswith("Câu hỏi dài")


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_after_the_time_limit_is_refused_even_if_the_timer_is_late():
    clock = _Clock()
    room, teacher, student = class_in_progress(clock)
    poll_id = room.handle(teacher, "poll:open", parse(PollOpen, {"questions": QUIZ, "time_limit": 60}))["poll_id"]
    assert room.poll_deadline() == 1060.0
    clock.now = 1059.9
    room.handle(student, "poll:answer", parse(PollAnswer, {"poll_id": poll_id, "question": 1, "text": "Hà Nội"}))
    clock.now = 1060.0  # no timer ran
    try:
        room.handle(student, "poll:answer", parse(PollAnswer, {"poll_id": poll_id, "question": 2, "text": "3.14"}))
    except RoomError as exc:
        assert exc.code == "poll_closed"
    else:
        raise AssertionError("an answer after the time limit was taken")
    assert room.poll.state == "closed" and room.poll_deadline() is None
    closed = [e for e in room.sink.events if e.type == "poll_closed"]
    assert len(closed) == 1 and closed[0].data["reason"] == "time_up" and closed[0].data["answered"] == 1


def test_a_quiz_survives_a_move_and_an_old_nodes_quick_poll_still_reads():
    clock = _Clock()
    room, teacher, student = class_in_progress(clock)
    poll_id = room.handle(teacher, "poll:open", parse(PollOpen, {"questions": QUIZ, "seconds_per_question": 30}))[
        "poll_id"
    ]
    room.handle(student, "poll:answer", parse(PollAnswer, {"poll_id": poll_id, "question": 0, "choices": ["A"]}))
    state = msgpack.unpackb(msgpack.packb(snapshot(room)), strict_map_key=False)
    moved = Room(7, ListSink(), clock=clock)
    restore(moved, state)
    assert moved.poll.pace == "one" and moved.poll_deadline() == 1030.0
    assert moved.poll.answers[2][0].choices == ["A"]

    old = {
        "poll_id": "q7-1-abc",
        "kind": "abcd",
        "options": ["A", "B", "C"],
        "multiple": False,
        "anonymous": False,
        "correct": ["B"],
        "points": 1.0,
        "opened_at": 5.0,
        "opened_by": "Cô Hà",
        "state": "open",
        "closed_at": None,
        "revealed": False,
        "show_correct": False,
        "answers": [
            {
                "user_id": 2,
                "participant_id": "p",
                "name": "Ánh",
                "personal_id": "02",
                "choices": ["B"],
                "at": 6.0,
                "correct": True,
                "points": 1.0,
                "changes": 0,
            }
        ],
    }
    poll = Poll.from_dict(old)
    assert poll.quick and poll.questions[0].choice_ids == ["A", "B", "C"] and poll.answers[2][0].correct


def test_typed_answers_compare_as_a_teacher_would():
    assert normalise_text("  Hà   NỘI ") == normalise_text("hà nội")
    assert normalise_text("bà") != normalise_text("ba")  # accents are meaning in Vietnamese
    assert [parse_number(t) for t in ("3,5", " 3.5 ", "1 000", "-2", "3,5,1", "abc", "inf", "")] == [
        3.5,
        3.5,
        1000.0,
        -2.0,
        None,
        None,
        None,
        None,
    ]
