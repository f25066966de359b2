"""Accounts and classes (school admins; teachers may read the classes they teach)."""

from __future__ import annotations

from typing import Annotated, Any, cast

from aiohttp import web
from pydantic import Field
from sqlalchemy import CursorResult, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from liveclass import accounts, auth, cluster, roster
from liveclass.api.query import Offset, Query, SchoolYear, Whole, trimmed
from liveclass.api.routing import RouteTable, current_user, dump, path_int
from liveclass.api.schemas import (
    AssignmentCreate,
    AssignmentOut,
    ClassCreate,
    ClassDetail,
    ClassOut,
    ClassUpdate,
    Ok,
    PasswordReset,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)
from liveclass.api.timetable_schemas import RosterImported, RosterPassword
from liveclass.api.work import unit_of_work
from liveclass.appkeys import SETTINGS
from liveclass.errors import ApiError, not_found
from liveclass.models import (
    AccountRole,
    Enrollment,
    LiveSession,
    ParentLink,
    Period,
    SchoolClass,
    TeachingAssignment,
    User,
)

routes = RouteTable("users and classes")
ADMIN = {"admin"}


class UserQuery(Query):
    role: AccountRole | None = Field(None, description="account role")
    q: Annotated[str | None, trimmed(200)] = Field(None, description="part of the name or personal ID")
    limit: Whole = Field(100, ge=1, le=1000)
    offset: Offset = Field(0, description="skip this many")


class RosterQuery(Query):
    school_year: SchoolYear = Field(
        default_factory=roster.current_school_year, description="the classes' school year (default: the current one)"
    )


async def _user_or_404(db, user_id: int) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise not_found("Account")
    return user


@routes.route(
    "GET",
    "/users",
    summary="List accounts",
    access=ADMIN,
    response=UserOut,
    many=True,
    query=UserQuery,
)
async def list_users(request: web.Request, query: UserQuery) -> web.Response:
    found = select(User).order_by(User.full_name, User.id).limit(query.limit).offset(query.offset)
    if query.role:
        found = found.where(User.role == query.role)
    if query.q:  # "%" and "_" are searched as written (autoescape), not as wildcards
        found = found.where(
            or_(
                func.lower(User.full_name).contains(query.q.lower(), autoescape=True),
                User.personal_id.contains(query.q, autoescape=True),
            )
        )
    async with unit_of_work(request) as work:
        users = (await work.db.execute(found)).scalars().all()
    return dump([UserOut.model_validate(u) for u in users])


@routes.route(
    "POST", "/users", summary="Create an account", access=ADMIN, body=UserCreate, response=UserCreated, status=201
)
async def create_user(request: web.Request, body: UserCreate) -> web.Response:
    async with unit_of_work(request) as work:
        user, generated = await accounts.create_user(
            work.db,
            request.app[SETTINGS],
            personal_id=body.personal_id,
            full_name=body.full_name,
            role=body.role,
            password=body.password,
            date_of_birth=body.date_of_birth,
        )
        work.audit("user_created", target=f"user:{user.id}", role=user.role.value)
    return dump(UserCreated(user=UserOut.model_validate(user), generated_password=generated), status=201)


@routes.route("GET", "/users/{user_id}", summary="One account", access=ADMIN, response=UserOut)
async def get_user(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        return dump(UserOut.model_validate(await _user_or_404(work.db, path_int(request, "user_id"))))


@routes.route(
    "PATCH",
    "/users/{user_id}",
    summary="Change an account (name, role, active)",
    access=ADMIN,
    body=UserUpdate,
    response=UserOut,
)
async def update_user(request: web.Request, body: UserUpdate) -> web.Response:
    actor = current_user(request)
    async with unit_of_work(request) as work:
        user = await _user_or_404(work.db, path_int(request, "user_id"))
        changes = body.model_dump(exclude_unset=True)
        role_before = user.role
        if user.id == actor.id and (changes.get("active") is False or changes.get("role", "admin") != "admin"):
            raise ApiError(400, "cannot_demote_self", "You cannot deactivate or demote your own account.")
        for key, value in changes.items():
            if value is None and key in ("full_name", "role", "active"):
                raise ApiError(400, "invalid_request", f"{key} cannot be empty.")
            setattr(user, key, value)
        if changes.get("active") is False:
            await auth.close_all_logins(work.db, user.id)
        work.audit("user_updated", target=f"user:{user.id}", fields=sorted(changes))
    # An account that lost its rights leaves every live room at once, on every node.
    if changes.get("active") is False:
        await cluster.drop_user_everywhere(request, user.id, "account_deactivated")
    elif user.role != role_before:
        await cluster.drop_user_everywhere(request, user.id, "role_changed")
    return dump(UserOut.model_validate(user))


@routes.route(
    "POST",
    "/users/{user_id}/reset-password",
    summary="Give an account a new generated password (ends its logins)",
    access=ADMIN,
    response=PasswordReset,
)
async def reset_user_password(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        user = await _user_or_404(work.db, path_int(request, "user_id"))
        password = accounts.reset_password(user)
        await auth.close_all_logins(work.db, user.id)
        work.audit("password_reset", target=f"user:{user.id}")
    await cluster.drop_user_everywhere(request, user.id, "password_reset")
    return dump(PasswordReset(generated_password=password))


@routes.route(
    "PUT", "/users/{user_id}/children/{student_id}", summary="Link a parent to a student", access=ADMIN, response=Ok
)
async def link_child(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        parent = await _user_or_404(work.db, path_int(request, "user_id"))
        student = await _user_or_404(work.db, path_int(request, "student_id"))
        if parent.role != AccountRole.parent or student.role != AccountRole.student:
            raise ApiError(400, "invalid_link", "Only a parent account can be linked to a student account.")
        exists = (
            await work.db.execute(
                select(ParentLink).where(ParentLink.parent_id == parent.id, ParentLink.student_id == student.id)
            )
        ).scalar_one_or_none()
        if not exists:
            work.db.add(ParentLink(parent_id=parent.id, student_id=student.id))
            work.audit("parent_linked", target=f"user:{parent.id}", student=student.id)
    return web.json_response({"ok": True})


# -- classes -----------------------------------------------------------------------------------------
async def _class_or_404(db, class_id: int) -> SchoolClass:
    school_class = await db.get(SchoolClass, class_id)
    if school_class is None:
        raise not_found("Class")
    return school_class


async def _check_teacher(db, teacher_id: int | None) -> None:
    if teacher_id is None:
        return
    teacher = await db.get(User, teacher_id)
    if teacher is None or teacher.role != AccountRole.teacher:
        raise ApiError(400, "not_a_teacher", f"Account {teacher_id} is not a teacher.")


def teaches_class_clause(teacher_id: int):
    """SQL condition: the class is one the teacher teaches or is homeroom teacher of."""
    return or_(
        SchoolClass.homeroom_teacher_id == teacher_id,
        SchoolClass.id.in_(select(TeachingAssignment.class_id).where(TeachingAssignment.teacher_id == teacher_id)),
    )


@routes.route(
    "GET",
    "/classes",
    summary="List classes (a teacher sees the classes they teach)",
    access={"admin", "teacher"},
    response=ClassOut,
    many=True,
)
async def list_classes(request: web.Request) -> web.Response:
    user = current_user(request)
    query = select(SchoolClass).order_by(SchoolClass.school_year.desc(), SchoolClass.name)
    if user.role == AccountRole.teacher:
        query = query.where(teaches_class_clause(user.id))
    async with unit_of_work(request) as work:
        classes = (await work.db.execute(query)).scalars().all()
    return dump([ClassOut.model_validate(c) for c in classes])


@routes.route(
    "POST", "/classes", summary="Create a class", access=ADMIN, body=ClassCreate, response=ClassOut, status=201
)
async def create_class(request: web.Request, body: ClassCreate) -> web.Response:
    async with unit_of_work(request) as work:
        await _check_teacher(work.db, body.homeroom_teacher_id)
        school_class = SchoolClass(**body.model_dump())
        work.db.add(school_class)
        try:
            await work.db.flush()
        except IntegrityError:
            raise ApiError(409, "class_exists", f"Class {body.name} already exists in {body.school_year}.") from None
        work.audit("class_created", target=f"class:{school_class.id}")
    return dump(ClassOut.model_validate(school_class), status=201)


@routes.route(
    "GET",
    "/classes/{class_id}",
    summary="A class with its roster and teaching assignments",
    access={"admin", "teacher"},
    response=ClassDetail,
)
async def get_class(request: web.Request) -> web.Response:
    user = current_user(request)
    class_id = path_int(request, "class_id")
    async with unit_of_work(request) as work:
        query = select(SchoolClass).where(SchoolClass.id == class_id)
        if user.role == AccountRole.teacher:
            query = query.where(teaches_class_clause(user.id))
        school_class = (await work.db.execute(query)).scalar_one_or_none()
        if school_class is None:
            raise not_found("Class")
        students = (
            await work.db.execute(
                select(User)
                .join(Enrollment, Enrollment.student_id == User.id)
                .where(Enrollment.class_id == class_id)
                .order_by(User.full_name)
            )
        ).scalars()
        assignments = (
            await work.db.execute(select(TeachingAssignment).where(TeachingAssignment.class_id == class_id))
        ).scalars()
        detail = ClassDetail(
            **ClassOut.model_validate(school_class).model_dump(),
            students=[UserOut.model_validate(s) for s in students],
            assignments=[AssignmentOut.model_validate(a) for a in assignments],
        )
    return dump(detail)


@routes.route(
    "PATCH",
    "/classes/{class_id}",
    summary="Rename a class or change its homeroom teacher",
    access=ADMIN,
    body=ClassUpdate,
    response=ClassOut,
)
async def update_class(request: web.Request, body: ClassUpdate) -> web.Response:
    async with unit_of_work(request) as work:
        school_class = await _class_or_404(work.db, path_int(request, "class_id"))
        changes = body.model_dump(exclude_unset=True)
        await _check_teacher(work.db, changes.get("homeroom_teacher_id"))
        if "name" in changes and changes["name"] is None:
            raise ApiError(400, "invalid_request", "name cannot be empty.")
        for key, value in changes.items():
            setattr(school_class, key, value)
        try:
            await work.db.flush()
        except IntegrityError:
            raise ApiError(409, "class_exists", "Another class of that school year has this name.") from None
        work.audit("class_updated", target=f"class:{school_class.id}", fields=sorted(changes))
    return dump(ClassOut.model_validate(school_class))


@routes.route("PUT", "/classes/{class_id}/students/{student_id}", summary="Enroll a student", access=ADMIN, response=Ok)
async def enroll(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        school_class = await _class_or_404(work.db, path_int(request, "class_id"))
        student = await _user_or_404(work.db, path_int(request, "student_id"))
        if student.role != AccountRole.student:
            raise ApiError(400, "not_a_student", "Only student accounts can be enrolled in a class.")
        exists = (
            await work.db.execute(
                select(Enrollment).where(Enrollment.class_id == school_class.id, Enrollment.student_id == student.id)
            )
        ).scalar_one_or_none()
        if not exists:
            work.db.add(Enrollment(class_id=school_class.id, student_id=student.id))
            work.audit("student_enrolled", target=f"class:{school_class.id}", student=student.id)
    return web.json_response({"ok": True})


@routes.route(
    "DELETE",
    "/classes/{class_id}/students/{student_id}",
    summary="Remove a student from a class",
    access=ADMIN,
    response=Ok,
)
async def unenroll(request: web.Request) -> web.Response:
    class_id, student_id = path_int(request, "class_id"), path_int(request, "student_id")
    async with unit_of_work(request) as work:
        result = await work.db.execute(
            delete(Enrollment).where(Enrollment.class_id == class_id, Enrollment.student_id == student_id)
        )
        if cast(CursorResult[Any], result).rowcount == 0:  # a DELETE's result counts its rows
            raise not_found("Enrollment")
        work.audit("student_unenrolled", target=f"class:{class_id}", student=student_id)
        await work.commit()
        running = (
            (
                await work.db.execute(
                    select(LiveSession.id)
                    .join(Period, Period.id == LiveSession.period_id)
                    .where(Period.class_id == class_id, LiveSession.ended_at.is_(None))
                )
            )
            .scalars()
            .all()
        )
    # The student leaves the class's running periods at once (parents invited through them stay guests).
    await cluster.drop_user_from_sessions(request, student_id, list(running), "removed_from_class")
    return web.json_response({"ok": True})


@routes.route(
    "POST",
    "/classes/{class_id}/assignments",
    summary="Assign a teacher to teach a subject",
    access=ADMIN,
    body=AssignmentCreate,
    response=AssignmentOut,
    status=201,
)
async def assign(request: web.Request, body: AssignmentCreate) -> web.Response:
    async with unit_of_work(request) as work:
        school_class = await _class_or_404(work.db, path_int(request, "class_id"))
        await _check_teacher(work.db, body.teacher_id)
        assignment = TeachingAssignment(class_id=school_class.id, teacher_id=body.teacher_id, subject=body.subject)
        work.db.add(assignment)
        try:
            await work.db.flush()
        except IntegrityError:
            raise ApiError(409, "assignment_exists", "This teacher already teaches this subject here.") from None
        work.audit("teacher_assigned", target=f"class:{school_class.id}", teacher=body.teacher_id, subject=body.subject)
    return dump(AssignmentOut.model_validate(assignment), status=201)


@routes.route(
    "DELETE",
    "/classes/{class_id}/assignments/{assignment_id}",
    summary="Remove a teaching assignment",
    access=ADMIN,
    response=Ok,
)
async def unassign(request: web.Request) -> web.Response:
    class_id, assignment_id = path_int(request, "class_id"), path_int(request, "assignment_id")
    async with unit_of_work(request) as work:
        result = await work.db.execute(
            delete(TeachingAssignment).where(
                TeachingAssignment.id == assignment_id, TeachingAssignment.class_id == class_id
            )
        )
        if cast(CursorResult[Any], result).rowcount == 0:  # a DELETE's result counts its rows
            raise not_found("Assignment")
        work.audit("teacher_unassigned", target=f"class:{class_id}", assignment=assignment_id)
    return web.json_response({"ok": True})


# -- the roster import (danh sách học sinh): the CLI's checks and line-numbered problems, from the web page ----
ROSTER_MAX_BYTES = 5 * 1024 * 1024


@routes.route(
    "POST",
    "/roster/import",
    summary="Import the roster CSV (the CLI's columns and checks) sent as the "
    "raw body: every row, or none and every bad row listed; new accounts' passwords are returned once",
    access=ADMIN,
    response=RosterImported,
    query=RosterQuery,
)
async def import_roster(request: web.Request, query: RosterQuery) -> web.Response:
    settings = request.app[SETTINGS]
    school_year = query.school_year
    if request.content_length is not None and request.content_length > ROSTER_MAX_BYTES:
        raise ApiError(413, "file_too_large", "The file is larger than 5 MB.")
    raw = await request.content.read(ROSTER_MAX_BYTES + 1)
    if len(raw) > ROSTER_MAX_BYTES:
        raise ApiError(413, "file_too_large", "The file is larger than 5 MB.")
    if b"\x00" in raw:  # no store keeps it (PostgreSQL refuses it in text): a clear 400, not a 500
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ApiError(
            400, "bad_roster_file", f"line {line}: the file contains the NUL character. Nothing was imported."
        )
    try:
        rows, problems = roster.parse_roster(roster.decode_roster(raw), settings)
    except roster.RosterFileError as exc:
        raise ApiError(400, "bad_roster_file", f"{exc}. Nothing was imported.") from None
    if not rows and not problems:
        raise ApiError(400, "empty_import", "The file has no rows under its header.")
    async with unit_of_work(request) as work:
        problems = sorted(problems + await roster.check_links(work.db, rows), key=lambda p: p.line)
        if problems:
            errors = [{"line": p.line, "reason": p.reason} for p in problems]
            lines = sorted({p.line for p in problems})
            message = (
                f"Nothing was imported: {len(lines)} bad row(s) (lines {', '.join(map(str, lines[:20]))}"
                f"{'…' if len(lines) > 20 else ''}). {problems[0]}"
            )
            return web.json_response(
                {
                    "error": {"code": "import_rejected", "message": message, "details": errors},
                    "created": 0,
                    "errors": errors,
                },
                status=400,
            )
        result = await roster.import_roster(work.db, settings, rows, school_year=school_year)
        work.audit(
            "roster_imported", via="web", created=result.created, updated=result.updated, school_year=school_year
        )
    return dump(
        RosterImported(
            school_year=school_year,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            passwords=[RosterPassword(personal_id=p, full_name=n, password=w) for p, n, w in result.passwords],
        )
    )
