"""Who may read a session's records: admins all; a teacher the sessions of their own periods."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.errors import not_found
from liveclass.models import AccountRole, LiveSession, Period, User


def may_read_records(user: User, period: Period) -> bool:
    return user.role == AccountRole.admin or (user.role == AccountRole.teacher and period.teacher_id == user.id)


async def readable_session(db: AsyncSession, user: User, session_id: int) -> tuple[LiveSession, Period]:
    """The session and its period, or 404 — also for sessions that exist but are not the caller's, so
    their existence is not revealed."""
    session = await db.get(LiveSession, session_id)
    period = await db.get(Period, session.period_id) if session else None
    if session is None or period is None or not may_read_records(user, period):
        raise not_found("Session")
    return session, period
