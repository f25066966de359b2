"""Quick polls ("Câu hỏi nhanh") with real Socket.IO clients: the teacher opens, students answer with one tap,
the teacher sees live counts, closes and reveals; every answer is a record."""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile

import msgpack
import openpyxl
from sqlalchemy import select

from liveclass.models import AuditEntry, Enrollment, SessionEvent
from signaling.events import ListSink
from signaling.protocol import (
    PollAnswer,
    PollOpen,
    PollRef,
    RoomError,
    parse,
)
from signaling.room import Room
from signaling.room_state import restore, snapshot
from tests.helpers import add_user, seed_school
from tests.live import LiveClient, admitted, enter
from tests.rooms import claims, class_in_progress

STUDENTS = 45


async def _records(server, session_id: int, prefix: str = "poll_") -> list[SessionEvent]:
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
    return [r for r in rows if r.type.startswith(prefix)]


async def test_a_quick_poll_from_open_to_reveal(server):
    school = await seed_school(server, parents_invited=True)
    async with server.db() as db:
        classmate_user = await add_user(db, "student", "Trần Gia Huy")
        late_user = await add_user(db, "student", "Lê Thu Trang")
        db.add_all([Enrollment(class_id=school.school_class.id, student_id=u.id) for u in (classmate_user, late_user)])
        await db.commit()
    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    anh = await admitted(teacher, await server.logged_in(school.student), session_id)
    huy = await admitted(teacher, await server.logged_in(classmate_user), session_id)
    parent = await admitted(teacher, await server.logged_in(school.parent), session_id)
    observer = await enter(await server.logged_in(school.observer), session_id)
    assert (await observer.wait_for("room:state"))["poll"] is None

    opened = await teacher.ok("poll:open", {"kind": "abcd", "correct": ["B"], "points": 2})
    poll_id = opened["poll_id"]
    mine = await teacher.wait_for("poll:opened")
    assert mine["poll"]["correct"] == ["B"] and mine["poll"]["options"] == ["A", "B", "C", "D"]
    assert mine["poll"]["results"]["not_answered"] and mine["poll"]["results"]["eligible"] == 2
    for client in (anh, huy, parent, observer):
        seen = (await client.wait_for("poll:opened"))["poll"]
        assert seen["poll_id"] == poll_id and seen["correct"] is None and seen["results"] is None  # no spoiler
        assert seen["may_answer"] is (client in (anh, huy))
    assert await teacher.refused("poll:open", {"kind": "truefalse"}) == "poll_open"

    # One tap; changeable until close; clear refusals.
    assert await anh.ok("poll:answer", {"poll_id": poll_id, "choices": ["A"]}) == {
        "poll_id": poll_id,
        "question": 0,
        "choices": ["A"],
        "text": None,
        "changed": True,
    }
    assert (await anh.ok("poll:answer", {"poll_id": poll_id, "choices": ["B"]}))["changed"] is True
    assert await huy.refused("poll:answer", {"poll_id": poll_id, "choices": ["E"]}) == "unknown_choice"
    assert await huy.refused("poll:answer", {"poll_id": poll_id, "choices": ["A", "C"]}) == "single_choice"
    assert await huy.refused("poll:answer", {"poll_id": "q9-1-abc", "choices": ["A"]}) == "unknown_poll"
    assert (
        await huy.refused("poll:answer", {"poll_id": poll_id, "choices": ["A"], "participant_id": anh.participant_id})
        == "invalid_payload"
    )
    assert await parent.refused("poll:answer", {"poll_id": poll_id, "choices": ["A"]}) == "forbidden"
    assert await observer.refused("poll:answer", {"poll_id": poll_id, "choices": ["A"]}) == "forbidden"
    await huy.ok("poll:answer", {"poll_id": poll_id, "choices": ["C"]})
    counts = await teacher.wait_for("poll:counts", lambda d: d["answered"] == 2)
    assert counts["counts"] == {"A": 0, "B": 1, "C": 1, "D": 0} and counts["not_answered"] == []
    assert {a["name"]: a["choices"] for a in counts["answers"]} == {"Phạm Ngọc Ánh": ["B"], "Trần Gia Huy": ["C"]}

    # A late joiner finds the open poll in room:state and answers; the teacher sees them until they do.
    trang = await admitted(teacher, await server.logged_in(late_user), session_id)
    state = await trang.wait_for("room:state")
    assert state["poll"]["poll_id"] == poll_id and state["poll"]["may_answer"] and state["poll"]["mine"] is None
    waiting = await teacher.wait_for("poll:counts", lambda d: d["eligible"] == 3)
    assert [p["name"] for p in waiting["not_answered"]] == ["Lê Thu Trang"]
    await trang.ok("poll:answer", {"poll_id": poll_id, "choices": ["B"]})
    await teacher.wait_for("poll:counts", lambda d: d["answered"] == 3 and d["counts"]["B"] == 2)

    # Close: no more answers. Nobody but the teacher has seen any count or name so far.
    assert await teacher.ok("poll:close", {"poll_id": poll_id}) == {"poll_id": poll_id, "state": "closed"}
    for client in (anh, huy, trang, parent, observer):
        closed = (await client.wait_for("poll:closed"))["poll"]
        assert closed["state"] == "closed" and closed["results"] is None and closed["may_answer"] is False
        assert not client.events("poll:counts")
    assert await anh.refused("poll:answer", {"poll_id": poll_id, "choices": ["C"]}) == "poll_closed"

    # Reveal with the correct answer: counts to all, never names; each student learns if they were right.
    assert await teacher.ok("poll:reveal", {"poll_id": poll_id, "show_correct": True}) == {
        "poll_id": poll_id,
        "show_correct": True,
    }
    results = {}
    for client in (anh, huy, trang, parent, observer, teacher):
        results[client] = (await client.wait_for("poll:results"))["poll"]
        assert results[client]["results"]["counts"] == {"A": 0, "B": 2, "C": 1, "D": 0}
        assert results[client]["correct"] == ["B"]
    mine = results[anh]["mine"]
    assert {k: mine[k] for k in ("choices", "correct", "points", "score", "max_score")} == {
        "choices": ["B"],
        "correct": True,
        "points": 2,
        "score": 2,
        "max_score": 2,
    }
    assert results[huy]["mine"]["correct"] is False and results[huy]["mine"]["points"] == 0
    for client in (anh, huy, trang, parent, observer):  # poll events never name anyone to the class
        sent = [d for e, d in client.received if e.startswith("poll:")]
        text = json.dumps(sent, ensure_ascii=False)
        assert not any(name in text for name in ("Phạm Ngọc Ánh", "Trần Gia Huy", "Lê Thu Trang")), client
        assert "answers" not in results[client]["results"] and "not_answered" not in results[client]["results"]
    assert (await huy.ok("room:sync"))["poll"]["mine"]["correct"] is False  # also after a resync

    # The records: opened, every answer (the change too), closed with counts, revealed.
    records = await _records(server, session_id)
    assert [r.type for r in records] == [
        "poll_opened",
        "poll_answered",
        "poll_answered",
        "poll_answered",
        "poll_answered",
        "poll_closed",
        "poll_revealed",
    ]
    assert {
        k: records[0].data[k]
        for k in ("poll_id", "kind", "options", "multiple", "anonymous", "correct", "points", "quick")
    } == {
        "poll_id": poll_id,
        "kind": "abcd",
        "options": ["A", "B", "C", "D"],
        "multiple": False,
        "anonymous": False,
        "correct": ["B"],
        "points": 2,
        "quick": True,
    }
    assert records[0].data["questions"] == [
        {
            "kind": "single",
            "text": "",
            "options": ["", "", "", ""],
            "correct": ["B"],
            "tolerance": None,
            "points": 2,
            "explanation": None,
            "image_url": None,
            "bank_id": None,
        }
    ]
    answered = [
        (r.actor_id, r.data["choices"], r.data["correct"], r.data["points"], r.data["changed"]) for r in records[1:5]
    ]
    assert answered == [
        (school.student.id, ["A"], False, 0, False),
        (school.student.id, ["B"], True, 2, True),
        (classmate_user.id, ["C"], False, 0, False),
        (late_user.id, ["B"], True, 2, False),
    ]
    assert all(abs(r.data["answered_at"] - r.at.timestamp()) < 0.01 for r in records[1:5])
    assert records[5].data["counts"] == {"A": 0, "B": 2, "C": 1, "D": 0} and records[5].data["answered"] == 3
    assert records[5].data["not_answered_user_ids"] == []
    assert records[6].data == {"poll_id": poll_id, "show_correct": True}

    # polls.xlsx (its own route, audited, and in the session's ZIP) holds what was sent; IDs stay text.
    response = await teacher_person.request("GET", f"/sessions/{session_id}/polls.xlsx")
    assert response.status == 200, await response.text()
    from_route = await response.read()
    response = await teacher_person.request("GET", f"/sessions/{session_id}/export")
    assert response.status == 200
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert json.loads(archive.read("manifest.json"))["counts"]["polls"] == 1
    for data in (from_route, archive.read("polls.xlsx")):
        book = openpyxl.load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["Câu hỏi", "Câu trả lời", "Điểm"]  # questions, answers, scores
        summary = list(book["Câu hỏi"].iter_rows(values_only=True))
        assert summary[1][:2] == (1, 1) and summary[1][7] == "A, B, C, D" and summary[1][8] == "B"
        assert summary[1][9] == 2 and summary[1][10] == "A: 0; B: 2; C: 1; D: 0" and summary[1][11:14] == (3, 2, 0)
        rows = {r[2]: r for r in list(book["Câu trả lời"].iter_rows(values_only=True))[1:]}
        assert {name: (r[3], r[4], r[5], r[6], r[8]) for name, r in rows.items()} == {
            "Phạm Ngọc Ánh": (school.student.personal_id, "B", "Có / Yes", 2, 1),
            "Trần Gia Huy": (classmate_user.personal_id, "C", "Không / No", 0, 0),
            "Lê Thu Trang": (late_user.personal_id, "B", "Có / Yes", 2, 0),
        }
        id_cell = next(c for c in book["Câu trả lời"]["D"][1:] if c.value == school.student.personal_id)
        assert id_cell.data_type == "s" and id_cell.number_format == "@"
        scores = {r[2]: (r[4], r[5]) for r in list(book["Điểm"].iter_rows(values_only=True))[1:]}
        assert scores == {"Phạm Ngọc Ánh": (2, 2), "Trần Gia Huy": (0, 2), "Lê Thu Trang": (2, 2)}
    async with server.db() as db:
        audits = (await db.execute(select(AuditEntry).where(AuditEntry.action == "polls_downloaded"))).scalars().all()
    assert len(audits) == 1

    # A new poll after the last one: true/false, several may not be chosen.
    assert await teacher.refused("poll:open", {"kind": "truefalse", "multiple": True}) == "invalid_poll"
    tf = await teacher.ok("poll:open", {"kind": "truefalse"})
    assert (await anh.wait_for("poll:opened", lambda d: d["poll"]["poll_id"] == tf["poll_id"]))["poll"]["options"] == [
        "true",
        "false",
    ]
    await anh.ok("poll:answer", {"poll_id": tf["poll_id"], "choices": ["true"]})
    assert await anh.refused("poll:answer", {"poll_id": poll_id, "choices": ["B"]}) == "unknown_poll"


async def test_an_anonymous_poll_names_nobody(server):
    school = await seed_school(server)
    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    anh = await admitted(teacher, await server.logged_in(school.student), session_id)
    observer = await enter(await server.logged_in(school.observer), session_id)
    await observer.wait_for("room:state")
    start = {c: c.mark() for c in (teacher, anh, observer)}
    poll_id = (
        await teacher.ok(
            "poll:open", {"kind": "abcd", "options": 3, "multiple": True, "anonymous": True, "correct": ["A", "C"]}
        )
    )["poll_id"]
    await anh.ok("poll:answer", {"poll_id": poll_id, "choices": ["C", "A", "A"]})  # each once, in order
    counts = await teacher.wait_for("poll:counts", lambda d: d["answered"] == 1)
    assert counts["counts"] == {"A": 1, "B": 0, "C": 1} and counts["answers"] is None  # who chose what: nobody
    await teacher.ok("poll:reveal", {"poll_id": poll_id, "show_correct": True})
    mine = (await anh.wait_for("poll:results"))["poll"]["mine"]
    assert mine["choices"] == ["A", "C"] and mine["correct"] is True
    await observer.wait_for("poll:results")
    # Nothing the class or the observer received about the poll carries a name or a participant id.
    for client in (anh, observer):
        sent = [d for e, d in client.received[start[client] :] if e.startswith("poll:")]
        text = json.dumps(sent, ensure_ascii=False)
        assert "Phạm Ngọc Ánh" not in text and anh.participant_id not in text and "name" not in text
    # The teacher sees counts and who has not answered, never who chose what.
    for event, data in teacher.received[start[teacher] :]:
        if event.startswith("poll:"):
            assert (data.get("poll") or {}).get("results", data)["answers"] is None, (event, data)
    records = await _records(server, session_id)
    assert [r.type for r in records] == ["poll_opened", "poll_answered", "poll_closed", "poll_revealed"]
    assert records[1].actor_id == school.student.id and records[1].data["choices"] == ["A", "C"]


async def test_45_students_answer_within_one_second(server):
    school = await seed_school(server)
    async with server.db() as db:
        students = [await add_user(db, "student", f"Học Sinh {i:02d}") for i in range(STUDENTS)]
        db.add_all([Enrollment(class_id=school.school_class.id, student_id=s.id) for s in students])
        await db.commit()
    teacher_person, people = await asyncio.gather(
        server.logged_in(school.teacher), asyncio.gather(*(server.logged_in(s) for s in students))
    )
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    learners = await asyncio.gather(*(enter(p, session_id) for p in people))
    await teacher.wait_for("lobby:updated", lambda d: len(d["lobby"]) == STUDENTS)
    await teacher.ok("lobby:admit", {"all": True})
    await asyncio.gather(*(s.wait_for("room:state") for s in learners))

    poll_id = (await teacher.ok("poll:open", {"kind": "abcd", "correct": ["D"]}))["poll_id"]
    await asyncio.gather(*(s.wait_for("poll:opened") for s in learners))
    assert (await teacher.wait_for("poll:opened"))["poll"]["results"]["eligible"] == STUDENTS
    mark = teacher.mark()
    choice_of = {s: "ABCD"[i % 4] for i, s in enumerate(learners)}

    async def tap(student: LiveClient, delay: float) -> float:
        await asyncio.sleep(delay)  # the answers spread over a second, as a class taps
        await student.ok("poll:answer", {"poll_id": poll_id, "choices": [choice_of[student]]})
        return time.monotonic()

    begin = time.monotonic()
    done = await asyncio.gather(*(tap(s, i / STUDENTS) for i, s in enumerate(learners)))  # all within 1 s
    last_ack = max(done)
    expected = {c: sum(1 for v in choice_of.values() if v == c) for c in "ABCD"}
    final = await teacher.wait_for("poll:counts", lambda d: d["answered"] == STUDENTS, after=mark, timeout=5)
    exact_after = time.monotonic() - last_ack
    assert final["counts"] == expected and final["not_answered"] == []
    assert exact_after < 1.0, f"the teacher's counts were exact {exact_after:.2f} s after the last answer"
    sent = [d for e, d in teacher.received[mark:] if e == "poll:counts"]
    print(
        f"{STUDENTS} answers in {last_ack - begin:.2f} s: {len(sent)} poll:counts; exact {exact_after:.3f} s "
        f"after the last answer's ack"
    )
    assert len(sent) <= 12, f"{len(sent)} poll:counts for {STUDENTS} answers in {last_ack - begin:.2f} s"
    assert {a["name"]: a["choices"][0] for a in final["answers"]} == {
        s.person.user.full_name: c for s, c in choice_of.items()
    }
    await teacher.ok("poll:close", {"poll_id": poll_id})
    records = await _records(server, session_id, "poll_answered")
    assert len(records) == STUDENTS
    assert {r.actor_id: r.data["choices"][0] for r in records} == {s.person.user.id: c for s, c in choice_of.items()}
    assert sum(1 for r in records if r.data["correct"]) == expected["D"]


def test_an_open_poll_survives_a_move_to_another_node():
    room, teacher, student = class_in_progress()
    poll_id = room.handle(teacher, "poll:open", parse(PollOpen, {"kind": "abcd", "correct": ["A"]}))["poll_id"]
    room.handle(student, "poll:answer", parse(PollAnswer, {"poll_id": poll_id, "choices": ["A"]}))
    state = msgpack.unpackb(msgpack.packb(snapshot(room)), strict_map_key=False)

    moved = Room(7, ListSink())
    seats = restore(moved, state)
    assert moved.poll.poll_id == poll_id and moved.poll.state == "open" and moved.poll_counts_due
    back = moved.arrive("s2", claims(2, "student", "Ánh"), next(s for s in seats if s.user_id == 2).resume_token)
    assert moved.state_for(back)["poll"]["mine"]["choices"] == ["A"]
    teacher_back = moved.arrive(
        "t2", claims(1, "teacher", "Cô Hà"), next(s for s in seats if s.user_id == 1).resume_token
    )
    moved.handle(teacher_back, "poll:close", parse(PollRef, {"poll_id": poll_id}))
    assert [e.type for e in moved.sink.events if e.type.startswith("poll_")] == ["poll_closed"]
    assert moved.sink.events[-1].data["answered"] == 1 and moved.poll_seq == 1


def test_the_schema_refuses_a_participant_field():
    try:
        parse(PollAnswer, {"poll_id": "q1-1-abc", "choices": ["A"], "participant_id": "p2-abc"})
    except RoomError as exc:
        assert exc.code == "invalid_payload" and "participant_id" in exc.message
    else:
        raise AssertionError("a participant field was accepted")
