"""The records archive over HTTP: finding sessions, attendance (one session, a class over a date range;
as JSON, and as an Excel file), a session's assessments (quick polls and quizzes) and the audit log. Who may read
what: liveclass/archive/access.py and docs/records-archive.md."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from typing import Annotated

from aiohttp import web
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from liveclass.api.archive_schemas import (
    AuditPage,
    ClassAttendance,
    SessionAssessments,
    SessionAttendance,
    SessionList,
)
from liveclass.api.query import DateRange, Id, Offset, Query, SchoolDate, Whole, trimmed
from liveclass.api.routing import RouteTable, attachment, current_user, path_int
from liveclass.api.work import unit_of_work
from liveclass.archive.access import readable_session
from liveclass.archive.attendance import class_summary, iso, lesson_start, session_attendance
from liveclass.archive.filenames import download_names
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
from liveclass.errors import not_found
from liveclass.models import (
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
MAX_CLASS_RANGE_DAYS = 400


class SessionQuery(DateRange):
    class_id: Id | None = Field(None, description="class")
    period_id: Id | None = Field(None, description="period (its sessions: a period may be started again)")
    teacher_id: Id | None = Field(None, description="teacher")
    subject: Annotated[str | None, trimmed(100)] = Field(None, description="part of the subject's name")
    limit: Whole = Field(50, ge=1, le=200)
    offset: Offset = Field(0, description="skip this many")


@routes.route(
    "GET",
    "/sessions",
    summary="Find sessions by class, teacher, subject and date range (admins: all; teachers: their own periods)",
    access=ADMIN_OR_TEACHER,
    query=SessionQuery,
    response=SessionList,
)
async def search_sessions(request: web.Request, query: SessionQuery) -> web.Response:
    user = current_user(request)
    where = SessionFilter(
        class_id=query.class_id,
        period_id=query.period_id,
        teacher_id=query.teacher_id,
        subject=query.subject or None,
        from_day=query.from_,
        to_day=query.to,
    )
    async with unit_of_work(request) as work:
        found, total = await find_sessions(work.db, user, where, query.limit, query.offset)
        items = await summaries(work.db, found)
        work.audit(
            "sessions_searched",
            filters={
                k: v
                for k, v in request.query.items()
                if k in {"class_id", "period_id", "teacher_id", "subject", "from", "to"}
            }
            or None,
        )
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
    async with unit_of_work(request) as work:
        session, period = await readable_session(work.db, user, session_id)
        lines = await session_attendance(work.db, session, period)
        work.audit("attendance_viewed", target=f"session:{session_id}")
    return web.json_response(
        {
            "session": session_summary(session, period),
            "lesson_started_at": iso(lesson_start(session, period)),
            "items": [line.view() for line in lines],
        }
    )


def _spreadsheet(data: bytes, names: tuple[str, str]) -> web.Response:
    return attachment(data, XLSX_TYPE, *names, private=True)


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
    async with unit_of_work(request) as work:
        session, period = await readable_session(work.db, user, session_id)
        table = attendance_table(await session_attendance(work.db, session, period), period)
        work.audit("attendance_downloaded", target=f"session:{session_id}", format="xlsx")
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
    async with unit_of_work(request) as work:
        session, period = await readable_session(work.db, user, session_id)
        polls, people = await session_polls(work.db, session_id)
        work.audit("assessments_viewed", target=f"session:{session_id}")
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
    async with unit_of_work(request) as work:
        session, period = await readable_session(work.db, user, session_id)
        polls, people = await session_polls(work.db, session_id)
        work.audit("polls_downloaded", target=f"session:{session_id}", format="xlsx")
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


class ClassRange(Query):
    """A class's date range: by default the last 30 days, at most MAX_CLASS_RANGE_DAYS long."""

    to: SchoolDate = Field(
        default_factory=lambda: datetime.now(SCHOOL_TIMEZONE).date(),
        description="last school-local date (default: today)",
    )
    from_: SchoolDate = Field(
        default_factory=lambda given: (
            min(given.get("to", date.max), datetime.now(SCHOOL_TIMEZONE).date()) - timedelta(days=30)
        ),
        alias="from",
        description="first school-local date (default: 30 days before `to`, or before today if that is sooner)",
    )

    @model_validator(mode="after")
    def _not_too_long(self) -> ClassRange:
        if self.from_ > self.to:
            raise PydanticCustomError("date_range", "the date range ends before it starts (to < from)")
        if (self.to - self.from_).days > MAX_CLASS_RANGE_DAYS:
            raise PydanticCustomError(
                "date_range", "ask for at most {days} days at a time", {"days": MAX_CLASS_RANGE_DAYS}
            )
        return self


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


@routes.route(
    "GET",
    "/classes/{class_id}/attendance",
    summary="Attendance summary per student of a class over a date range (teachers: over their own periods)",
    access=ADMIN_OR_TEACHER,
    query=ClassRange,
    response=ClassAttendance,
)
async def attendance_of_class(request: web.Request, query: ClassRange) -> web.Response:
    user = current_user(request)
    class_id = path_int(request, "class_id")
    start, end = query.from_, query.to
    async with unit_of_work(request) as work:
        school_class, found, lines = await _class_attendance(work.db, user, class_id, start, end)
        sessions = await summaries(work.db, found)
        work.audit("class_attendance_viewed", target=f"class:{class_id}", range=f"{start}..{end}")
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
    query=ClassRange,
    produces=XLSX_TYPE,
)
async def attendance_of_class_xlsx(request: web.Request, query: ClassRange) -> web.Response:
    user = current_user(request)
    class_id = path_int(request, "class_id")
    start, end = query.from_, query.to
    async with unit_of_work(request) as work:
        school_class, _, lines = await _class_attendance(work.db, user, class_id, start, end)
        work.audit("class_attendance_downloaded", target=f"class:{class_id}", range=f"{start}..{end}", format="xlsx")
    data = await asyncio.to_thread(xlsx_bytes, "Chuyên cần", *class_summary_table(lines))
    return _spreadsheet(
        data, download_names(["diem-danh", school_class.name, start.isoformat(), end.isoformat()], "xlsx")
    )


class AuditQuery(DateRange):
    actor_id: Id | None = Field(None, description="who")
    action: Annotated[str | None, trimmed(64)] = Field(None, description="what (e.g. recording_viewed)")
    target: Annotated[str | None, trimmed(128)] = Field(None, description="on what (e.g. session:7), exact")
    limit: Whole = Field(100, ge=1, le=500)
    before_id: Id | None = Field(None, description="entries older than this one (paging)")


@routes.route(
    "GET",
    "/audit",
    summary="The audit log, newest first (admins)",
    access={"admin"},
    query=AuditQuery,
    response=AuditPage,
)
async def read_audit_log(request: web.Request, query: AuditQuery) -> web.Response:
    limit = query.limit
    found = select(AuditEntry, User).outerjoin(User, AuditEntry.actor_id == User.id)
    if query.actor_id is not None:
        found = found.where(AuditEntry.actor_id == query.actor_id)
    if query.action:
        found = found.where(AuditEntry.action == query.action)
    if query.target:
        found = found.where(AuditEntry.target == query.target)
    if query.from_:
        found = found.where(AuditEntry.at >= day_start(query.from_))
    if query.to:
        found = found.where(AuditEntry.at < day_start(query.to + timedelta(days=1)))
    if query.before_id is not None:
        found = found.where(AuditEntry.id < query.before_id)
    async with unit_of_work(request) as work:
        rows = (await work.db.execute(found.order_by(AuditEntry.id.desc()).limit(limit + 1))).all()
        work.audit("audit_log_viewed")
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
