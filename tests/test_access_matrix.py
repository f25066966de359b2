"""Every HTTP route × every role: allowed (2xx), refused (401/403) or hidden (404), as documented."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import aiohttp
import pytest
from sqlalchemy import select

from liveclass.api import (
    archive_routes,
    auth_routes,
    export_routes,
    handouts_routes,
    health_routes,
    periods_routes,
    questions_routes,
    records_routes,
    nodes_routes,
    retention_routes,
    share_routes,
    users_routes,
)
from liveclass.archive import shares
from liveclass.models import Recording, RecordingShare, TeachingAssignment
from tests.helpers import seed_school

ROLES = ["anonymous", "admin", "teacher", "other_teacher", "student", "parent", "observer"]
_unique = itertools.count(1)


@dataclass
class Case:
    method: str
    path: str  # with {placeholders} filled from the seeded school
    expect: dict[str, int]  # role -> status; roles not named expect 403 (anonymous: 401)
    body: Callable[[Any], Any] | None = None
    before: Callable[[Any], Any] | None = None  # runs before each role's call
    route: str = ""  # the declared route path this case covers, if it differs from `path`
    form: Callable[[Any], Any] | None = None  # multipart body

    def status_for(self, role: str) -> int:
        return self.expect.get(role, 401 if role == "anonymous" else 403)


def everyone(status: int) -> dict[str, int]:
    return {r: status for r in ROLES if r != "anonymous"}


def admin_only(status: int = 200) -> dict[str, int]:
    return {"admin": status}


def _in(hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


async def _start(ctx) -> None:
    await ctx.people["admin"].request("POST", f"/periods/{ctx.school.period.id}/start")


def _pdf(ctx):
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.4\n% bai tap\n", filename="Phiếu bài tập.pdf", content_type="application/pdf")
    return form


async def _upload(ctx) -> None:
    session_id = await _session_id(ctx)
    teacher = ctx.people["teacher"]
    response = await teacher.request("POST", f"/sessions/{session_id}/handouts", data=_pdf(ctx))
    ctx.ids["handout"] = (await response.json())["handout_id"]


async def _recorded(ctx) -> None:
    """The running session gets one recorded file (a few bytes are enough to serve)."""
    session_id = await _session_id(ctx)
    path = f"{session_id}/matrix/01-teacher-camera.webm"
    (ctx.server.settings.recordings_dir / path).parent.mkdir(parents=True, exist_ok=True)
    (ctx.server.settings.recordings_dir / path).write_bytes(b"\x1aE\xdf\xa3 matrix")
    async with ctx.server.db() as db:
        recording = Recording(
            session_id=session_id,
            path=path,
            kind="video",
            source="camera",
            label="Cô Hà",
            codec="vp8",
            start_ms=0,
            duration_ms=1000,
            size=15,
            sha256="0" * 64,
        )
        db.add(recording)
        await db.commit()
        ctx.ids["recording"] = recording.id


async def _shared(ctx) -> None:
    await _recorded(ctx)
    token, digest = shares.new_token()
    async with ctx.server.db() as db:
        share = RecordingShare(
            session_id=await _session_id(ctx),
            token_hash=digest,
            created_by_id=ctx.school.teacher.id,
            expires_at=datetime.now(timezone.utc) + timedelta(days=1),
        )
        db.add(share)
        await db.commit()
        ctx.ids["share"], ctx.ids["token"] = share.id, token


QUESTION = {
    "kind": "truefalse",
    "text": "Hà Nội là thủ đô của Việt Nam.",
    "correct": ["true"],
    "points": 1,
    "subject": "Toán",
    "topic": "Ma trận",
}
_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
    b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


async def _question(ctx) -> None:
    """The teacher's own question (not shared): the other teacher, of another subject, does not see it."""
    response = await ctx.people["teacher"].request("POST", "/questions", json=QUESTION)
    ctx.ids["question"] = (await response.json())["id"]


async def _question_image(ctx) -> None:
    await _question(ctx)
    response = await ctx.people["teacher"].request("PUT", f"/questions/{ctx.ids['question']}/image", data=_PNG)
    ctx.ids["token"] = (await response.json())["image_url"].rsplit("/", 1)[1]


def _question_sheet(ctx) -> bytes:
    from liveclass.archive.spreadsheets import xlsx_book
    from liveclass.question_sheets import HEADER

    row = ["Toán", "Ma trận", "Đúng/Sai", "2 > 1", *[""] * 6, "Đúng", "", 1, "", "Không"]
    return xlsx_book([("Câu hỏi", HEADER, [row])])


def _timetable_file(ctx) -> bytes:
    from liveclass.timetable import HEADER

    row = ["10A1", "Toán", ctx.school.teacher.personal_id, "3", "07:00", "07:45", "02/03/2027", "", "Trực tuyến"]
    return ("\ufeff" + ",".join(HEADER) + "\r\n" + ",".join(row) + "\r\n").encode()


def _roster_file(ctx) -> bytes:
    return (
        "personal_id,full_name,role,class,date_of_birth,parent_of\n"
        f"0013{next(_unique):08d},Lý Thu Trang,student,10A1,,\n"
    ).encode()


async def _session_id(ctx) -> int:
    response = await ctx.people["admin"].request("POST", f"/periods/{ctx.school.period.id}/start")
    return (await response.json())["id"]


CASES = [
    Case("POST", "/auth/logout", everyone(200)),
    Case("GET", "/me", everyone(200)),
    Case("POST", "/auth/password", everyone(400), body=lambda c: {"current_password": "wrong", "new_password": "x"}),
    Case("GET", "/users", admin_only()),
    Case(
        "POST",
        "/users",
        admin_only(201),
        body=lambda c: {"personal_id": f"0019{next(_unique):08d}", "full_name": "Vũ Thị Mai", "role": "student"},
    ),
    Case("GET", "/users/{student}", admin_only(), route="/users/{user_id}"),
    Case(
        "PATCH",
        "/users/{student}",
        admin_only(),
        body=lambda c: {"full_name": "Phạm Ngọc Ánh B"},
        route="/users/{user_id}",
    ),
    Case("POST", "/users/{other_student}/reset-password", admin_only(), route="/users/{user_id}/reset-password"),
    Case(
        "PUT", "/users/{parent}/children/{other_student}", admin_only(), route="/users/{user_id}/children/{student_id}"
    ),
    Case("GET", "/classes", {"admin": 200, "teacher": 200, "other_teacher": 200}),
    Case(
        "POST", "/classes", admin_only(201), body=lambda c: {"name": f"12C{next(_unique)}", "school_year": "2026-2027"}
    ),
    Case("GET", "/classes/{class}", {"admin": 200, "teacher": 200, "other_teacher": 404}, route="/classes/{class_id}"),
    Case(
        "PATCH",
        "/classes/{class}",
        admin_only(),
        body=lambda c: {"name": f"10A1-{next(_unique)}"},
        route="/classes/{class_id}",
    ),
    Case(
        "PUT",
        "/classes/{class}/students/{other_student}",
        admin_only(),
        route="/classes/{class_id}/students/{student_id}",
    ),
    Case(
        "DELETE", "/classes/{class}/students/{student}", admin_only(), route="/classes/{class_id}/students/{student_id}"
    ),
    Case(
        "POST",
        "/classes/{class}/assignments",
        admin_only(201),
        body=lambda c: {"teacher_id": c.school.other_teacher.id, "subject": f"Lý {next(_unique)}"},
        route="/classes/{class_id}/assignments",
    ),
    Case(
        "DELETE",
        "/classes/{class}/assignments/{assignment}",
        admin_only(),
        route="/classes/{class_id}/assignments/{assignment_id}",
    ),
    Case("POST", "/roster/import", admin_only(), form=_roster_file),
    Case("GET", "/periods", everyone(200)),
    Case(
        "POST",
        "/periods",
        {"admin": 201, "teacher": 201, "other_teacher": 403},
        body=lambda c: {
            "class_id": c.school.school_class.id,
            "subject": "Toán",
            "teacher_id": c.school.teacher.id,
            "starts_at": _in(24),
            "ends_at": _in(24.75),
        },
    ),
    Case(
        "GET",
        "/periods/{period}",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "student": 200, "parent": 404, "observer": 200},
        route="/periods/{period_id}",
    ),
    Case(
        "PATCH",
        "/periods/{period}",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        body=lambda c: {"subject": "Toán (ôn tập)"},
        route="/periods/{period_id}",
    ),
    Case(
        "POST",
        "/periods/{period}/start",
        {"admin": 201, "teacher": 200, "other_teacher": 404},
        route="/periods/{period_id}/start",
    ),
    Case(
        "POST",
        "/periods/{period}/end",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/periods/{period_id}/end",
    ),
    # -- the timetable (the admin's school setup) --
    Case(
        "POST",
        "/timetable/periods",
        admin_only(201),
        body=lambda c: {
            "class_id": c.school.school_class.id,
            "subject": "Toán",
            "teacher_id": c.school.teacher.id,
            "date": "2027-03-01",
            "start": "07:00",
            "end": "07:45",
        },
    ),
    Case(
        "POST",
        "/timetable/import?school_year=2026-2027",
        admin_only(201),
        form=_timetable_file,
        route="/timetable/import",
    ),
    Case("GET", "/timetable/template.xlsx", admin_only()),
    Case("GET", "/timetable/template.csv", admin_only()),
    Case(
        "GET",
        "/sessions/{session}",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "student": 200, "parent": 404, "observer": 200},
        before=_start,
        route="/sessions/{session_id}",
    ),
    Case(
        "POST",
        "/sessions/{session}/join",
        {"admin": 200, "teacher": 200, "other_teacher": 403, "student": 200, "parent": 403, "observer": 200},
        before=_start,
        route="/sessions/{session_id}/join",
    ),
    Case(
        "POST",
        "/sessions/{session}/handouts",
        {"teacher": 201, "other_teacher": 404},
        before=_start,
        form=_pdf,
        route="/sessions/{session_id}/handouts",
    ),
    # Students and parents were never let into this room, so its handouts are not theirs to read.
    Case(
        "GET",
        "/sessions/{session}/handouts",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "parent": 404, "observer": 200},
        before=_start,
        route="/sessions/{session_id}/handouts",
    ),
    Case(
        "GET",
        "/sessions/{session}/handouts/{handout}",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "parent": 404, "observer": 200},
        before=_upload,
        route="/sessions/{session_id}/handouts/{handout_id}",
    ),
    Case(
        "GET",
        "/sessions/{session}/records",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/records",
    ),
    Case(
        "GET",
        "/sessions/{session}/recordings",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/recordings",
    ),
    # No recording exists in this world: the allowed roles get 404 for the file, the others 403/404 first.
    Case(
        "GET",
        "/sessions/{session}/recordings/999/file",
        {"admin": 404, "teacher": 404, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/recordings/{recording_id}/file",
    ),
    # Nothing was recorded in this world: those allowed learn that (409 / 404), the others are refused.
    Case(
        "POST",
        "/sessions/{session}/lesson-video",
        {"admin": 409, "teacher": 409, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/lesson-video",
    ),
    Case(
        "GET",
        "/sessions/{session}/lesson-video",
        {"admin": 404, "teacher": 404, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/lesson-video",
    ),
    Case(
        "GET",
        "/sessions/{session}/lesson-video/file",
        {"admin": 404, "teacher": 404, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/lesson-video/file",
    ),
    # -- archive cases (search, attendance, audit log) --
    Case("GET", "/sessions", {"admin": 200, "teacher": 200, "other_teacher": 200}, before=_start),
    Case(
        "GET",
        "/sessions/{session}/attendance",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/attendance",
    ),
    Case(
        "GET",
        "/classes/{class}/attendance",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/classes/{class_id}/attendance",
    ),
    Case(
        "GET",
        "/sessions/{session}/attendance.xlsx",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/attendance.xlsx",
    ),
    Case(
        "GET",
        "/sessions/{session}/polls.xlsx",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/polls.xlsx",
    ),
    Case(
        "GET",
        "/sessions/{session}/assessments",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/assessments",
    ),
    Case(
        "GET",
        "/classes/{class}/attendance.xlsx",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/classes/{class_id}/attendance.xlsx",
    ),
    Case("GET", "/audit", admin_only()),
    # -- share cases --
    Case(
        "POST",
        "/sessions/{session}/shares",
        {"admin": 201, "teacher": 201, "other_teacher": 404},
        before=_recorded,
        body=lambda c: {"days": 7},
        route="/sessions/{session_id}/shares",
    ),
    Case(
        "GET",
        "/sessions/{session}/shares",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_shared,
        route="/sessions/{session_id}/shares",
    ),
    Case(
        "DELETE",
        "/sessions/{session}/shares/{share}",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_shared,
        route="/sessions/{session_id}/shares/{share_id}",
    ),
    # A share without parents: the class's students open it; the parent, observer and other teachers don't.
    Case(
        "GET",
        "/shared/{token}",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "student": 200, "parent": 404, "observer": 404},
        before=_shared,
        route="/shared/{token}",
    ),
    Case(
        "GET",
        "/shared/{token}/recordings/{recording}/file",
        {"admin": 200, "teacher": 200, "other_teacher": 404, "student": 200, "parent": 404, "observer": 404},
        before=_shared,
        route="/shared/{token}/recordings/{recording_id}/file",
    ),
    # -- export cases --
    # A running session with nothing recorded still exports (manifest, attendance, chat, events).
    Case(
        "GET",
        "/sessions/{session}/export",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_start,
        route="/sessions/{session_id}/export",
    ),
    # -- retention cases --
    Case("GET", "/retention", admin_only()),
    Case("PUT", "/retention", admin_only(), body=lambda c: {"chat": 365}),
    Case("POST", "/retention/run", admin_only()),
    # -- nodes cases (one node alone: nothing to drain it to) --
    Case("GET", "/nodes", admin_only()),
    Case("POST", "/nodes/{node}/drain", admin_only(409), route="/nodes/{node_id}/drain"),
    Case(
        "PUT",
        "/sessions/{session}/legal-hold",
        admin_only(),
        body=lambda c: {"hold": True, "reason": "Thanh tra Sở GD&ĐT"},
        route="/sessions/{session_id}/legal-hold",
    ),
    # -- question bank: teachers and admins; another teacher's private question is 404 --
    Case("GET", "/questions", {"admin": 200, "teacher": 200, "other_teacher": 200}),
    Case("GET", "/questions/subjects", {"admin": 200, "teacher": 200, "other_teacher": 200}),
    Case("GET", "/questions/template.xlsx", {"admin": 200, "teacher": 200, "other_teacher": 200}),
    Case("GET", "/questions/export.xlsx", {"admin": 200, "teacher": 200, "other_teacher": 200}),
    Case("POST", "/questions/import", {"admin": 200, "teacher": 200, "other_teacher": 200}, form=_question_sheet),
    Case("POST", "/questions", {"admin": 201, "teacher": 201, "other_teacher": 201}, body=lambda c: QUESTION),
    Case(
        "GET",
        "/questions/{question}",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_question,
        route="/questions/{question_id}",
    ),
    Case(
        "PATCH",
        "/questions/{question}",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_question,
        body=lambda c: {"text": "Huế là thủ đô của Việt Nam."},
        route="/questions/{question_id}",
    ),
    Case(
        "DELETE",
        "/questions/{question}",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_question,
        route="/questions/{question_id}",
    ),
    Case(
        "PUT",
        "/questions/{question}/image",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_question,
        form=lambda c: _PNG,
        route="/questions/{question_id}/image",
    ),
    Case(
        "DELETE",
        "/questions/{question}/image",
        {"admin": 200, "teacher": 200, "other_teacher": 404},
        before=_question_image,
        route="/questions/{question_id}/image",
    ),
    # The signed link is the permission: every logged-in account sees the picture (students in the room).
    Case("GET", "/question-images/{token}", everyone(200), before=_question_image, route="/question-images/{token}"),
]
PUBLIC_CASES = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/api/v1/openapi.json")]


@dataclass
class World:
    server: Any
    school: Any
    people: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)


@pytest.fixture
async def world(any_store_server):
    """Every case runs on SQLite and on PostgreSQL."""
    server = any_store_server
    school = await seed_school(server)
    people = {"anonymous": server.person(None)}
    users = school.by_role() | {"other_teacher": school.other_teacher}
    for role, user in users.items():
        people[role] = await server.logged_in(user)
    async with server.db() as db:
        assignment = (
            (await db.execute(select(TeachingAssignment).where(TeachingAssignment.class_id == school.school_class.id)))
            .scalars()
            .first()
        )
    ids = {
        "student": school.student.id,
        "other_student": school.other_student.id,
        "parent": school.parent.id,
        "class": school.school_class.id,
        "period": school.period.id,
        "assignment": assignment.id,
    }
    return World(server, school, people, ids)


def _order(case: Case) -> list[str]:
    # Refused roles first: an allowed call (ending a period, logging out) must not change what they see.
    return sorted(ROLES, key=lambda r: 200 <= case.status_for(r) < 300)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path}")
async def test_route_access(world, case):
    outcomes = {}
    for role in _order(case):
        if case.before:
            await case.before(world)
        ids = dict(world.ids)
        if "{session}" in case.path:
            ids["session"] = await _session_id(world)
        ids["node"] = world.server.settings.effective_node_id
        path = case.path.format(**ids)
        kwargs = {"json": case.body(world)} if case.body else {}
        if case.form:
            kwargs = {"data": case.form(world)}
        response = await world.people[role].request(case.method, path, **kwargs)
        body = await response.json() if response.content_type == "application/json" else None
        outcomes[role] = response.status
        if response.status >= 400:
            assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    expected = {role: case.status_for(role) for role in ROLES}
    assert outcomes == expected


async def test_public_routes_answer_anyone(server):
    person = server.person(None)
    for method, path in PUBLIC_CASES:
        response = await person.request(method, server.base_url + path)
        assert response.status == 200, path


def test_every_declared_route_is_in_the_matrix():
    """A new route cannot be added without saying who may call it here."""
    declared = {
        (r.method, r.path)
        for t in (
            auth_routes.routes,
            users_routes.routes,
            periods_routes.routes,
            handouts_routes.routes,
            records_routes.routes,
            archive_routes.routes,
            share_routes.routes,
            export_routes.routes,
            retention_routes.routes,
            nodes_routes.routes,
            questions_routes.routes,
        )
        for r in t.routes
    }
    covered = {(c.method, c.route or c.path) for c in CASES} | {("POST", "/auth/login")}
    assert declared == covered
    assert {r.path for r in health_routes.routes.routes} == {"/healthz", "/readyz"}


async def test_openapi_documents_every_route(server):
    spec = await server.person(None).json("GET", server.base_url + "/api/v1/openapi.json")
    assert spec["openapi"].startswith("3.")
    for case in CASES:
        path = "/api/v1" + (case.route or case.path)
        assert case.method.lower() in spec["paths"][path], path
    assert "requestBody" in spec["paths"]["/api/v1/auth/login"]["post"]


async def test_openapi_describes_lists_and_both_start_answers(server):
    spec = await server.person(None).json("GET", server.base_url + "/api/v1/openapi.json")
    users = spec["paths"]["/api/v1/users"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert users["properties"]["items"]["type"] == "array"
    start = spec["paths"]["/api/v1/periods/{period_id}/start"]["post"]["responses"]
    assert {"200", "201"} <= set(start)
