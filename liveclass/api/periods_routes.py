"""Periods (the timetable), starting and ending them, and joining their live session."""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select, text

from liveclass import cluster, periods, timetable, turn
from liveclass.api.timetable_schemas import TimetableCreate, TimetableCreated, TimetableImported
from liveclass.archive.spreadsheets import CSV_TYPE, XLSX_TYPE
from liveclass.roster import current_school_year
from liveclass.sheet_import import SheetFileError
from liveclass.api.query import Id, Query, SchoolYear, Time, trimmed
from liveclass.api.routing import ANY_USER, RouteTable, attachment, current_user, dump, path_int
from liveclass.api.schemas import (
    ConnectInfo,
    IceServerOut,
    JoinResponse,
    PeriodCreate,
    PeriodOut,
    PeriodUpdate,
    SessionOut,
)
from liveclass.api.work import Work, unit_of_work
from liveclass.appkeys import SETTINGS
from liveclass.errors import ApiError, forbidden, not_found
from liveclass.models import AccountRole, LiveSession, Period, SchoolClass, User
from signaling.join_token import issue_join_token

routes = RouteTable("periods and sessions")
ADMIN_OR_TEACHER = {"admin", "teacher"}


def period_out(period: Period, session: LiveSession | None, taught_until: datetime | None = None) -> PeriodOut:
    return PeriodOut(
        id=period.id,
        class_id=period.class_id,
        class_name=period.school_class.name,
        subject=period.subject,
        teacher_id=period.teacher_id,
        teacher_name=period.teacher.full_name,
        starts_at=period.starts_at,
        ends_at=period.ends_at,
        mode=period.mode,
        parents_invited=period.parents_invited,
        live_session=SessionOut.model_validate(session) if session else None,
        taught_until=taught_until,
    )


async def _taught_until(db, period_ids: list[int]) -> dict[int, datetime]:
    """The end of each period's last ended session: the period was taught (the list shows it so)."""
    if not period_ids:
        return {}
    rows = await db.execute(
        select(LiveSession.period_id, func.max(LiveSession.ended_at))
        .where(LiveSession.period_id.in_(period_ids), LiveSession.ended_at.is_not(None))
        .group_by(LiveSession.period_id)
    )
    return {period_id: ended for period_id, ended in rows}


class PeriodQuery(Query):
    from_: Time | None = Field(None, alias="from", description="periods that end at or after this time")
    to: Time | None = Field(None, description="periods that start before this time")
    class_id: Id | None = Field(None, description="only this class")


async def _check_period_fields(db, user: User, class_id: int, teacher_id: int, starts_at, ends_at) -> None:
    if ends_at <= starts_at:
        raise ApiError(400, "invalid_times", "The period must end after it starts.")
    if await db.get(SchoolClass, class_id) is None:
        raise ApiError(400, "unknown_class", f"There is no class {class_id}.")
    teacher = await db.get(User, teacher_id)
    if teacher is None or teacher.role != AccountRole.teacher:
        raise ApiError(400, "not_a_teacher", f"Account {teacher_id} is not a teacher.")
    if user.role == AccountRole.teacher and not await periods.teacher_may_teach(db, user.id, class_id):
        raise forbidden("You can only schedule periods for classes you teach.")


@routes.route(
    "GET",
    "/periods",
    summary="Periods I may see, optionally between two times",
    access=ANY_USER,
    response=PeriodOut,
    many=True,
    query=PeriodQuery,
)
async def list_periods(request: web.Request, query: PeriodQuery) -> web.Response:
    user = current_user(request)
    wanted = select(Period).where(periods.visible_periods_clause(user)).order_by(Period.starts_at).limit(1000)
    if query.from_ is not None:
        wanted = wanted.where(Period.ends_at >= query.from_)
    if query.to is not None:
        wanted = wanted.where(Period.starts_at < query.to)
    if query.class_id is not None:
        wanted = wanted.where(Period.class_id == query.class_id)
    async with unit_of_work(request) as work:
        found = (await work.db.execute(wanted)).scalars().all()
        running = {
            s.period_id: s
            for s in (
                await work.db.execute(
                    select(LiveSession).where(
                        LiveSession.period_id.in_([p.id for p in found]), LiveSession.ended_at.is_(None)
                    )
                )
            ).scalars()
        }
        taught = await _taught_until(work.db, [p.id for p in found])
    return dump([period_out(p, running.get(p.id), taught.get(p.id)) for p in found])


@routes.route(
    "POST",
    "/periods",
    summary="Schedule a period (admins; teachers for classes they teach)",
    access=ADMIN_OR_TEACHER,
    body=PeriodCreate,
    response=PeriodOut,
    status=201,
)
async def create_period(request: web.Request, body: PeriodCreate) -> web.Response:
    user = current_user(request)
    teacher_id = body.teacher_id if user.role == AccountRole.admin else user.id
    if teacher_id is None:
        raise ApiError(400, "invalid_request", "teacher_id: name the period's teacher.")
    if user.role == AccountRole.teacher and body.teacher_id not in (None, user.id):
        raise forbidden("Teachers schedule their own periods only.")
    async with unit_of_work(request) as work:
        await _check_period_fields(work.db, user, body.class_id, teacher_id, body.starts_at, body.ends_at)
        period = Period(**body.model_dump(exclude={"teacher_id"}), teacher_id=teacher_id)
        work.db.add(period)
        await work.db.flush()
        work.audit("period_created", target=f"period:{period.id}")
        await work.commit()
        period = await periods.visible_period(work.db, user, period.id)
    return dump(period_out(period, None), status=201)


@routes.route("GET", "/periods/{period_id}", summary="One period", access=ANY_USER, response=PeriodOut)
async def get_period(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        period = await periods.visible_period(work.db, current_user(request), path_int(request, "period_id"))
        taught = await _taught_until(work.db, [period.id])
        return dump(period_out(period, await periods.running_session(work.db, period.id), taught.get(period.id)))


@routes.route(
    "PATCH",
    "/periods/{period_id}",
    summary="Change a period (admins; its own teacher)",
    access=ADMIN_OR_TEACHER,
    body=PeriodUpdate,
    response=PeriodOut,
)
async def update_period(request: web.Request, body: PeriodUpdate) -> web.Response:
    user = current_user(request)
    changes = body.model_dump(exclude_unset=True)
    for key in ("subject", "starts_at", "ends_at", "mode", "parents_invited", "teacher_id"):
        if key in changes and changes[key] is None:
            raise ApiError(400, "invalid_request", f"{key} cannot be empty.")
    async with unit_of_work(request) as work:
        period = await periods.visible_period(work.db, user, path_int(request, "period_id"))
        if user.role == AccountRole.teacher and changes.get("teacher_id", user.id) != user.id:
            raise forbidden("Only an admin can hand a period to another teacher.")
        merged = {"starts_at": period.starts_at, "ends_at": period.ends_at, "teacher_id": period.teacher_id, **changes}
        await _check_period_fields(
            work.db, user, period.class_id, merged["teacher_id"], merged["starts_at"], merged["ends_at"]
        )
        for key, value in changes.items():
            setattr(period, key, value)
        work.audit("period_updated", target=f"period:{period.id}", fields=sorted(changes))
        await work.commit()
        period = await periods.visible_period(work.db, user, period.id)
        taught = await _taught_until(work.db, [period.id])
        return dump(period_out(period, await periods.running_session(work.db, period.id), taught.get(period.id)))


@routes.route(
    "POST",
    "/periods/{period_id}/start",
    summary="Start the period's live session (or get the running one)",
    access=ADMIN_OR_TEACHER,
    response=SessionOut,
    status=201,
    other_statuses={200: "The period was already running: its session"},
)
async def start_period(request: web.Request) -> web.Response:
    user = current_user(request)
    async with unit_of_work(request) as work:
        period = await periods.visible_period(work.db, user, path_int(request, "period_id"))
        session, created = await periods.start_session(work.db, user, period, "")
        if created:
            # The session's room goes to the least-loaded live node (this one, when it runs alone).
            session.node = (await cluster.place(request, session.id)).node_id
            work.audit("period_started", target=f"session:{session.id}")
    return dump(SessionOut.model_validate(session), status=201 if created else 200)


@routes.route(
    "POST",
    "/periods/{period_id}/end",
    summary="End the period's live session for everyone",
    access=ADMIN_OR_TEACHER,
    response=SessionOut,
)
async def end_period(request: web.Request) -> web.Response:
    user = current_user(request)
    async with unit_of_work(request) as work:
        period = await periods.visible_period(work.db, user, path_int(request, "period_id"))
        session = await periods.end_session(work.db, user, period)
        # The room ends first, wherever it runs; if its node cannot be reached right now (503), the period
        # stays running and the teacher tries again, rather than a period ended here but open there.
        await cluster.room_command(request, session.id, "end_room", by_user_id=user.id, by_name=user.full_name)
        work.audit("period_ended", target=f"session:{session.id}")
    return dump(SessionOut.model_validate(session))


async def _session_or_404(db, session_id: int) -> LiveSession:
    session = await db.get(LiveSession, session_id)
    if session is None:
        raise not_found("Session")
    return session


@routes.route("GET", "/sessions/{session_id}", summary="One live session", access=ANY_USER, response=SessionOut)
async def get_session(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        session = await _session_or_404(work.db, path_int(request, "session_id"))
        try:
            await periods.visible_period(work.db, current_user(request), session.period_id)
        except ApiError:
            raise not_found("Session") from None
    return dump(SessionOut.model_validate(session))


@routes.route(
    "POST",
    "/sessions/{session_id}/join",
    summary="Get a single-use join token for the live room",
    access=ANY_USER,
    response=JoinResponse,
)
async def join_session(request: web.Request) -> web.Response:
    user = current_user(request)
    settings = request.app[SETTINGS]
    async with unit_of_work(request) as work:
        session = await _session_or_404(work.db, path_int(request, "session_id"))
        period = await work.db.get(Period, session.period_id)
        if period is None:  # a session always has its period (a foreign key)
            raise not_found("Session")
        room_role, on_roster = await periods.room_role_for(work.db, user, period)
        if not session.running:
            raise ApiError(409, "session_not_running", "This session has ended.")
        work.audit("join_requested", target=f"session:{session.id}", room_role=room_role)
    token, _ = issue_join_token(
        settings.secret_key,
        user_id=user.id,
        session_id=session.id,
        room_role=room_role,
        name=user.full_name,
        personal_id=user.personal_id,
        on_roster=on_roster,
        ttl_seconds=settings.join_token_ttl_seconds,
    )
    node = await cluster.place(request, session.id)  # the node that hosts the room, on any node asked
    ice_servers = [IceServerOut(**s.model_dump()) for s in settings.ice_servers]
    relay = turn.ice_server(settings, user.id)  # the school's TURN, with a credential of its own (liveclass/turn.py)
    if relay is not None:
        ice_servers.append(relay)
    return dump(
        JoinResponse(
            token=token,
            expires_in=settings.join_token_ttl_seconds,
            room_role=room_role,
            session_id=session.id,
            connect=ConnectInfo(**cluster.connect_info(request, node)),
            ice_servers=ice_servers,
        )
    )


# -- the timetable (thời khóa biểu): the school's local times, weekly periods, the file, the checks ----------
ADMIN = {"admin"}
# Two admins saving at once must not both pass the booking checks: one timetable change at a time, in this
# process (the lock) and across the nodes sharing a PostgreSQL store (a transaction-level advisory lock).
_timetable_locks: "weakref.WeakKeyDictionary[web.Application, asyncio.Lock]" = weakref.WeakKeyDictionary()
TIMETABLE_LOCK_KEY = 0x7469_6D65  # "time": any 64-bit number of our own


def _timetable_lock(request: web.Request) -> asyncio.Lock:
    return _timetable_locks.setdefault(request.app, asyncio.Lock())


async def _one_at_a_time(db) -> None:
    if db.bind is not None and db.bind.dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TIMETABLE_LOCK_KEY})


def _halves(text: str) -> tuple[str, str]:
    english, _, vietnamese = text.partition(" / ")
    return english, vietnamese or english


def _refuse_or_accept(found: timetable.Check, online_reason: str | None) -> None:
    """Double bookings refuse the whole request; crowded half-days need a reason."""
    if found.conflicts:
        count = len(found.conflicts)
        english, vietnamese = _halves(found.conflicts[0]["reason"])
        raise ApiError(
            409,
            "period_conflict",
            f"Nothing was created: {count} period(s) clash with another. {english} / Chưa tạo tiết nào: "
            f"{count} tiết bị trùng giờ. {vietnamese}",
            details={"conflicts": found.conflicts[:500]},
        )
    if found.half_days and not online_reason:
        english, vietnamese = _halves(found.half_days[0]["reason"])
        raise ApiError(
            409,
            "online_limit",
            f"{english} Give a reason (online_reason) to go on. / {vietnamese} Hãy ghi lý do để tiếp tục.",
            details={"half_days": found.half_days[:500]},
        )


async def _store(
    work: Work,
    planned: list[timetable.Planned],
    found: timetable.Check,
    online_reason: str | None,
    **what: Any,
) -> list[int]:
    created = timetable.create(work.db, planned)
    await work.db.flush()
    ids = [p.id for p in created]
    classes = sorted({p.class_name for p in planned})
    work.audit(
        "periods_scheduled",
        target=f"class:{planned[0].class_id}" if len(classes) == 1 else None,
        count=len(ids),
        periods=ids[:2000],
        classes=classes,
        **what,
    )
    if found.half_days:
        work.audit(
            "online_limit_overridden",
            target=f"class:{planned[0].class_id}" if len(classes) == 1 else None,
            reason=online_reason,
            periods=ids[:2000],
            half_days=[{k: h[k] for k in ("class_name", "date", "half", "count")} for h in found.half_days],
        )
    return ids


@routes.route(
    "POST",
    "/timetable/periods",
    summary="Schedule one period on a date or a weekly period between "
    "two dates, in the school's local time; all or nothing, after the booking checks",
    access=ADMIN,
    body=TimetableCreate,
    response=TimetableCreated,
    status=201,
)
async def schedule_periods(request: web.Request, body: TimetableCreate) -> web.Response:
    days = []
    if body.date:
        days = [body.date]
    elif body.from_date and body.to_date and body.weekdays:  # the model requires the three together
        days = timetable.weekly_days(body.from_date, body.to_date, set(body.weekdays))
    if not days:
        raise ApiError(
            400,
            "no_days",
            "None of these weekdays falls between the two dates. / Không có ngày nào "
            "trong các thứ đã chọn nằm giữa hai ngày này.",
        )
    async with unit_of_work(request) as work:
        school_class = await work.db.get(SchoolClass, body.class_id)
        if school_class is None:
            raise ApiError(400, "unknown_class", f"There is no class {body.class_id}. / Không có lớp này.")
        teacher = await work.db.get(User, body.teacher_id)
        if problem := await timetable.assignment_problem(work.db, teacher, school_class, body.subject):
            raise ApiError(400, "not_assigned", problem)
        assert teacher is not None  # no such account is a problem above
        planned = [
            timetable.Planned(
                school_class.id,
                school_class.name,
                body.subject,
                teacher.id,
                teacher.full_name,
                timetable.at_school(day, body.start),
                timetable.at_school(day, body.end),
                body.mode,
                body.parents_invited,
            )
            for day in days
        ]
        async with _timetable_lock(request):
            await _one_at_a_time(work.db)
            found = await timetable.check(work.db, planned)
            _refuse_or_accept(found, body.online_reason)
            ids = await _store(
                work,
                planned,
                found,
                body.online_reason,
                via="single" if body.date else "weekly",
                subject=body.subject,
                teacher=teacher.id,
            )
            await work.commit()
        stored = (await work.db.execute(select(Period).where(Period.id.in_(ids)).order_by(Period.starts_at))).scalars()
        out = [period_out(p, None) for p in stored]
    return dump(TimetableCreated(created=len(ids), periods=out, half_days=found.half_days), status=201)


async def _read_file(request: web.Request) -> bytes:
    too_large = ApiError(413, "file_too_large", "The file is larger than 2 MB. / Tệp lớn hơn 2 MB.")
    if request.content_length is not None and request.content_length > timetable.MAX_FILE_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > timetable.MAX_FILE_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _rejected(problems: list) -> web.Response:
    """The error shape, with every bad row: {line, column, reason} ("English / Tiếng Việt")."""
    errors = [p.as_dict() for p in sorted(problems, key=lambda p: p.line)]
    lines = sorted({p.line for p in problems})
    english, vietnamese = _halves(errors[0]["reason"])
    message = (
        f"Nothing was imported: {len(lines)} row(s) have problems (lines {', '.join(map(str, lines[:20]))}"
        f"{'…' if len(lines) > 20 else ''}). Line {errors[0]['line']}: {english} / Chưa nhập gì: {len(lines)} "
        f"dòng có lỗi. Dòng {errors[0]['line']}: {vietnamese}"
    )
    return web.json_response(
        {"error": {"code": "import_rejected", "message": message, "details": errors}, "created": 0, "errors": errors},
        status=400,
    )


class TimetableQuery(Query):
    school_year: SchoolYear = Field(
        default_factory=current_school_year, description="the classes' school year (default: the current one)"
    )
    online_reason: Annotated[str | None, trimmed(500, one_line=True)] = Field(
        None, description="why a class gets more than two fully online periods in a half-day"
    )


@routes.route(
    "POST",
    "/timetable/import",
    summary="Import a timetable file (CSV or XLSX, the template's "
    "columns) sent as the raw body: every period, or none and every bad row listed",
    access=ADMIN,
    response=TimetableImported,
    status=201,
    query=TimetableQuery,
)
async def import_timetable(request: web.Request, query: TimetableQuery) -> web.Response:
    school_year, online_reason = query.school_year, query.online_reason or None
    data = await _read_file(request)
    try:
        rows, problems = await asyncio.to_thread(timetable.parse_file, data)
    except SheetFileError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    async with unit_of_work(request) as work:
        planned, more = await timetable.plan_file(work.db, rows, school_year)
        problems += more
        if problems:
            return _rejected(problems)
        if len(planned) > timetable.MAX_PERIODS:
            raise ApiError(
                413,
                "too_many_periods",
                f"The file makes {len(planned)} periods, more than "
                f"{timetable.MAX_PERIODS}; split it. / Tệp tạo {len(planned)} "
                f"tiết, quá {timetable.MAX_PERIODS}; hãy chia nhỏ.",
            )
        async with _timetable_lock(request):
            await _one_at_a_time(work.db)
            found = await timetable.check(work.db, planned)
            _refuse_or_accept(found, online_reason)
            ids = await _store(
                work, planned, found, online_reason, via="import", rows=len(rows), school_year=school_year
            )
            await work.commit()
    return dump(TimetableImported(created=len(ids), half_days=found.half_days), status=201)


@routes.route(
    "GET",
    "/timetable/template.xlsx",
    summary="The timetable file's template (XLSX: headers, a guide, examples)",
    access=ADMIN,
    produces=XLSX_TYPE,
)
async def timetable_template_xlsx(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(timetable.template_xlsx)
    return attachment(data, XLSX_TYPE, "mau-thoi-khoa-bieu.xlsx", "mẫu-thời-khóa-biểu.xlsx")


@routes.route(
    "GET",
    "/timetable/template.csv",
    summary="The timetable file's template (CSV UTF-8, examples)",
    access=ADMIN,
    produces=CSV_TYPE,
)
async def timetable_template_csv(request: web.Request) -> web.Response:
    return attachment(timetable.template_csv(), CSV_TYPE, "mau-thoi-khoa-bieu.csv", "mẫu-thời-khóa-biểu.csv")
