"""A request's unit of work: one database session, committed when the work ends without an error (rolled
back otherwise), and the audit log bound to who asked and from which address.

    async with unit_of_work(request) as work:
        user = await work.db.get(User, user_id)
        ...
        work.audit("user_updated", f"user:{user.id}", fields=["full_name"])
    # committed here: the change and its audit entry together

A handler that must do something only after the change is stored (remove a file, tell the live rooms)
does it after the block, or calls `await work.commit()` first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass import auth
from liveclass.appkeys import DB, USER
from liveclass.audit import audit
from liveclass.models import User


class Work:
    def __init__(self, db: AsyncSession, actor: User | None, address: str):
        self.db = db
        # Who acts: the logged-in account (None on a public route; a login sets the account it identified).
        self.actor = actor
        self.address = address  # the client's, behind a trusted proxy too (auth.client_address)

    def audit(self, action: str, target: str | None = None, **details: Any) -> None:
        """An audit entry in this work's transaction: kept exactly when the work is."""
        audit(self.db, self.actor, action, target, address=self.address, **details)

    async def commit(self) -> None:
        """Store what is done so far, before a step that must follow it; the work goes on in a new transaction."""
        await self.db.commit()


@asynccontextmanager
async def unit_of_work(request: web.Request) -> AsyncIterator[Work]:
    async with request.app[DB]() as db:
        yield Work(db, request.get(USER), auth.client_address(request))
        await db.commit()
