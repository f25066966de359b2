"""Finding sessions in the archive, and the one-line summary each search result shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.archive.attendance import iso
from liveclass.models import AccountRole, AttendanceInterval, LiveSession, Period, Recording, User

# Dates in filters are the school's calendar dates (a period at 06:30 in Hà Nội is 23:30 UTC the day before).
SCHOOL_TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), SCHOOL_TIMEZONE)


@dataclass
class SessionFilter:
    class_id: int | None = None
    period_id: int | None = None
    teacher_id: int | None = None
    subject: str | None = None
    from_day: date | None = None
    to_day: date | None = None  # included

    def clauses(self, user: User) -> list:
        found = []
        if user.role != AccountRole.admin:  # a teacher: their own periods only
            found.append(Period.teacher_id == user.id)
        if self.class_id is not None:
            found.append(Period.class_id == self.class_id)
        if self.period_id is not None:
            found.append(LiveSession.period_id == self.period_id)
        if self.teacher_id is not None:
            found.append(Period.teacher_id == self.teacher_id)
        if self.subject:
            found.append(func.lower(Period.subject).contains(self.subject.lower(), autoescape=True))
        if self.from_day is not None:
            found.append(LiveSession.started_at >= day_start(self.from_day))
        if self.to_day is not None:
            found.append(LiveSession.started_at < day_start(self.to_day + timedelta(days=1)))
        return found


async def find_sessions(
    db: AsyncSession, user: User, where: SessionFilter, limit: int = 50, offset: int = 0
) -> tuple[list[tuple[LiveSession, Period]], int]:
    """Newest first, with the total number that match (for paging)."""
    base = select(LiveSession, Period).join(Period, LiveSession.period_id == Period.id).where(*where.clauses(user))
    total = (await db.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    rows = (
        await db.execute(
            base.order_by(LiveSession.started_at.desc(), LiveSession.id.desc()).limit(limit).offset(offset)
        )
    ).all()
    return [(s, p) for s, p in rows], total


async def summaries(db: AsyncSession, found: list[tuple[LiveSession, Period]]) -> list[dict]:
    ids = [s.id for s, _ in found]
    recordings = (
        dict(
            (
                await db.execute(
                    select(Recording.session_id, func.count())
                    .where(Recording.session_id.in_(ids))
                    .group_by(Recording.session_id)
                )
            ).all()
        )
        if ids
        else {}
    )
    participants = (
        dict(
            (
                await db.execute(
                    select(AttendanceInterval.session_id, func.count(func.distinct(AttendanceInterval.user_id)))
                    .where(AttendanceInterval.session_id.in_(ids))
                    .group_by(AttendanceInterval.session_id)
                )
            ).all()
        )
        if ids
        else {}
    )
    return [session_summary(s, p, recordings.get(s.id, 0), participants.get(s.id, 0)) for s, p in found]


def session_summary(
    session: LiveSession, period: Period, recordings: int | None = None, participants: int | None = None
) -> dict:
    return {
        "session_id": session.id,
        "period_id": period.id,
        "class_id": period.class_id,
        "class_name": period.school_class.name,
        "subject": period.subject,
        "teacher": {"user_id": period.teacher_id, "name": period.teacher.full_name},
        "period_starts_at": iso(period.starts_at),
        "period_ends_at": iso(period.ends_at),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "running": session.running,
        "legal_hold": session.legal_hold,
        "recordings": recordings,
        "participants": participants,
    }
