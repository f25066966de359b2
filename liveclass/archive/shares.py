"""Recordings shared by a teacher with the class, through an expiring link.

The link carries a random token; only its SHA-256 is stored (a leaked database does not leak working
links). The link alone is not enough: it opens only for a logged-in student of the class — or a
parent of one, when the teacher included parents — and for the teacher and admins.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.archive.access import may_read_records
from liveclass.models import AccountRole, Enrollment, ParentLink, Period, RecordingShare, User

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def new_token() -> tuple[str, str]:
    """(token for the link, hash to store)"""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_for(token: str) -> str:
    return f"/#/shared/{token}"


async def find_share(db: AsyncSession, token: str) -> RecordingShare | None:
    if not _TOKEN.fullmatch(token):
        return None
    return (
        (await db.execute(select(RecordingShare).where(RecordingShare.token_hash == token_hash(token))))
        .scalars()
        .first()
    )


async def may_open(db: AsyncSession, user: User, share: RecordingShare, period: Period) -> bool:
    if may_read_records(user, period):
        return True
    if user.role == AccountRole.student:
        return (
            await db.execute(
                select(Enrollment.id).where(Enrollment.class_id == period.class_id, Enrollment.student_id == user.id)
            )
        ).first() is not None
    if user.role == AccountRole.parent and share.include_parents:
        return (
            await db.execute(
                select(ParentLink.id)
                .join(Enrollment, Enrollment.student_id == ParentLink.student_id)
                .where(ParentLink.parent_id == user.id, Enrollment.class_id == period.class_id)
            )
        ).first() is not None
    return False
