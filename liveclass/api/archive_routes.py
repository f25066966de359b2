"""The records archive over HTTP: finding sessions, attendance (one session, a class over a date range;
as JSON, and as an Excel file), a session's assessments (quick polls and quizzes) and the audit log. Who may read
what: liveclass/archive/access.py and docs/records-archive.md."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from liveclass import auth
from liveclass.api.archive_schemas import (
    AuditPage,
    ClassAttendance,
    SessionAssessments,
    SessionAttendance,
    SessionList,
)
from liveclass.api.routing import RouteTable, current_user, path_int
from liveclass.appkeys import DB
from liveclass.archive.access import readable_session
from liveclass.archive.attendance import class_summary, iso, lesson_start, session_attendance
from liveclass.archive.filenames import content_disposition, download_names
from liveclass.archive.polls import polls_view, polls_xlsx, session_polls
from liveclass.archive.search import (
    SCHOOL_TIMEZONE,
    SessionFilter,
    day_start,
    find_sessions,
    session_summary,
    summaries,
)
from liveclass.archive.spreadsheets import XLSX_TYPE, xlsx_bytes
from liveclass.archive.tables import attendance_table, class_summary_table
from liveclass.audit import audit
from liveclass.errors import ApiError, not_found
from liveclass.models import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_ID,
    AccountRole,
    AuditEntry,
    Enrollment,
    Period,
    SchoolClass,
    TeachingAssignment,
    User,
)

routes = RouteTable("records")
ADMIN_OR_TEACHER = {"admin", "teacher"}
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() also takes "²", which int() refuses
MAX_CLASS_RANGE_DAYS = 400


def _query_int(
    request: web.Request, name: str, default: int | None = None, *, low: int = 0, high: int = MAX_ID
) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_request", f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def _query_date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or not FIRST_YEAR < value.year < LAST_YEAR:
        raise ApiError(
            400,
            "invalid_request",
            f"{name} must be a date like 2026-11-23, between the years {FIRST_YEAR + 1} and {LAST_YEAR - 1}.",
        )
    return value


def _date_range(request: web.Request) -> tuple[date | None, date | None]:
    start, end = _query_date(request, "from"), _query_date(request, "to")
    if start and end and end < start:
        raise ApiError(400, "invalid_request", "The date range ends before it starts (to < from).")
    return start, end


@routes.route(
    "GET",
    "/sessions",
    summary="Find sessions by class, teacher, subject and date range (admins: all; teachers: their own periods)",
    access=ADMIN_OR_TEACHER,
    query={
        "class_id": "class",
        "period_id": "period (its sessions: a period may be started again)",
        "teacher_id": "teacher",
        "subject": "part of the subject's name",
        "from": "first school-local date (YYYY-MM-DD)",
        "to": "last school-local date (YYYY-MM-DD)",
        "limit": "max 200 (default 50)",
        "offset": "skip this many",
    },
    response=SessionList,
)
async def search_sessions(request: web.Request) -> web.Response:
    user = current_user(request)
    start, end = _date_range(request)
    where = SessionFilter(
        class_id=_query_int(request, "class_id"),
        period_id=_query_int(request, "period_id"),
        teacher_id=_query_int(request, "teacher_id"),
        subject=(request.query.get("subject") or "").strip()[:100] or None,
        from_day=start,
        to_day=end,
    )
    limit = _query_int(request, "limit", 50, low=1, high=200)
    offset = _query_int(request, "offset", 0)
    async with request.app[DB]() as db:
        found, total = await find_sessions(db, user, where, limit, offset)
        items = await summaries(db, found)
        audit(
            db,
            user,
            "sessions_searched",
            address=auth.client_address(request),
            filters={
                k: v
                for k, v in request.query.items()
                if k in {"class_id", "period_id", "teacher_id", "subject", "from", "to"}
            }
            or None,
        )
        await db.commit()
    return web.json_response({"items": items, "total": total})


@routes.route(
    "GET",
    "/sessions/{session_id}/attendance",
    summary="Attendance of one session: per participant and every enrolled student who never came",
    access=ADMIN_OR_TEACHER,
    response=SessionAttendance,
)
async def attendance_of_session(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with request.app[DB]() as db:
        session, period = await readable_session(db, user, session_id)
        lines = await session_attendance(db, session, period)
        audit(db, user, "attendance_viewed", target=f"session:{session_id}", address=auth.client_address(request))
        await db.commit()
    return web.json_response(
        {
            "session": session_summary(session, period),
            "lesson_started_at": iso(lesson_start(session, period)),
            "items": [line.view() for line in lines],
        }
    )


def _spreadsheet(data: bytes, names: tuple[str, str]) -> web.Response:
    return web.Response(
        body=data,
        headers={
            "Content-Type": XLSX_TYPE,
            "Cache-Control": "no-store",
            "Content-Disposition": content_disposition(*names),
        },
    )


@routes.route(
    "GET",
    "/sessions/{session_id}/attendance.xlsx",
    summary="The session's attendance as an Excel file (personal IDs kept as text)",
    access=ADMIN_OR_TEACHER,
    produces=XLSX_TYPE,
)
async def attendance_of_session_xlsx(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with request.app[DB]() as db:
        session, period = await readable_session(db, user, session_id)
        table = attendance_table(await session_attendance(db, session, period), period)
        audit(
            db,
            user,
            "attendance_downloaded",
            target=f"session:{session_id}",
            address=auth.client_address(request),
            format="xlsx",
        )
        await db.commit()
    day = session.started_at.astimezone(SCHOOL_TIMEZONE).date().isoformat()
    data = await asyncio.to_thread(xlsx_bytes, "Điểm danh", *table)
    return _spreadsheet(
        data,
        download_names(["diem-danh", period.school_class.name, period.subject, day, f"session-{session_id}"], "xlsx"),
    )


@routes.route(
    "GET",
    "/sessions/{session_id}/assessments",
    summary="The session's quick polls and quizzes: per question the counts and every student's answer "
    "(choice or text, time, right, points); per student the score",
    access=ADMIN_OR_TEACHER,
    response=SessionAssessments,
)
async def assessments_of_session(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with request.app[DB]() as db:
        session, period = await readable_session(db, user, session_id)
        polls, people = await session_polls(db, session_id)
        audit(db, user, "assessments_viewed", target=f"session:{session_id}", address=auth.client_address(request))
        await db.commit()
    return web.json_response({"session": session_summary(session, period), **polls_view(polls, people)})


@routes.route(
    "GET",
    "/sessions/{session_id}/polls.xlsx",
    summary="The session's quick polls and quizzes as an Excel file: the questions, every student's "
    "answer and the scores (personal IDs as text)",
    access=ADMIN_OR_TEACHER,
    produces=XLSX_TYPE,
)
async def polls_of_session_xlsx(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with request.app[DB]() as db:
        session, period = await readable_session(db, user, session_id)
        polls, people = await session_polls(db, session_id)
        audit(
            db,
            user,
            "polls_downloaded",
            target=f"session:{session_id}",
            address=auth.client_address(request),
            format="xlsx",
        )
        await db.commit()
    day = session.started_at.astimezone(SCHOOL_TIMEZONE).date().isoformat()
    data = await asyncio.to_thread(polls_xlsx, polls, people)
    return _spreadsheet(
        data,
        download_names(
            ["cau-hoi-nhanh", period.school_class.name, period.subject, day, f"session-{session_id}"], "xlsx"
        ),
    )


async def _class_for(db, user: User, class_id: int) -> SchoolClass:
    """Admins: any class. Teachers: a class they teach (an assignment, or periods of their own in it)."""
    school_class = await db.get(SchoolClass, class_id)
    if school_class is None:
        raise not_found("Class")
    if user.role != AccountRole.admin:
        teaches = (
            await db.execute(
                select(TeachingAssignment.id)
                .where(TeachingAssignment.class_id == class_id, TeachingAssignment.teacher_id == user.id)
                .limit(1)
            )
        ).first() or (
            await db.execute(
                select(Period.id).where(Period.class_id == class_id, Period.teacher_id == user.id).limit(1)
            )
        ).first()
        if not teaches:
            raise not_found("Class")
    return school_class


def _class_range(request: web.Request) -> tuple[date, date]:
    """The asked date range (default: the last 30 days), at most MAX_CLASS_RANGE_DAYS long."""
    start, end = _date_range(request)
    today = datetime.now(SCHOOL_TIMEZONE).date()
    end = end or today
    start = start or min(end, today) - timedelta(days=30)
    if start > end:
        raise ApiError(400, "invalid_request", "The date range ends before it starts (to < from).")
    if (end - start).days > MAX_CLASS_RANGE_DAYS:
        raise ApiError(400, "invalid_request", f"Ask for at most {MAX_CLASS_RANGE_DAYS} days at a time.")
    return start, end


async def _class_attendance(db, user: User, class_id: int, start: date, end: date):
    """(class, its sessions in the range oldest first, one StudentSummary per student)"""
    school_class = await _class_for(db, user, class_id)
    found, _ = await find_sessions(db, user, SessionFilter(class_id=class_id, from_day=start, to_day=end), limit=10_000)
    found.reverse()  # oldest first, as a register reads
    enrolled = (
        (
            await db.execute(
                select(User).join(Enrollment, Enrollment.student_id == User.id).where(Enrollment.class_id == class_id)
            )
        )
        .scalars()
        .all()
    )
    return school_class, found, await class_summary(db, found, list(enrolled))


CLASS_RANGE = {
    "from": "first school-local date (default: 30 days ago)",
    "to": "last school-local date (default: today)",
}


@routes.route(
    "GET",
    "/classes/{class_id}/attendance",
    summary="Attendance summary per student of a class over a date range (teachers: over their own periods)",
    access=ADMIN_OR_TEACHER,
    query=CLASS_RANGE,
    response=ClassAttendance,
)
async def attendance_of_class(request: web.Request) -> web.Response:
    user = current_user(request)
    class_id = path_int(request, "class_id")
    start, end = _class_range(request)
    async with request.app[DB]() as db:
        school_class, found, lines = await _class_attendance(db, user, class_id, start, end)
        sessions = await summaries(db, found)
        audit(
            db,
            user,
            "class_attendance_viewed",
            target=f"class:{class_id}",
            address=auth.client_address(request),
            range=f"{start}..{end}",
        )
        await db.commit()
    return web.json_response(
        {
            "class": {"class_id": school_class.id, "name": school_class.name, "school_year": school_class.school_year},
            "from": start.isoformat(),
            "to": end.isoformat(),
            "sessions": sessions,
            "items": [line.view() for line in lines],
        }
    )


@routes.route(
    "GET",
    "/classes/{class_id}/attendance.xlsx",
    summary="The class's attendance summary as an Excel file (personal IDs kept as text)",
    access=ADMIN_OR_TEACHER,
    query=CLASS_RANGE,
    produces=XLSX_TYPE,
)
async def attendance_of_class_xlsx(request: web.Request) -> web.Response:
    user = current_user(request)
    class_id = path_int(request, "class_id")
    start, end = _class_range(request)
    async with request.app[DB]() as db:
        school_class, _, lines = await _class_attendance(db, user, class_id, start, end)
        audit(
            db,
            user,
            "class_attendance_downloaded",
            target=f"class:{class_id}",
            address=auth.client_address(request),
            range=f"{start}..{end}",
            format="xlsx",
        )
        await db.commit()
    data = await asyncio.to_thread(xlsx_bytes, "Chuyên cần", *class_summary_table(lines))
    return _spreadsheet(
        data, download_names(["diem-danh", school_class.name, start.isoformat(), end.isoformat()], "xlsx")
    )


@routes.route(
    "GET",
    "/audit",
    summary="The audit log, newest first (admins)",
    access={"admin"},
    query={
        "actor_id": "who",
        "action": "what (e.g. recording_viewed)",
        "target": "on what (e.g. session:7), exact",
        "from": "first school-local date",
        "to": "last school-local date",
        "limit": "max 500 (default 100)",
        "before_id": "entries older than this one (paging)",
    },
    response=AuditPage,
)
async def read_audit_log(request: web.Request) -> web.Response:
    user = current_user(request)
    start, end = _date_range(request)
    limit = _query_int(request, "limit", 100, low=1, high=500)
    query = select(AuditEntry, User).outerjoin(User, AuditEntry.actor_id == User.id)
    if (actor_id := _query_int(request, "actor_id")) is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action := request.query.get("action"):
        query = query.where(AuditEntry.action == action[:64])
    if target := request.query.get("target"):
        query = query.where(AuditEntry.target == target[:128])
    if start:
        query = query.where(AuditEntry.at >= day_start(start))
    if end:
        query = query.where(AuditEntry.at < day_start(end + timedelta(days=1)))
    if (before_id := _query_int(request, "before_id")) is not None:
        query = query.where(AuditEntry.id < before_id)
    async with request.app[DB]() as db:
        rows = (await db.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1))).all()
        audit(db, user, "audit_log_viewed", address=auth.client_address(request))
        await db.commit()
    more = len(rows) > limit
    rows = rows[:limit]
    return web.json_response(
        {
            "items": [
                {
                    "entry_id": e.id,
                    "at": iso(e.at),
                    "action": e.action,
                    "target": e.target,
                    "address": e.address,
                    "details": e.details,
                    "actor": {"user_id": a.id, "name": a.full_name, "role": a.role.value} if a else None,
                }
                for e, a in rows
            ],
            "next_before_id": rows[-1][0].id if more and rows else None,
        }
    )
