"""The audit log: who did what to which record, when, from where."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.models import AuditEntry, User


def audit(
    db: AsyncSession, actor: User | None, action: str, target: str | None = None, address: str | None = None, **details
) -> None:
    """Add an entry to the caller's transaction, so it is kept exactly when the action is."""
    db.add(
        AuditEntry(
            actor_id=actor.id if actor else None, action=action, target=target, address=address, details=details or None
        )
    )
