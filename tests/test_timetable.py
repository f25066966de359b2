"""The timetable from the admin's side: periods in the school's local time, weekly periods, the timetable file,
the booking checks and the roster import through the API, on real servers (SQLite; the core on PostgreSQL too)."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

from openpyxl import load_workbook
from sqlalchemy import select

from liveclass.archive.spreadsheets import xlsx_book
from liveclass.models import AuditEntry, Period, TeachingAssignment
from liveclass.timetable import HEADER, SCHOOL_TIMEZONE
from tests.helpers import seed_school, start_server, make_settings

MONDAY = date(2027, 3, 1)  # a Monday, far from the seeded periods (today)


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(SCHOOL_TIMEZONE)


async def _world(server):
    school = await seed_school(server)
    admin = await server.logged_in(school.admin)
    return school, admin


def single(school, day: date, start: str, end: str, **extra) -> dict:
    return {
        "class_id": school.school_class.id,
        "subject": "Toán",
        "teacher_id": school.teacher.id,
        "date": day.isoformat(),
        "start": start,
        "end": end,
        **extra,
    }


async def test_weekly_period_double_booking_and_half_day_rule(any_store_server):
    """The core, on both stores: a weekly period in local time, a clash refused naming the other period, the
    third online period of a morning refused until a reason is given, and the reason kept in the audit log."""
    server = any_store_server
    school, admin = await _world(server)

    weekly = await admin.json(
        "POST",
        "/timetable/periods",
        expect=201,
        json={
            "class_id": school.school_class.id,
            "subject": "Toán",
            "teacher_id": school.teacher.id,
            "weekdays": [1, 3],
            "from_date": MONDAY.isoformat(),
            "to_date": (MONDAY + timedelta(days=13)).isoformat(),
            "start": "07:00",
            "end": "07:45",
        },
    )
    assert weekly["created"] == 4
    starts = [_local(p["starts_at"]) for p in weekly["periods"]]
    assert [(s.date(), s.hour, s.minute) for s in starts] == [
        (MONDAY, 7, 0),
        (MONDAY + timedelta(days=2), 7, 0),
        (MONDAY + timedelta(days=7), 7, 0),
        (MONDAY + timedelta(days=9), 7, 0),
    ]
    assert weekly["periods"][0]["starts_at"].startswith(f"{MONDAY.isoformat()}T00:00:00")  # stored in UTC
    first_id = weekly["periods"][0]["id"]

    # The teacher is booked: a period of another class at an overlapping time is refused, naming the first.
    async with server.db() as db:
        db.add(TeachingAssignment(teacher_id=school.teacher.id, class_id=school.other_class.id, subject="Toán"))
        await db.commit()
    clash = await admin.json(
        "POST",
        "/timetable/periods",
        expect=409,
        json={**single(school, MONDAY, "07:30", "08:15"), "class_id": school.other_class.id},
    )
    assert clash["error"]["code"] == "period_conflict"
    conflict = clash["error"]["details"]["conflicts"][0]
    assert conflict["who"] == "teacher" and conflict["other"]["period_id"] == first_id
    assert f"period {first_id}" in clash["error"]["message"] and f"tiết số {first_id}" in clash["error"]["message"]
    assert "07:00–07:45" in clash["error"]["message"]
    # The class is booked too, whoever teaches: the other teacher's period in 10A1 at 07:00.
    async with server.db() as db:
        db.add(TeachingAssignment(teacher_id=school.other_teacher.id, class_id=school.school_class.id, subject="Lý"))
        await db.commit()
    clash = await admin.json(
        "POST",
        "/timetable/periods",
        expect=409,
        json={**single(school, MONDAY, "07:15", "07:50"), "teacher_id": school.other_teacher.id, "subject": "Lý"},
    )
    assert clash["error"]["details"]["conflicts"][0]["who"] == "class"
    assert "lớp 10A1 đã có tiết" in clash["error"]["message"]

    # Two more online periods on Monday morning make three: refused without a reason, and nothing created.
    await admin.json("POST", "/timetable/periods", expect=201, json=single(school, MONDAY, "08:00", "08:45"))
    third = single(school, MONDAY, "09:00", "09:45")
    refused = await admin.json("POST", "/timetable/periods", expect=409, json=third)
    assert refused["error"]["code"] == "online_limit"
    assert refused["error"]["details"]["half_days"][0] | {"reason": ""} == {
        "class_name": "10A1",
        "date": MONDAY.isoformat(),
        "half": "morning",
        "count": 3,
        "reason": "",
    }
    assert "buổi sáng" in refused["error"]["message"]
    # A hybrid period is not fully online: it goes through; the afternoon is another half-day.
    await admin.json(
        "POST", "/timetable/periods", expect=201, json=single(school, MONDAY, "10:00", "10:45", mode="hybrid")
    )
    await admin.json("POST", "/timetable/periods", expect=201, json=single(school, MONDAY, "13:00", "13:45"))
    accepted = await admin.json(
        "POST", "/timetable/periods", expect=201, json={**third, "online_reason": "Bão số 9, học sinh nghỉ ở nhà"}
    )
    assert accepted["half_days"][0]["count"] == 3
    async with server.db() as db:
        entry = (
            await db.execute(select(AuditEntry).where(AuditEntry.action == "online_limit_overridden"))
        ).scalar_one()
        assert entry.details["reason"] == "Bão số 9, học sinh nghỉ ở nhà"
        assert entry.details["periods"] == [accepted["periods"][0]["id"]]
        assert entry.actor_id == school.admin.id
        count = len((await db.execute(select(Period).where(Period.class_id == school.school_class.id))).all())
    assert count == 1 + 4 + 1 + 1 + 1 + 1  # the seeded period, the weekly four, 08:00, hybrid, afternoon, 09:00


async def test_weekly_period_is_all_or_nothing(server):
    school, admin = await _world(server)
    await admin.json(
        "POST", "/timetable/periods", expect=201, json=single(school, MONDAY + timedelta(days=7), "07:00", "07:45")
    )
    refused = await admin.json(
        "POST",
        "/timetable/periods",
        expect=409,
        json={
            "class_id": school.school_class.id,
            "subject": "Toán",
            "teacher_id": school.teacher.id,
            "weekdays": [1],
            "from_date": MONDAY.isoformat(),
            "to_date": (MONDAY + timedelta(days=21)).isoformat(),
            "start": "07:30",
            "end": "08:15",
        },
    )
    assert len(refused["error"]["details"]["conflicts"]) == 1  # only the second Monday clashes...
    async with server.db() as db:  # ... and none of the four Mondays was created
        assert len((await db.execute(select(Period).where(Period.class_id == school.school_class.id))).all()) == 2


async def test_the_form_refuses_what_cannot_be_a_period(server):
    school, admin = await _world(server)
    for body, code in [
        ({**single(school, MONDAY, "08:00", "07:00")}, "invalid_request"),
        ({**single(school, MONDAY, "07:00", "07:45"), "start": "2027-03-01T07:00:00+07:00"}, "invalid_request"),
        ({**single(school, MONDAY, "07:00", "07:45"), "weekdays": [1]}, "invalid_request"),
        ({**single(school, MONDAY, "07:00", "07:45"), "subject": "Hóa"}, "not_assigned"),
        ({**single(school, MONDAY, "07:00", "07:45"), "teacher_id": school.student.id}, "not_assigned"),
        (
            {
                "class_id": school.school_class.id,
                "subject": "Toán",
                "teacher_id": school.teacher.id,
                "weekdays": [7],
                "from_date": MONDAY.isoformat(),
                "to_date": (MONDAY + timedelta(days=5)).isoformat(),
                "start": "07:00",
                "end": "07:45",
            },
            "no_days",
        ),
    ]:
        answer = await admin.json("POST", "/timetable/periods", expect=400, json=body)
        assert answer["error"]["code"] == code, (body, answer)
    not_assigned = await admin.json(
        "POST", "/timetable/periods", expect=400, json={**single(school, MONDAY, "07:00", "07:45"), "subject": "Hóa"}
    )
    assert "chưa được phân công dạy Hóa" in not_assigned["error"]["message"]


def _csv(rows: list[list[str]], header=HEADER) -> bytes:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


async def test_timetable_file_every_bad_row_with_its_line_then_all_rows(server):
    school, admin = await _world(server)
    teacher = school.teacher.personal_id
    bad = _csv(
        [
            ["10A1", "Toán", teacher, "2", "07:00", "07:45", "01/03/2027", "14/03/2027", "Trực tuyến"],
            ["10A9", "Toán", teacher, "3", "07:00", "07:45", "01/03/2027", "", ""],
            ["10A1", "Toán", "001299999999", "4", "07:00", "07:45", "01/03/2027", "", ""],
            ["10A1", "Hóa", teacher, "5", "07:00", "07:45", "01/03/2027", "", ""],
            ["10A1", "Toán", teacher, "Thứ 9", "7h", "6:00", "31/02/2027", "", "ngoài trời"],
        ]
    )
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=bad)
    answer = await response.json()
    assert response.status == 400 and answer["error"]["code"] == "import_rejected"
    lines = {(e["line"], e["column"]) for e in answer["errors"]}
    assert {line for line, _ in lines} == {3, 4, 5, 6}
    assert (6, "Thứ / Weekday") in lines and (6, "Kết thúc / End") in lines and (6, "Từ ngày / From") in lines
    assert (6, "Hình thức / Mode") in lines
    reasons = {e["line"]: e["reason"] for e in answer["errors"]}
    assert "Không có lớp 10A9" in reasons[3] and "001299999999" in reasons[4] and "Hóa" in reasons[5]
    async with server.db() as db:
        assert len((await db.execute(select(Period))).all()) == 2  # the seeded two, nothing more

    # The same first row as XLSX, with a clash inside the file: line 3 names line 2.
    xlsx = xlsx_book(
        [
            (
                "Thời khóa biểu",
                HEADER,
                [
                    ["10A1", "Toán", teacher, "2", "07:00", "07:45", "01/03/2027", "14/03/2027", "Trực tuyến"],
                    ["10A1", "Toán", teacher, "Thứ 2", "07:40", "08:30", "08/03/2027", "", "Kết hợp"],
                ],
            )
        ]
    )
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=xlsx)
    clash = await response.json()
    assert response.status == 409 and clash["error"]["code"] == "period_conflict"
    conflict = clash["error"]["details"]["conflicts"][0]
    assert conflict["line"] == 3 and conflict["other"]["line"] == 2 and "dòng 2 của tệp này" in conflict["reason"]

    good = xlsx_book(
        [
            (
                "Thời khóa biểu",
                HEADER,
                [
                    ["10A1", "Toán", teacher, "2", "07:00", "07:45", "01/03/2027", "14/03/2027", "Trực tuyến"],
                    ["10A1", "Toán", teacher, "CN", "14:00", "14:45", "01/03/2027", "14/03/2027", ""],
                ],
            )
        ]
    )
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=good)
    assert response.status == 201, await response.text()
    assert (await response.json())["created"] == 4
    async with server.db() as db:
        starts = sorted(
            p.starts_at.astimezone(SCHOOL_TIMEZONE)
            for p in (
                await db.execute(select(Period).where(Period.starts_at > datetime(2027, 1, 1, tzinfo=timezone.utc)))
            ).scalars()
        )
    assert [(s.date(), s.hour) for s in starts] == [
        (date(2027, 3, 1), 7),
        (date(2027, 3, 7), 14),
        (date(2027, 3, 8), 7),
        (date(2027, 3, 14), 14),
    ]


async def test_timetable_file_half_day_needs_a_reason(server):
    school, admin = await _world(server)
    teacher = school.teacher.personal_id
    rows = [["10A1", "Toán", teacher, "2", f"0{h}:00", f"0{h}:45", "01/03/2027", "", ""] for h in (7, 8, 9)]
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=_csv(rows))
    assert response.status == 409 and (await response.json())["error"]["code"] == "online_limit"
    response = await admin.request(
        "POST", "/timetable/import?school_year=2026-2027&online_reason=Thi%20h%E1%BB%8Dc%20k%E1%BB%B3", data=_csv(rows)
    )
    assert response.status == 201
    async with server.db() as db:
        entry = (
            await db.execute(select(AuditEntry).where(AuditEntry.action == "online_limit_overridden"))
        ).scalar_one()
    assert entry.details["reason"] == "Thi học kỳ" and entry.details["half_days"][0]["count"] == 3


async def test_timetable_templates(server):
    school, admin = await _world(server)
    response = await admin.request("GET", "/timetable/template.xlsx")
    assert response.status == 200 and "mau-thoi-khoa-bieu.xlsx" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(await response.read()))
    assert [c.value for c in book["Thời khóa biểu"][1]] == HEADER
    assert book.sheetnames == ["Thời khóa biểu", "Hướng dẫn", "Ví dụ"]
    response = await admin.request("GET", "/timetable/template.csv")
    text = (await response.read()).decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(HEADER) and "Trực tuyến" in text


ROSTER_HEADER = "personal_id,full_name,role,class,date_of_birth,parent_of\n"


async def test_roster_import_through_the_api(server):
    school, admin = await _world(server)
    bad = (
        ROSTER_HEADER + "001209000001,Lý Thu Trang,student,10A2,2011-05-06,\n"
        "123,Không Hợp Lệ,student,10A2,,\n"
        "001209000003,,pupil,10A2,31/02/2011,\n"
    ).encode()
    response = await admin.request("POST", "/roster/import?school_year=2026-2027", data=bad)
    answer = await response.json()
    assert response.status == 400 and answer["error"]["code"] == "import_rejected"
    assert [e["line"] for e in answer["errors"]] == [3, 4]
    assert "full_name is missing" in answer["errors"][1]["reason"] and "unknown role" in answer["errors"][1]["reason"]
    response = await admin.request("POST", "/roster/import", data=b"name,role\nA,student\n")
    assert response.status == 400 and (await response.json())["error"]["code"] == "bad_roster_file"

    good = (
        ROSTER_HEADER + "001209000001,Lý Thu Trang,student,10A2,2011-05-06,\n001209000002,Vũ Đức Long,student,10A2,,\n"
    ).encode()
    answer = await admin.json("POST", "/roster/import?school_year=2026-2027", data=good)
    assert (answer["created"], answer["school_year"]) == (2, "2026-2027")
    passwords = {p["personal_id"]: p["password"] for p in answer["passwords"]}
    student = server.person(type("U", (), {"personal_id": "001209000001"})())
    assert (await student.login(passwords["001209000001"])).status == 200
    classes = await admin.json("GET", "/classes")
    new_class = next(c for c in classes["items"] if c["name"] == "10A2")
    detail = await admin.json("GET", f"/classes/{new_class['id']}")
    assert sorted(s["full_name"] for s in detail["students"]) == ["Lý Thu Trang", "Vũ Đức Long"]
    again = await admin.json("POST", "/roster/import?school_year=2026-2027", data=good)
    assert (again["created"], again["unchanged"], again["passwords"]) == (0, 2, [])


async def test_only_admins_set_up_the_timetable(tmp_path):
    server = await start_server(make_settings(tmp_path / "var"))
    try:
        school = await seed_school(server)
        teacher = await server.logged_in(school.teacher)
        answer = await teacher.json(
            "POST", "/timetable/periods", expect=403, json=single(school, MONDAY, "07:00", "07:45")
        )
        assert answer["error"]["code"] == "forbidden"
    finally:
        await server.close()


async def test_two_admins_saving_at_once_cannot_both_book_the_teacher(any_store_server):
    """The checks and the new rows are one step: of two requests for the same hour sent together, one wins."""
    import asyncio

    server = any_store_server
    school, admin = await _world(server)
    other_admin = await server.logged_in(school.admin)
    body = single(school, MONDAY, "07:00", "07:45")
    answers = await asyncio.gather(
        *[
            person.request("POST", "/timetable/periods", json=body)
            for person in (admin, other_admin, admin, other_admin)
        ]
    )
    assert sorted(r.status for r in answers) == [201, 409, 409, 409]
    async with server.db() as db:
        assert (
            len(
                (
                    await db.execute(select(Period).where(Period.starts_at > datetime(2027, 1, 1, tzinfo=timezone.utc)))
                ).all()
            )
            == 1
        )


async def test_timetable_file_as_a_spreadsheet_types_it(server):
    """Excel keeps typed times and dates as time and date cells, and Vietnamese Excel saves CSV with ';'."""
    from datetime import time
    from openpyxl import Workbook

    school, admin = await _world(server)
    book = Workbook()
    sheet = book.active
    sheet.title = "Thời khóa biểu"
    sheet.append(HEADER)
    sheet.append(
        [
            "10A1",
            "Toán",
            school.teacher.personal_id,
            3,
            time(13, 30),
            time(14, 15),
            datetime(2027, 3, 1),
            datetime(2027, 3, 10),
            "Kết hợp",
        ]
    )
    data = io.BytesIO()
    book.save(data)
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=data.getvalue())
    assert response.status == 201, await response.text()
    semicolons = (
        ";".join(HEADER)
        + "\r\n"
        + ";".join(["10A1", "Toán", school.teacher.personal_id, "T5", "7h", "7g45", "2027-03-04", "", "online"])
        + "\r\n"
    ).encode()
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=semicolons)
    assert response.status == 201, await response.text()
    async with server.db() as db:
        found = sorted(
            (p.starts_at.astimezone(SCHOOL_TIMEZONE), p.ends_at.astimezone(SCHOOL_TIMEZONE), p.mode.value)
            for p in (
                await db.execute(select(Period).where(Period.starts_at > datetime(2027, 1, 1, tzinfo=timezone.utc)))
            ).scalars()
        )
    assert [(s.date(), s.strftime("%H:%M"), e.strftime("%H:%M"), m) for s, e, m in found] == [
        (date(2027, 3, 2), "13:30", "14:15", "hybrid"),
        (date(2027, 3, 4), "07:00", "07:45", "online"),
        (date(2027, 3, 9), "13:30", "14:15", "hybrid"),
    ]


async def test_a_nul_character_in_a_file_is_a_clear_400(any_store_server):
    server = any_store_server
    school, admin = await _world(server)
    timetable_file = _csv(
        [["10A1", "To\x00án", school.teacher.personal_id, "2", "07:00", "07:45", "01/03/2027", "", ""]]
    )
    response = await admin.request("POST", "/timetable/import?school_year=2026-2027", data=timetable_file)
    answer = await response.json()
    assert response.status == 400 and "line 2" in answer["error"]["message"], answer
    roster_file = (ROSTER_HEADER + "001209000001,Lý Thu\x00 Trang,student,10A2,,\n").encode()
    response = await admin.request("POST", "/roster/import?school_year=2026-2027", data=roster_file)
    answer = await response.json()
    assert response.status == 400 and answer["error"]["code"] == "bad_roster_file", answer
    assert "line 2" in answer["error"]["message"]
