"""Periods and their live sessions: who sees a period, who may start it, and in which room role one joins."""

from __future__ import annotations

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.errors import ApiError, forbidden, not_found
from liveclass.models import (
    AccountRole,
    Enrollment,
    LiveSession,
    ParentLink,
    Period,
    SchoolClass,
    TeachingAssignment,
    User,
    utcnow,
)


def visible_periods_clause(user: User):
    """SQL condition on Period: the periods this account may see."""
    if user.role in (AccountRole.admin, AccountRole.observer):
        return True
    if user.role == AccountRole.teacher:
        return Period.teacher_id == user.id
    if user.role == AccountRole.student:
        return Period.class_id.in_(select(Enrollment.class_id).where(Enrollment.student_id == user.id))
    # parent: periods open to parents in their children's classes
    children_classes = (
        select(Enrollment.class_id)
        .join(ParentLink, ParentLink.student_id == Enrollment.student_id)
        .where(ParentLink.parent_id == user.id)
    )
    return and_(Period.parents_invited.is_(True), Period.class_id.in_(children_classes))


async def visible_period(db: AsyncSession, user: User, period_id: int) -> Period:
    period = (
        await db.execute(select(Period).where(Period.id == period_id, visible_periods_clause(user)))
    ).scalar_one_or_none()
    if period is None:
        raise not_found("Period")
    return period


async def teacher_may_teach(db: AsyncSession, teacher_id: int, class_id: int) -> bool:
    query = select(
        or_(
            exists().where(TeachingAssignment.teacher_id == teacher_id, TeachingAssignment.class_id == class_id),
            exists().where(SchoolClass.id == class_id, SchoolClass.homeroom_teacher_id == teacher_id),
        )
    )
    return bool((await db.execute(query)).scalar())


def ensure_may_run(user: User, period: Period) -> None:
    """Starting and ending a period: its own teacher, or an admin."""
    if not (user.role == AccountRole.admin or period.teacher_id == user.id):
        raise forbidden("Only the period's teacher or an admin may start or end it.")


async def running_session(db: AsyncSession, period_id: int) -> LiveSession | None:
    return (
        await db.execute(select(LiveSession).where(LiveSession.period_id == period_id, LiveSession.ended_at.is_(None)))
    ).scalar_one_or_none()


async def start_session(db: AsyncSession, user: User, period: Period, node: str) -> tuple[LiveSession, bool]:
    """The running session of the period, started now if there is none. Returns (session, created)."""
    ensure_may_run(user, period)
    current = await running_session(db, period.id)
    if current:
        return current, False
    session = LiveSession(period_id=period.id, started_by_id=user.id, node=node, started_at=utcnow())
    try:
        async with db.begin_nested():  # a savepoint: losing a race must not undo the caller's transaction
            db.add(session)
    except IntegrityError:  # another request started it meanwhile (uq_sessions_one_running): that one
        current = await running_session(db, period.id)
        if current is None:
            raise
        return current, False
    await db.refresh(session, ["period"])
    return session, True


async def end_session(db: AsyncSession, user: User, period: Period) -> LiveSession:
    ensure_may_run(user, period)
    current = await running_session(db, period.id)
    if current is None:
        raise ApiError(409, "period_not_running", "This period is not running.")
    current.ended_at = utcnow()
    return current


async def room_role_for(db: AsyncSession, user: User, period: Period) -> tuple[str, bool]:
    """The room role `user` joins `period` in, and whether they are on the class roster; 403 if none."""
    if period.teacher_id == user.id:
        return "teacher", False
    if user.role in (AccountRole.admin, AccountRole.observer):
        return "observer", False
    if user.role == AccountRole.student:
        enrolled = (
            await db.execute(
                select(exists().where(Enrollment.class_id == period.class_id, Enrollment.student_id == user.id))
            )
        ).scalar()
        if enrolled:
            return "student", True
    if user.role == AccountRole.parent and period.parents_invited:
        linked = (
            await db.execute(
                select(
                    exists().where(
                        ParentLink.parent_id == user.id,
                        ParentLink.student_id == Enrollment.student_id,
                        Enrollment.class_id == period.class_id,
                    )
                )
            )
        ).scalar()
        if linked:
            return "guest", False  # a parent is not on the class roster
    raise forbidden("You are not a participant of this period.")
