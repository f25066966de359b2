"""The records archive through the HTTP API: finding sessions, attendance, class summaries, playback
with Range, shares with expiring links, and the audit log that shows who read what."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import openpyxl
import pytest
from sqlalchemy import select, update

from liveclass.archive.spreadsheets import XLSX_TYPE
from liveclass.models import AuditEntry, RecordingShare, SchoolClass, User
from tests.archive_seed import seed_archived_session
from tests.helpers import add_user


@pytest.fixture
async def archived(server, school, lesson):
    return await seed_archived_session(server, school, lesson)


async def _actions(server, **where) -> list[AuditEntry]:
    async with server.db() as db:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return (await db.execute(query)).scalars().all()


# -- finding sessions ------------------------------------------------------------------------------
async def test_admin_finds_yesterdays_period_of_a_class_by_date_class_and_subject(server, school, lesson):
    yesterday = await seed_archived_session(server, school, lesson)
    older = await seed_archived_session(server, school, days_ago=3, subject="Vật lý")
    other = await seed_archived_session(
        server, school, days_ago=1, school_class=school.other_class, teacher=school.other_teacher, subject="Văn"
    )
    admin = await server.logged_in(school.admin)
    day = yesterday.day.isoformat()

    found = await admin.json("GET", f"/sessions?class_id={school.school_class.id}&from={day}&to={day}")
    assert [s["session_id"] for s in found["items"]] == [yesterday.session_id] and found["total"] == 1
    hit = found["items"][0]
    assert (hit["class_name"], hit["subject"], hit["teacher"]["name"]) == ("10A1", "Toán", "Nguyễn Thị Hà")
    assert hit["recordings"] == len(yesterday.recording_files) and hit["participants"] == 3

    everything = await admin.json("GET", "/sessions")
    assert {s["session_id"] for s in everything["items"]} == {yesterday.session_id, other.session_id, older.session_id}
    assert everything["items"][-1]["session_id"] == older.session_id  # newest first
    by_subject = await admin.json("GET", "/sessions?subject=vật")
    assert [s["session_id"] for s in by_subject["items"]] == [older.session_id]
    by_period = await admin.json("GET", f"/sessions?period_id={older.period_id}")
    assert [s["session_id"] for s in by_period["items"]] == [older.session_id]
    by_teacher = await admin.json("GET", f"/sessions?teacher_id={school.other_teacher.id}")
    assert [s["session_id"] for s in by_teacher["items"]] == [other.session_id]
    paged = await admin.json("GET", "/sessions?limit=1&offset=1")
    assert len(paged["items"]) == 1 and paged["total"] == 3

    for bad in ("from=yesterday", "limit=0", "class_id=abc", f"from={day}&to=2000-01-01"):
        response = await admin.request("GET", f"/sessions?{bad}")
        assert response.status == 400, bad
        assert (await response.json())["error"]["message"]


async def test_a_teacher_finds_only_the_sessions_of_their_own_periods(server, school, lesson):
    mine = await seed_archived_session(server, school)
    await seed_archived_session(
        server, school, school_class=school.other_class, teacher=school.other_teacher, subject="Văn"
    )
    teacher = await server.logged_in(school.teacher)
    assert [s["session_id"] for s in (await teacher.json("GET", "/sessions"))["items"]] == [mine.session_id]
    # Asking for another teacher's sessions gives nothing rather than theirs.
    theirs = await teacher.json("GET", f"/sessions?teacher_id={school.other_teacher.id}")
    assert theirs == {"items": [], "total": 0}


# -- attendance ------------------------------------------------------------------------------------
async def test_attendance_of_a_session_per_participant(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    answer = await teacher.json("GET", f"/sessions/{archived.session_id}/attendance")
    lines = {line["name"]: line for line in answer["items"]}
    # The teacher first, then who came, then who did not get in or never came.
    assert list(lines) == ["Nguyễn Thị Hà", "Phạm Ngọc Ánh", "Trần Gia Bảo", "Lê Thị Chi", "Vũ Văn Dũng"]

    anh = lines["Phạm Ngọc Ánh"]
    assert anh["status"] == "present" and anh["minutes_late"] == 0
    assert [(i["end_reason"]) for i in anh["intervals"]] == ["dropped", "left"]
    assert anh["minutes_present"] == pytest.approx(37.8, abs=0.1)  # 08:01:10-08:20 and 08:21-08:40
    assert (anh["camera_minutes"], anh["microphone_minutes"]) == (10.0, 2.0)  # mic muted by the teacher at 08:07
    assert (anh["hands_raised"], anh["messages"]) == (1, 2)
    assert anh["admitted_by"] == "Nguyễn Thị Hà" and lines["Nguyễn Thị Hà"]["admitted_by"] is None

    bao = lines["Trần Gia Bảo"]
    assert bao["status"] == "late" and bao["minutes_late"] == 9.0  # lobby at 08:10, the lesson began 08:01
    assert bao["minutes_present"] == pytest.approx(33.7, abs=0.1)

    chi = lines["Lê Thị Chi"]
    assert chi["status"] == "absent" and chi["intervals"] == [] and chi["minutes_present"] == 0 and chi["enrolled"]
    dung = lines["Vũ Văn Dũng"]
    assert (dung["status"], dung["denied_by"], dung["denied_reason"]) == (
        "denied",
        "Nguyễn Thị Hà",
        "Không thuộc lớp này",
    )
    assert not dung["enrolled"] and dung["arrived_at"] and dung["minutes_present"] == 0
    assert answer["lesson_started_at"].endswith("Z")

    records = await teacher.json("GET", f"/sessions/{archived.session_id}/records")
    assert [line["name"] for line in records["attendance"]] == list(lines)
    assert [(m["type"], m["person"]["name"]) for m in records["moderation"]] == [
        ("lobby_denied", "Vũ Văn Dũng"),
        ("media_muted", "Phạm Ngọc Ánh"),
        ("chat_deleted", "Phạm Ngọc Ánh"),
    ]
    assert records["session"]["legal_hold"] is False and records["session"]["purged"] == {}


async def test_class_attendance_summary_over_a_date_range(server, school, lesson):
    first = await seed_archived_session(server, school, days_ago=3)
    second = await seed_archived_session(server, school, lesson, days_ago=1)
    await seed_archived_session(server, school, days_ago=40)  # outside the range asked for
    admin = await server.logged_in(school.admin)
    start, end = first.day.isoformat(), second.day.isoformat()
    summary = await admin.json("GET", f"/classes/{school.school_class.id}/attendance?from={start}&to={end}")
    assert [s["session_id"] for s in summary["sessions"]] == [first.session_id, second.session_id]
    # As a class register: by given name (Ánh, Bảo, Chi), not by family name (Lê, Phạm, Trần).
    assert [line["name"] for line in summary["items"]] == ["Phạm Ngọc Ánh"] + ["Trần Gia Bảo"] * 3 + ["Lê Thị Chi"] * 3
    lines = {line["user_id"]: line for line in summary["items"]}
    anh = lines[school.student.id]
    assert (anh["sessions"], anh["attended"], anh["present"], anh["late"], anh["absent"]) == (2, 2, 2, 0, 0)
    assert anh["attendance_rate"] == 1.0 and anh["minutes_present"] == pytest.approx(2 * 37.8, abs=0.2)
    assert anh["hands_raised"] == 2 and anh["messages"] == 4
    # The first seeding's late student was late to it and absent from the second (enrolled, never came).
    bao = lines[first.late.id]
    assert (bao["sessions"], bao["late"], bao["absent"], bao["attendance_rate"]) == (2, 1, 1, 0.5)
    assert lines[second.absent.id]["absent"] == 2 and lines[second.absent.id]["attendance_rate"] == 0.0

    teacher = await server.logged_in(school.other_teacher)
    response = await teacher.request("GET", f"/classes/{school.school_class.id}/attendance")
    assert response.status == 404  # not a class they teach
    too_long = await admin.request("GET", f"/classes/{school.school_class.id}/attendance?from=2020-01-01&to={end}")
    assert too_long.status == 400


def _sheet(data: bytes) -> list[list]:
    """The values of an XLSX file's first sheet; no cell may be a formula."""
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


async def _xlsx(person, path: str) -> tuple[list[list], str]:
    response = await person.request("GET", path)
    assert response.status == 200 and response.headers["Content-Type"] == XLSX_TYPE
    return _sheet(await response.read()), response.headers["Content-Disposition"]


async def test_attendance_downloads_as_an_excel_file_with_ids_as_text(server, school, lesson):
    first = await seed_archived_session(server, school, days_ago=3)
    second = await seed_archived_session(server, school, lesson, days_ago=1)
    async with server.db() as db:  # a name that a spreadsheet would take for a formula stays text
        (await db.get(User, second.absent.id)).full_name = '=HYPERLINK("http://x")'
        await db.commit()
    teacher = await server.logged_in(school.teacher)

    # One session: the rows of the API's attendance, in its order; IDs with their leading zeros.
    rows, disposition = await _xlsx(teacher, f"/sessions/{second.session_id}/attendance.xlsx")
    api = (await teacher.json("GET", f"/sessions/{second.session_id}/attendance"))["items"]
    header, *lines = rows
    assert header[:3] == ["STT / No.", "Họ và tên / Name", "Mã định danh / Personal ID"]
    assert [(line[0], line[1], line[2]) for line in lines] == [
        (number, item["name"], item["personal_id"]) for number, item in enumerate(api, 1)
    ]
    assert all(line[2].startswith("0012") and len(line[2]) == 12 for line in lines)
    assert [line[7] for line in lines] == [item["minutes_present"] for item in api]  # numbers, not text
    assert '=HYPERLINK("http://x")' in [line[1] for line in lines]
    day = second.day.isoformat()
    assert disposition == (
        f'attachment; filename="diem-danh-10A1-Toan-{day}-session-{second.session_id}.xlsx"; '
        f"filename*=UTF-8''diem-danh-10A1-To%C3%A1n-{day}-session-{second.session_id}.xlsx"
    )

    # The class over a range: the summary's rows; the rate in per cent.
    start, end = first.day.isoformat(), second.day.isoformat()
    query = f"?from={start}&to={end}"
    rows, disposition = await _xlsx(teacher, f"/classes/{school.school_class.id}/attendance.xlsx{query}")
    summary = (await teacher.json("GET", f"/classes/{school.school_class.id}/attendance{query}"))["items"]
    header, *lines = rows
    assert header[8] == "Tỉ lệ chuyên cần (%) / Attendance rate (%)"
    assert [(line[1], line[2], line[3], line[4], line[7]) for line in lines] == [
        (item["name"], item["personal_id"], item["sessions"], item["attended"], item["absent"]) for item in summary
    ]
    assert [line[8] for line in lines] == [round(item["attendance_rate"] * 100, 1) for item in summary]
    assert f'filename="diem-danh-10A1-{start}-{end}.xlsx"' in disposition

    # Who may not read the attendance may not download it; a bad range is refused the same way.
    other = await server.logged_in(school.other_teacher)
    assert (await other.request("GET", f"/sessions/{second.session_id}/attendance.xlsx")).status == 404
    assert (await other.request("GET", f"/classes/{school.school_class.id}/attendance.xlsx")).status == 404
    bad = await teacher.request("GET", f"/classes/{school.school_class.id}/attendance.xlsx?from={end}&to={start}")
    assert bad.status == 400


# -- playback with Range ---------------------------------------------------------------------------
async def test_recordings_play_with_range_requests(server, school, archived):
    admin = await server.logged_in(school.admin)
    listed = await admin.json("GET", f"/sessions/{archived.session_id}/recordings")
    video = next(r for r in listed["items"] if r["source"] == "camera")
    data = next(p for p in archived.recording_files if p.name.endswith(".webm") and "camera" in p.name).read_bytes()
    url = server.base_url + video["url"]
    size = len(data)

    async def get(range_header: str):
        response = await admin.request("GET", url, headers={"Range": range_header})
        return response, await response.read()

    first, body = await get("bytes=0-99")
    assert first.status == 206 and body == data[:100] and first.headers["Content-Range"] == f"bytes 0-99/{size}"
    assert body[:4] == b"\x1aE\xdf\xa3"  # the start of a WebM file
    middle, body = await get(f"bytes={size // 2}-{size // 2 + 999}")
    assert middle.status == 206 and body == data[size // 2 : size // 2 + 1000]
    suffix, body = await get("bytes=-500")
    assert suffix.status == 206 and body == data[-500:]
    beyond, _ = await get(f"bytes={size + 10}-")
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    whole = await admin.request("GET", url)
    assert whole.status == 200 and await whole.read() == data and whole.headers["Accept-Ranges"] == "bytes"
    viewed = await _actions(server, action="recording_viewed", target=f"recording:{video['recording_id']}")
    assert [e.details["range"] for e in viewed] == [
        "bytes=0-99",
        f"bytes={size // 2}-{size // 2 + 999}",
        "bytes=-500",
        f"bytes={size + 10}-",
        None,
    ]
    assert all(e.actor_id == school.admin.id and e.address == "127.0.0.1" for e in viewed)


# -- shares ----------------------------------------------------------------------------------------
async def test_a_student_plays_a_shared_recording_until_the_link_expires(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    student = await server.logged_in(school.student)
    parent = await server.logged_in(school.parent)
    stranger = await server.logged_in(school.other_student)

    # Before anything is shared the student has no way in.
    assert (await student.request("GET", f"/sessions/{archived.session_id}/recordings")).status == 403
    created = await teacher.json("POST", f"/sessions/{archived.session_id}/shares", json={"days": 7}, expect=201)
    token = created["token"]
    assert created["url"] == f"/#/shared/{token}" and not created["include_parents"]

    page = await student.json("GET", f"/shared/{token}")
    assert page["session"]["class_name"] == "10A1" and len(page["recordings"]) == len(archived.recording_files)
    camera = next(r for r in page["recordings"] if r["source"] == "camera")
    played = await student.request("GET", server.base_url + camera["url"], headers={"Range": "bytes=0-15"})
    assert played.status == 206 and (await played.read())[:4] == b"\x1aE\xdf\xa3"
    # A file of another session is not reachable through this link.
    assert (await student.request("GET", f"/shared/{token}/recordings/999999/file")).status == 404
    assert (await parent.request("GET", f"/shared/{token}")).status == 404  # parents were not included
    assert (await stranger.request("GET", f"/shared/{token}")).status == 404  # another class
    assert (await student.request("GET", "/shared/" + "x" * 32)).status == 404

    with_parents = await teacher.json(
        "POST", f"/sessions/{archived.session_id}/shares", json={"days": 1, "include_parents": True}, expect=201
    )
    assert (await parent.request("GET", f"/shared/{with_parents['token']}")).status == 200

    async with server.db() as db:
        await db.execute(
            update(RecordingShare)
            .where(RecordingShare.id == created["share_id"])
            .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1))
        )
        await db.commit()
    expired = await student.request("GET", f"/shared/{token}")
    assert expired.status == 410 and (await expired.json())["error"]["code"] == "share_expired"
    assert (await student.request("GET", server.base_url + camera["url"])).status == 410

    listed = await teacher.json("GET", f"/sessions/{archived.session_id}/shares")
    assert [(s["share_id"], s["active"]) for s in listed["items"]] == [
        (with_parents["share_id"], True),
        (created["share_id"], False),
    ]
    await teacher.json("DELETE", f"/sessions/{archived.session_id}/shares/{with_parents['share_id']}")
    assert (await parent.request("GET", f"/shared/{with_parents['token']}")).status == 410

    assert [e.actor_id for e in await _actions(server, action="share_opened")] == [school.student.id, school.parent.id]
    assert len(await _actions(server, action="shared_recording_viewed")) == 1
    assert {e.details["reason"] for e in await _actions(server, action="share_refused")} == {"expired", "revoked"}
    async with server.db() as db:
        stored = (await db.execute(select(RecordingShare.token_hash))).scalars().all()
    assert token not in stored  # only the hash is kept


async def test_nothing_to_share_and_bad_share_requests(server, school):
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    response = await teacher.request("POST", f"/sessions/{session['id']}/shares", json={"days": 7})
    assert response.status == 409 and (await response.json())["error"]["code"] == "nothing_recorded"
    for body in ({"days": 0}, {"days": 91}, {"days": "a week"}, {"days": 7, "everyone": True}):
        response = await teacher.request("POST", f"/sessions/{session['id']}/shares", json=body)
        assert response.status == 400, body


# -- the audit log ---------------------------------------------------------------------------------
async def test_the_audit_log_shows_every_access_and_admins_can_read_it(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    admin = await server.logged_in(school.admin)
    session = f"session:{archived.session_id}"
    await teacher.json("GET", "/sessions?subject=Toán")
    await teacher.json("GET", f"/sessions/{archived.session_id}/records")
    await teacher.json("GET", f"/sessions/{archived.session_id}/attendance")
    await teacher.json("GET", f"/sessions/{archived.session_id}/recordings")
    await admin.json("GET", f"/classes/{school.school_class.id}/attendance")

    mine = await admin.json("GET", f"/audit?actor_id={school.teacher.id}")
    assert [(e["action"], e["target"]) for e in reversed(mine["items"]) if e["action"] != "login"] == [
        ("sessions_searched", None),
        ("records_viewed", session),
        ("attendance_viewed", session),
        ("recordings_listed", session),
    ]
    entry = mine["items"][0]
    assert entry["actor"] == {"user_id": school.teacher.id, "name": "Nguyễn Thị Hà", "role": "teacher"}
    assert entry["address"] == "127.0.0.1" and entry["at"].endswith("Z")
    assert (await admin.json("GET", f"/audit?target={session}&action=attendance_viewed"))["items"][0]["actor"][
        "user_id"
    ] == school.teacher.id

    # Paging: newest first, `before_id` continues where a page stopped, until nothing is left.
    seen, before = [], ""
    while True:
        page = await admin.json("GET", f"/audit?limit=2{before}")
        seen += [e["entry_id"] for e in page["items"]]
        if page["next_before_id"] is None:
            break
        before = f"&before_id={page['next_before_id']}"
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 7
    today = datetime.now(timezone.utc).date()
    assert (await admin.json("GET", f"/audit?from={today + timedelta(days=2)}"))["items"] == []
    assert (await admin.request("GET", "/audit?limit=9999")).status == 400
    assert (await teacher.request("GET", "/audit")).status == 403
    assert [e.actor_id for e in await _actions(server, action="audit_log_viewed")][:1] == [school.admin.id]


async def test_a_new_teacher_without_the_class_sees_no_summary(server, school):
    async with server.db() as db:
        newcomer = await add_user(db, "teacher", "Đặng Văn Mới")
        await db.commit()
    person = await server.logged_in(newcomer)
    assert (await person.request("GET", f"/classes/{school.school_class.id}/attendance")).status == 404
    async with server.db() as db:
        assert await db.get(SchoolClass, school.school_class.id)


async def test_every_access_to_the_archive_is_in_the_audit_log(server, school, archived):
    """Each reading, playback, download, export, share and setting change: one entry naming who, what,
    on what and from where — in the order they happened."""
    admin = await server.logged_in(school.admin)
    teacher = await server.logged_in(school.teacher)
    student = await server.logged_in(school.student)
    sid = archived.session_id
    session = f"session:{sid}"
    recording = (await teacher.json("GET", f"/sessions/{sid}/recordings"))["items"][0]
    share = await teacher.json("POST", f"/sessions/{sid}/shares", json={"days": 3}, expect=201)
    calls = [
        (teacher, "GET", f"/sessions/{sid}/records", "records_viewed", session),
        (teacher, "GET", f"/sessions/{sid}/attendance", "attendance_viewed", session),
        (teacher, "GET", recording["url"], "recording_viewed", f"recording:{recording['recording_id']}"),
        (
            teacher,
            "GET",
            recording["url"] + "?download=1",
            "recording_downloaded",
            f"recording:{recording['recording_id']}",
        ),
        (admin, "GET", f"/sessions/{sid}/export", "session_exported", session),
        (
            admin,
            "GET",
            f"/classes/{school.school_class.id}/attendance",
            "class_attendance_viewed",
            f"class:{school.school_class.id}",
        ),
        (teacher, "GET", f"/sessions/{sid}/attendance.xlsx", "attendance_downloaded", session),
        (
            admin,
            "GET",
            f"/classes/{school.school_class.id}/attendance.xlsx",
            "class_attendance_downloaded",
            f"class:{school.school_class.id}",
        ),
        (admin, "GET", f"/sessions?class_id={school.school_class.id}", "sessions_searched", None),
        (student, "GET", f"/shared/{share['token']}", "share_opened", session),
        (
            student,
            "GET",
            f"/shared/{share['token']}/recordings/{recording['recording_id']}/file",
            "shared_recording_viewed",
            f"recording:{recording['recording_id']}",
        ),
        (admin, "PUT", "/retention", "retention_changed", None),
        (admin, "PUT", f"/sessions/{sid}/legal-hold", "legal_hold_set", session),
        (teacher, "DELETE", f"/sessions/{sid}/shares/{share['share_id']}", "share_revoked", session),
    ]
    bodies = {"/retention": {"chat": 200}, f"/sessions/{sid}/legal-hold": {"hold": True, "reason": "Thanh tra"}}
    first_id = max(e.id for e in await _actions(server))
    for person, method, path, _, _ in calls:
        url = server.base_url + path if path.startswith("/api/") else path
        response = await person.request(method, url, **({"json": bodies[path]} if path in bodies else {}))
        assert response.status == 200, (path, response.status)

    entries = [e for e in await _actions(server) if e.id > first_id]
    assert [(e.actor_id, e.action, e.target) for e in entries] == [
        (person.user.id, action, target) for person, _, _, action, target in calls
    ]
    assert all(e.address == "127.0.0.1" and e.at is not None for e in entries)
    # The same trail, read by an admin through the API (the audit log's own reading is logged too).
    trail = await admin.json("GET", "/audit?limit=500")
    assert [e["action"] for e in trail["items"] if e["entry_id"] > first_id][::-1][: len(calls)] == [
        action for *_, action, _ in calls
    ]
