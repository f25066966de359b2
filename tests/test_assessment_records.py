"""Assessments in the records (issue 14): a session's quick polls and quizzes rebuilt from the poll_* events
(docs/records-archive.md) — the JSON of the session page, polls.xlsx (also in the ZIP), the class's scores
beside attendance, the retention kind `assessments`, and the session page in a real browser.

The events are seeded straight into the store in the shape signaling/polls.py writes them (the spec's
"Records"), on yesterday's archived Toán period of 10A1 (tests/archive_seed.py: Ánh on time, Bảo late,
Chi absent). Seeded on top of it, at the school's clock:
  08:15 quiz "Kiểm tra 15 phút" (3 questions, 10 points): Ánh answers A then B (right, 2), "  hà   NỘI "
        (right, 3), "3,14" (right, 5): 10/10; Bảo answers C (0), "Hải Phòng" (0), no number: 0/10;
        Đức (enrolled, in the room) answers nothing: listed as not answered, 0/10
  08:25 a quick poll as recorded before quizzes existed (no `questions`): correct D, 1 point; Ánh D, Bảo A
"""

from __future__ import annotations

import io
import json
import zipfile

import openpyxl
import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from liveclass.api.archive_schemas import ClassAttendance, SessionAssessments
from liveclass.models import AuditEntry, Enrollment, LiveSession, SessionEvent
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import RoomEvent
from tests.archive_seed import school_time, seed_archived_session
from tests.browser import SCREENSHOTS, needs_chromium, screenshot
from tests.helpers import add_user

QUIZ = {
    "title": "Kiểm tra 15 phút — Chương 3",
    "quick": False,
    "anonymous": False,
    "final": False,
    "pace": "all",
    "time_limit": 600,
    "seconds_per_question": None,
    "questions": [
        {
            "kind": "single",
            "text": "2 + 3 = ?",
            "options": ["4", "5", "6", "7"],
            "correct": ["B"],
            "tolerance": None,
            "points": 2,
            "explanation": "Cộng hai số",
            "image_url": None,
            "bank_id": 7,
        },
        {
            "kind": "text",
            "text": "Thủ đô của Việt Nam là thành phố nào?",
            "options": [],
            "correct": ["Hà Nội"],
            "tolerance": None,
            "points": 3,
            "explanation": None,
            "image_url": None,
            "bank_id": None,
        },
        {
            "kind": "number",
            "text": "Số pi, làm tròn đến hai chữ số thập phân",
            "options": [],
            "correct": ["3.14"],
            "tolerance": 0.005,
            "points": 5,
            "explanation": None,
            "image_url": None,
            "bank_id": None,
        },
    ],
}
OLD_QUICK_POLL = {
    "kind": "abcd",
    "options": ["A", "B", "C", "D"],
    "multiple": False,
    "anonymous": False,
    "correct": ["D"],
    "points": 1,
}


async def seed_assessments(server, school, archived, *, quiz_id: str = "q-quiz", old_id: str = "q-old"):
    """The quiz and the old-format quick poll of the module's docstring, on an archived session. Answers Đức."""
    day = archived.day
    at = lambda hh, mm, ss=0: school_time(day, hh, mm, ss).timestamp()  # noqa: E731
    sid, teacher, anh, bao = archived.session_id, archived.teacher.id, archived.present.id, archived.late.id
    async with server.db() as db:
        duc = await add_user(db, "student", "Hoàng Minh Đức")
        db.add(Enrollment(class_id=school.school_class.id, student_id=duc.id))
        await db.commit()
    duc_id = duc.id

    def event(type_, when, actor=None, target=None, **data):
        return RoomEvent(sid, type_, actor, target, data, when)

    def answer(when, who, question, choices=None, text=None, correct=None, points=None, changed=False):
        return event(
            ev.POLL_ANSWERED,
            when,
            who,
            who,
            poll_id=quiz_id,
            question=question,
            choices=choices,
            text=text,
            correct=correct,
            points=points,
            answered_at=when,
            changed=changed,
        )

    events = [
        event(ev.PARTICIPANT_JOINED, at(8, 14), duc_id, duc_id, room_role="student"),
        event(ev.POLL_OPENED, at(8, 15), teacher, None, poll_id=quiz_id, **QUIZ),
        answer(at(8, 16), anh, 0, choices=["A"], correct=False, points=0),
        answer(at(8, 16, 30), anh, 0, choices=["B"], correct=True, points=2, changed=True),
        answer(at(8, 17), anh, 1, text="hà NỘI", correct=True, points=3),
        answer(at(8, 17, 30), anh, 2, text="3,14", correct=True, points=5),
        answer(at(8, 16, 10), bao, 0, choices=["C"], correct=False, points=0),
        answer(at(8, 18), bao, 1, text="Hải Phòng", correct=False, points=0),
        event(
            ev.POLL_CLOSED,
            at(8, 20),
            teacher,
            None,
            poll_id=quiz_id,
            answered=2,
            eligible=3,
            not_answered_user_ids=[duc_id],
            counts={"A": 0, "B": 1, "C": 1, "D": 0},
            questions=[{"index": 0, "counts": {"B": 1, "C": 1}, "answered": 2, "right": 1}],
        ),
        event(ev.POLL_REVEALED, at(8, 21), teacher, None, poll_id=quiz_id, show_correct=True),
        # Before quizzes: no `questions`, no `question` in the answers.
        event(ev.POLL_OPENED, at(8, 25), teacher, None, poll_id=old_id, **OLD_QUICK_POLL),
        event(
            ev.POLL_ANSWERED,
            at(8, 25, 20),
            anh,
            anh,
            poll_id=old_id,
            choices=["D"],
            correct=True,
            points=1,
            answered_at=at(8, 25, 20),
            changed=False,
        ),
        event(
            ev.POLL_ANSWERED,
            at(8, 25, 40),
            bao,
            bao,
            poll_id=old_id,
            choices=["A"],
            correct=False,
            points=0,
            answered_at=at(8, 25, 40),
            changed=False,
        ),
        event(
            ev.POLL_CLOSED,
            at(8, 26),
            teacher,
            None,
            poll_id=old_id,
            counts={"A": 1, "B": 0, "C": 0, "D": 1},
            answered=2,
            eligible=2,
            not_answered_user_ids=[],
        ),
        event(ev.PARTICIPANT_LEFT, at(8, 44), None, duc_id, reason="ended"),
    ]
    writer = RecordsWriter(server.db)
    for e in events:
        writer.emit(e)
    await writer.flush()
    return duc


@pytest.fixture
async def archived(server, school):
    return await seed_archived_session(server, school)


async def _actions(server, action: str) -> list[AuditEntry]:
    async with server.db() as db:
        return list((await db.execute(select(AuditEntry).where(AuditEntry.action == action))).scalars())


# -- the session's assessments as JSON ---------------------------------------------------------------------
async def test_the_session_assessments_per_question_and_per_student(server, school, archived):
    duc = await seed_assessments(server, school, archived)
    teacher = await server.logged_in(school.teacher)
    answer = await teacher.json("GET", f"/sessions/{archived.session_id}/assessments")
    SessionAssessments.model_validate(answer)  # the documented shape, nothing more
    assert answer["session"]["session_id"] == archived.session_id
    quiz, old = answer["items"]
    anh, bao = archived.present, archived.late

    assert (quiz["number"], quiz["title"], quiz["quick"], quiz["max_score"]) == (1, QUIZ["title"], False, 10)
    assert (quiz["answered"], quiz["eligible"], quiz["revealed"], quiz["show_correct"]) == (2, 3, True, True)
    assert [p["name"] for p in quiz["not_answered"]] == ["Hoàng Minh Đức"]
    single, text, number = quiz["questions"]
    # Every choice counted (0 too), the right one marked; Ánh's last answer only (she changed A → B).
    assert [(c["answer"], c["count"], c["correct"]) for c in single["counts"]] == [
        ("A", 0, False),
        ("B", 1, True),
        ("C", 1, False),
        ("D", 0, False),
    ]
    assert [o["text"] for o in single["options"]] == ["4", "5", "6", "7"] and single["bank_id"] == 7
    assert (single["answered"], single["right"]) == (2, 1)
    by_name = {a["name"]: a for a in single["answers"]}
    assert by_name[anh.full_name]["choices"] == ["B"] and by_name[anh.full_name]["changes"] == 1
    assert by_name[anh.full_name]["answered_at"].startswith(
        (school_time(archived.day, 8, 16, 30)).isoformat().replace("+00:00", "")
    )
    assert by_name[bao.full_name]["choices"] == ["C"] and by_name[bao.full_name]["correct"] is False
    assert by_name[anh.full_name]["personal_id"] == anh.personal_id
    # Typed answers as typed, counted per answer; the number question's tolerance and Ánh's comma decimal.
    assert sorted((c["answer"], c["count"], c["correct"]) for c in text["counts"]) == [
        ("Hải Phòng", 1, False),
        ("hà NỘI", 1, True),
    ]
    assert {a["name"]: a["text"] for a in text["answers"]} == {anh.full_name: "hà NỘI", bao.full_name: "Hải Phòng"}
    assert (number["answered"], number["right"], number["tolerance"]) == (1, 1, 0.005)
    assert number["counts"] == [{"answer": "3,14", "count": 1, "correct": True}]

    scores = {s["name"]: (s["score"], s["max_score"], s["right"], s["answered"]) for s in quiz["scores"]}
    assert scores == {anh.full_name: (10, 10, 3, 3), bao.full_name: (0, 10, 0, 2), duc.full_name: (0, 10, 0, 0)}

    # The quick poll recorded before quizzes existed reads as one single-choice question A–D.
    assert old["quick"] is True and old["title"] is None and old["max_score"] == 1
    [question] = old["questions"]
    assert (question["kind"], [o["id"] for o in question["options"]], question["correct"]) == (
        "single",
        ["A", "B", "C", "D"],
        ["D"],
    )
    assert [(c["answer"], c["count"]) for c in question["counts"]] == [("A", 1), ("B", 0), ("C", 0), ("D", 1)]

    # Over the session: Ánh 11 of 11, Bảo 0 of 11, Đức 0 of the quiz's 10 (he was not there for the poll).
    totals = {s["name"]: (s["score"], s["max_score"], s["polls"], s["polls_answered"]) for s in answer["students"]}
    assert totals == {anh.full_name: (11, 11, 2, 2), bao.full_name: (0, 11, 2, 2), duc.full_name: (0, 10, 1, 0)}

    # Audited; another teacher does not see it; a student may not.
    [entry] = await _actions(server, "assessments_viewed")
    assert entry.actor_id == school.teacher.id and entry.target == f"session:{archived.session_id}"
    other = await server.logged_in(school.other_teacher)
    assert (await other.request("GET", f"/sessions/{archived.session_id}/assessments")).status == 404
    student = await server.logged_in(school.student)
    assert (await student.request("GET", f"/sessions/{archived.session_id}/assessments")).status == 403
    admin = await server.logged_in(school.admin)
    assert (await admin.json("GET", f"/sessions/{archived.session_id}/assessments"))["items"][0]["poll_id"] == "q-quiz"


async def test_a_session_without_polls_has_none(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    answer = await teacher.json("GET", f"/sessions/{archived.session_id}/assessments")
    assert answer["items"] == [] and answer["students"] == []


# -- polls.xlsx, in its own route and in the ZIP ----------------------------------------------------------
def _book(data: bytes) -> openpyxl.Workbook:
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert all(cell.data_type != "f" for sheet in book for row in sheet.iter_rows() for cell in row)
    return book


def _rows(sheet) -> list[tuple]:
    return list(sheet.iter_rows(values_only=True))[1:]


def check_polls_book(data: bytes, archived, duc) -> None:
    book = _book(data)
    assert book.sheetnames == ["Câu hỏi", "Câu trả lời", "Điểm"]
    anh, bao = archived.present, archived.late

    # One row per question: the quiz's three, then the old quick poll.
    summary = _rows(book["Câu hỏi"])
    assert [(r[0], r[1]) for r in summary] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    assert summary[0][2] == QUIZ["title"] and summary[0][6] == "2 + 3 = ?"
    assert summary[0][7] == "A. 4, B. 5, C. 6, D. 7" and summary[0][8] == "B" and summary[0][9] == 2
    assert summary[0][10] == "A: 0; B: 1; C: 1; D: 0" and summary[0][11:14] == (2, 1, 1)
    assert summary[1][5] == "Trả lời ngắn / Short text" and summary[1][8] == "Hà Nội"
    assert summary[2][8] == "3.14 (± 0.005)" and summary[2][11:14] == (1, 1, 2)
    assert summary[3][7] == "A, B, C, D" and summary[3][8] == "D" and summary[3][10] == "A: 1; B: 0; C: 0; D: 1"

    # Every student × question: the final answer, right, points, changes; Đức "not answered" with 0.
    answers = {(r[0], r[1], r[2]): r for r in _rows(book["Câu trả lời"])}
    assert len(answers) == 3 * 3 + 2
    assert answers[(1, 1, anh.full_name)][3:7] == (anh.personal_id, "B. 5", "Có / Yes", 2)
    assert answers[(1, 1, anh.full_name)][8] == 1  # changed once
    assert answers[(1, 2, anh.full_name)][4:7] == ("hà NỘI", "Có / Yes", 3)
    assert answers[(1, 3, anh.full_name)][4:7] == ("3,14", "Có / Yes", 5)
    assert answers[(1, 2, bao.full_name)][4:7] == ("Hải Phòng", "Không / No", 0)
    assert answers[(1, 3, bao.full_name)][4:7] == ("Chưa trả lời / Not answered", None, 0)
    assert answers[(1, 1, duc.full_name)][3:7] == (duc.personal_id, "Chưa trả lời / Not answered", None, 0)
    assert answers[(2, 1, bao.full_name)][4:7] == ("A", "Không / No", 0)
    assert answers[(1, 1, anh.full_name)][7].startswith(archived.day.isoformat() + " 08:16:30")

    # The scores: per student and poll.
    scores = {(r[0], r[2]): (r[3], r[4], r[5], r[6], r[7], r[8]) for r in _rows(book["Điểm"])}
    assert scores == {
        (1, anh.full_name): (anh.personal_id, 10, 10, 3, 3, 3),
        (1, bao.full_name): (bao.personal_id, 0, 10, 0, 2, 3),
        (1, duc.full_name): (duc.personal_id, 0, 10, 0, 0, 3),
        (2, anh.full_name): (anh.personal_id, 1, 1, 1, 1, 1),
        (2, bao.full_name): (bao.personal_id, 0, 1, 0, 1, 1),
    }

    # Personal IDs are text cells, leading zeros kept.
    for sheet, column in (("Câu trả lời", "D"), ("Điểm", "D")):
        cells = [c for c in book[sheet][column][1:]]
        assert cells and all(c.data_type == "s" and c.number_format == "@" and c.value.startswith("00") for c in cells)


async def test_polls_xlsx_and_the_zip_hold_every_answer_and_score(server, school, archived):
    duc = await seed_assessments(server, school, archived)
    teacher = await server.logged_in(school.teacher)
    response = await teacher.request("GET", f"/sessions/{archived.session_id}/polls.xlsx")
    assert response.status == 200
    check_polls_book(await response.read(), archived, duc)
    assert len(await _actions(server, "polls_downloaded")) == 1

    response = await teacher.request("GET", f"/sessions/{archived.session_id}/export")
    assert response.status == 200
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    check_polls_book(archive.read("polls.xlsx"), archived, duc)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["polls"] == 2 and manifest["counts"]["poll_questions"] == 4
    events = [json.loads(line) for line in archive.read("events.jsonl").decode().splitlines()]
    assert sum(1 for e in events if e["type"] == "poll_answered") == 8
    assert len(await _actions(server, "session_exported")) == 1


# -- a class over a date range --------------------------------------------------------------------------
async def test_the_class_summary_has_the_scores_beside_attendance(server, school, archived):
    duc = await seed_assessments(server, school, archived)
    earlier = await seed_archived_session(server, school, days_ago=3)  # no poll in it
    later = await seed_archived_session(server, school, days_ago=2)
    # Two days ago: another quick poll (new format), Ánh wrong → 0 of 4 more.
    sid = later.session_id
    when = school_time(later.day, 8, 30).timestamp()
    quick = {
        "poll_id": "q-later",
        "title": None,
        "quick": True,
        "anonymous": True,
        "final": False,
        "pace": "all",
        "time_limit": None,
        "seconds_per_question": None,
        "questions": [
            {
                "kind": "truefalse",
                "text": "",
                "options": [],
                "correct": ["true"],
                "tolerance": None,
                "points": 4,
                "explanation": None,
                "image_url": None,
                "bank_id": None,
            }
        ],
        "kind": "truefalse",
        "options": ["true", "false"],
        "multiple": False,
        "correct": ["true"],
        "points": 4,
    }
    writer = RecordsWriter(server.db)
    for e in (
        RoomEvent(sid, ev.POLL_OPENED, school.teacher.id, None, quick, when),
        RoomEvent(
            sid,
            ev.POLL_ANSWERED,
            archived.present.id,
            archived.present.id,
            {
                "poll_id": "q-later",
                "question": 0,
                "choices": ["false"],
                "text": None,
                "correct": False,
                "points": 0,
                "answered_at": when + 5,
                "changed": False,
            },
            when + 5,
        ),
        RoomEvent(
            sid,
            ev.POLL_CLOSED,
            school.teacher.id,
            None,
            {"poll_id": "q-later", "answered": 1, "eligible": 1, "not_answered_user_ids": []},
            when + 60,
        ),
    ):
        writer.emit(e)
    await writer.flush()

    teacher = await server.logged_in(school.teacher)
    query = f"?from={earlier.day.isoformat()}&to={archived.day.isoformat()}"
    summary = await teacher.json("GET", f"/classes/{school.school_class.id}/attendance{query}")
    ClassAttendance.model_validate(summary)
    lines = {line["user_id"]: line for line in summary["items"]}
    anh = lines[archived.present.id]
    assert (anh["sessions"], anh["attended"]) == (3, 3)  # attendance as before
    assert (anh["assessments"], anh["assessments_answered"], anh["score"], anh["max_score"]) == (3, 3, 11, 15)
    assert anh["score_rate"] == round(11 / 15, 3) and anh["right_answers"] == 4
    bao = lines[archived.late.id]
    assert (bao["assessments"], bao["assessments_answered"], bao["score"], bao["max_score"], bao["score_rate"]) == (
        2,
        2,
        0,
        11,
        0.0,
    )
    assert (
        lines[duc.id]["assessments"],
        lines[duc.id]["assessments_answered"],
        lines[duc.id]["score"],
        lines[duc.id]["max_score"],
    ) == (1, 0, 0, 10)
    chi = lines[archived.absent.id]  # never there: no assessment, no score (not a zero)
    assert (chi["assessments"], chi["score"], chi["max_score"], chi["score_rate"]) == (0, None, None, None)

    response = await teacher.request("GET", f"/classes/{school.school_class.id}/attendance.xlsx{query}")
    assert response.status == 200
    sheet = _book(await response.read()).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header[-5:] == (
        "Số bài kiểm tra / Assessments",
        "Số bài đã làm / Assessments answered",
        "Tổng điểm / Score",
        "Điểm tối đa / Max score",
        "Tỉ lệ điểm (%) / Score (%)",
    )
    by_id = {r[2]: r for r in rows}
    assert by_id[archived.present.personal_id][-5:] == (3, 3, 11, 15, 73.3)
    assert by_id[archived.late.personal_id][-5:] == (2, 2, 0, 11, 0)
    assert by_id[archived.absent.personal_id][-5:] == (0, 0, None, None, None)
    [entry] = await _actions(server, "class_attendance_downloaded")
    assert entry.actor_id == school.teacher.id


# -- retention ----------------------------------------------------------------------------------------------
async def _poll_events(server, session_id: int) -> int:
    async with server.db() as db:
        return (
            await db.execute(
                select(func.count())
                .select_from(SessionEvent)
                .where(SessionEvent.session_id == session_id, SessionEvent.type.like("poll%"))
            )
        ).scalar_one()


async def _other_events(server, session_id: int) -> int:
    async with server.db() as db:
        return (
            await db.execute(
                select(func.count())
                .select_from(SessionEvent)
                .where(SessionEvent.session_id == session_id, SessionEvent.type.not_like("poll%"))
            )
        ).scalar_one()


async def test_assessments_are_deleted_when_their_period_runs_out_not_before(server, school):
    old = await seed_archived_session(server, school, days_ago=400)
    recent = await seed_archived_session(server, school, days_ago=100)
    await seed_assessments(server, school, old, quiz_id="q-old-quiz", old_id="q-old-old")
    await seed_assessments(server, school, recent, quiz_id="q-recent-quiz", old_id="q-recent-old")
    admin = await server.logged_in(school.admin)
    policies = {p["kind"]: p for p in (await admin.json("GET", "/retention"))["policies"]}
    assert (policies["assessments"]["days"], policies["assessments"]["default_days"]) == (1825, 1825)
    before = {
        s.session_id: (await _poll_events(server, s.session_id), await _other_events(server, s.session_id))
        for s in (old, recent)
    }
    assert before[old.session_id][0] == 13  # 9 of the quiz, 4 of the quick poll

    # The default (5 years): a 400-day-old session keeps its polls (its chat, at 365 days, goes).
    report = await admin.json("POST", "/retention/run")
    assert report["deleted"]["assessments"] == 0 and report["sessions"]["assessments"] == 0
    assert report["deleted"]["chat"] > 0
    assert await _poll_events(server, old.session_id) == before[old.session_id][0]
    assert len((await admin.json("GET", f"/sessions/{old.session_id}/assessments"))["items"]) == 2

    # 300 days: the old session's poll events go, nothing else of it; the 100-day-old one keeps everything.
    shown = await admin.json("PUT", "/retention", json={"assessments": 300})
    assert {p["kind"]: p["days"] for p in shown["policies"]}["assessments"] == 300
    dry = await admin.json("POST", "/retention/run?dry_run=true")
    assert dry["deleted"]["assessments"] == before[old.session_id][0]
    assert await _poll_events(server, old.session_id) == before[old.session_id][0]
    report = await admin.json("POST", "/retention/run")
    assert report["deleted"]["assessments"] == before[old.session_id][0] and report["sessions"]["assessments"] == 1
    assert report["days"]["assessments"] == 300
    assert await _poll_events(server, old.session_id) == 0
    assert await _other_events(server, old.session_id) == before[old.session_id][1]
    assert (await _poll_events(server, recent.session_id), await _other_events(server, recent.session_id)) == before[
        recent.session_id
    ]
    async with server.db() as db:
        assert "assessments" in (await db.get(LiveSession, old.session_id)).purged
    records = await admin.json("GET", f"/sessions/{old.session_id}/records")
    assert "assessments" in records["session"]["purged"]
    assert (await admin.json("GET", f"/sessions/{old.session_id}/assessments"))["items"] == []
    assert len((await admin.json("GET", f"/sessions/{recent.session_id}/assessments"))["items"]) == 2
    [entry, *_] = sorted(await _actions(server, "retention_deleted"), key=lambda e: e.id, reverse=True)
    assert entry.details["deleted"]["assessments"] == before[old.session_id][0]
    again = await admin.json("POST", "/retention/run")
    assert again["deleted"]["assessments"] == 0


# -- the session page in a browser ----------------------------------------------------------------------------
@needs_chromium
async def test_the_session_page_shows_each_question_and_each_students_score(server, school, archived, browser):
    from tests.test_web_archive import go, watch_errors
    from tests.test_web_client import open_as

    await seed_assessments(server, school, archived)
    admin = await open_as(browser, server, school.admin)
    errors = watch_errors(admin)
    await go(admin, f"#/records/{archived.session_id}")
    section = admin.locator("section.assessments")
    await expect(section.get_by_role("heading", name="Câu hỏi và bài kiểm tra")).to_be_visible()
    quiz = section.locator('article[data-poll="q-quiz"]')
    await expect(quiz.get_by_role("heading", level=3)).to_have_text(f"Bài 1: {QUIZ['title']}")

    # Question 1: a bar per choice, B (right, marked in words) and C chosen once each.
    first = quiz.locator('section.question-record[data-question="0"]')
    await expect(first).to_contain_text("2 + 3 = ?")
    await expect(first).to_contain_text("Đáp án đúng: B. 5")
    bars = first.locator("svg.answers-chart g.bar-row")
    await expect(bars).to_have_count(4)
    assert [await bars.nth(i).get_attribute("data-count") for i in range(4)] == ["0", "1", "1", "0"]
    await expect(first.locator('g.bar-row[data-answer="B"]')).to_contain_text("đáp án đúng")
    assert float(await first.locator('g.bar-row[data-answer="B"] rect.bar').get_attribute("width")) > 0
    assert float(await first.locator('g.bar-row[data-answer="A"] rect.bar').get_attribute("width")) == 0

    # Question 2: the typed answers listed with who typed them.
    typed = quiz.locator('section.question-record[data-question="1"] ul.typed-answers')
    await expect(typed).to_contain_text(f"{archived.present.full_name}: hà NỘI")
    await expect(typed).to_contain_text(f"{archived.late.full_name}: Hải Phòng")

    # Every student's score in the quiz; who did not answer is named.
    scores = quiz.locator("table.poll-scores")
    await expect(scores.locator(f'tr[data-user="{archived.present.id}"] td.score')).to_have_text("10/10")
    await expect(scores.locator(f'tr[data-user="{archived.late.id}"] td.score')).to_have_text("0/10")
    await expect(quiz.locator("p.not-answered")).to_contain_text("Hoàng Minh Đức")
    # Over the session (two polls): Ánh 11/11.
    session_scores = section.locator("table.session-scores")
    await expect(session_scores.locator(f'tr[data-user="{archived.present.id}"] td.score')).to_have_text("11/11")
    # The old quick poll is there too, as one question.
    await expect(section.locator('article[data-poll="q-old"] section.question-record')).to_have_count(1)
    # The Excel file is offered.
    link = admin.get_by_role("link", name="Tải câu trả lời và điểm (Excel)")
    await expect(link).to_have_attribute("href", f"/api/v1/sessions/{archived.session_id}/polls.xlsx")
    await screenshot(section, SCREENSHOTS / "archive-assessments-vi.png")

    # The class summary over that day: Ánh's score beside her attendance, and as a percentage.
    day = archived.day.isoformat()
    await go(admin, f"#/records/class/{school.school_class.id}?from={day}&to={day}")
    anh_row = admin.locator(f'table.class-attendance tr[data-user="{archived.present.id}"]')
    await expect(anh_row.locator('td[data-field="score"]')).to_have_text("11/11")
    await expect(anh_row.locator('td[data-field="score_rate"]')).to_have_text("100%")
    await expect(anh_row.locator('td[data-field="assessments_answered"]')).to_have_text("2/2")
    bao_row = admin.locator(f'table.class-attendance tr[data-user="{archived.late.id}"]')
    await expect(bao_row.locator('td[data-field="score"]')).to_have_text("0/11")

    # Retention: the kind is listed with its Vietnamese name and default period.
    await go(admin, "#/admin/retention")
    kind = admin.locator('tr[data-kind="assessments"]')
    await expect(kind).to_contain_text("Câu hỏi và bài kiểm tra")
    await expect(kind).to_contain_text("1825 ngày")
    assert errors == []
    await admin.context.close()
