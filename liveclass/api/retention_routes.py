"""Retention periods, the retention run and legal holds (admins only; every change audited).

The deletion itself: liveclass/archive/retention.py; the contract: docs/records-archive.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from liveclass.api.archive_schemas import LegalHold, RetentionReport, RetentionView
from liveclass.api.query import Flag, Query
from liveclass.api.routing import RouteTable, current_user, path_int
from liveclass.api.work import unit_of_work
from liveclass.appkeys import DB, SETTINGS
from liveclass.archive import retention
from liveclass.errors import ApiError, not_found
from liveclass.live import ROUTER
from liveclass.models import LiveSession, RecordKind, User, utcnow

routes = RouteTable("records")
ADMIN = {"admin"}

Days = Annotated[int | None, Field(ge=retention.MIN_DAYS, le=retention.MAX_DAYS, strict=True)]


class RetentionIn(BaseModel):
    """Days to keep each kind of record (1–36500); kinds left out keep their period."""

    model_config = ConfigDict(extra="forbid")
    recordings: Days = None
    chat: Days = None
    attendance: Days = None
    handouts: Days = None
    assessments: Days = None
    audit: Days = None


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hold: bool = Field(strict=True)
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _reason_to_hold(self) -> "LegalHoldIn":
        if self.reason is not None:
            self.reason = " ".join(self.reason.split()) or None
        if self.hold and (self.reason is None or len(self.reason) < 3):
            raise ValueError("a reason of 3 to 500 characters is required to place a legal hold")
        return self


async def _retention_view(db) -> dict:
    return {"policies": await retention.policies_view(db), "last_run": await retention.last_run(db)}


@routes.route(
    "GET",
    "/retention",
    summary="Retention periods per kind of record, and the last retention run",
    access=ADMIN,
    response=RetentionView,
)
async def get_retention(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        return web.json_response(await _retention_view(work.db))


@routes.route(
    "PUT",
    "/retention",
    summary="Set retention periods (days, 1–36500) per kind of record",
    access=ADMIN,
    body=RetentionIn,
    response=RetentionView,
)
async def put_retention(request: web.Request, body: RetentionIn) -> web.Response:
    user = current_user(request)
    changes = {RecordKind(k): v for k, v in body.model_dump(exclude_none=True).items()}
    async with unit_of_work(request) as work:
        changed = await retention.update_policies(work.db, user, changes)
        if changed["new"]:
            work.audit("retention_changed", **changed)
        await work.commit()
        return web.json_response(await _retention_view(work.db))


class RunQuery(Query):
    dry_run: Flag = Field(False, description="true: count what would be deleted, delete nothing")


@routes.route(
    "POST",
    "/retention/run",
    summary="Run the retention deletion now and answer its report",
    access=ADMIN,
    query=RunQuery,
    response=RetentionReport,
)
async def run_retention(request: web.Request, query: RunQuery) -> web.Response:
    dry_run = query.dry_run
    async with request.app[ROUTER].exclusive("retention", seconds=3600) as mine:
        if not mine:
            raise ApiError(
                409,
                "retention_running",
                "A retention run is already going on (on this or another server); try again when it has finished.",
            )
        report = await retention.purge_expired(
            request.app[DB],
            request.app[SETTINGS],
            dry_run=dry_run,
            live_sessions=await retention.live_session_ids(request.app),
            via="api",
            requested_by=current_user(request),
            before_recordings_deleted=retention.cancel_lesson_video(request.app),
        )
    return web.json_response(report.view())


def _hold_view(session: LiveSession, by: User | None) -> dict:
    return {
        "session_id": session.id,
        "legal_hold": session.legal_hold,
        "legal_hold_reason": session.legal_hold_reason,
        "legal_hold_at": retention.iso(session.legal_hold_at),
        "legal_hold_by": {"user_id": by.id, "name": by.full_name} if by else None,
        "purged": session.purged or {},
    }


@routes.route(
    "PUT",
    "/sessions/{session_id}/legal-hold",
    summary="Place or release a legal hold on a session (its records are then kept whatever the retention periods say)",
    access=ADMIN,
    body=LegalHoldIn,
    response=LegalHold,
)
async def put_legal_hold(request: web.Request, body: LegalHoldIn) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        session = await work.db.get(LiveSession, session_id)
        if session is None:
            raise not_found("Session")
        was = {"hold": session.legal_hold, "reason": session.legal_hold_reason}
        if body.hold:
            if not (session.legal_hold and session.legal_hold_reason == body.reason):
                now: datetime = utcnow()
                session.legal_hold, session.legal_hold_reason = True, body.reason
                session.legal_hold_by_id, session.legal_hold_at = user.id, now
                work.audit(
                    "legal_hold_set",
                    target=f"session:{session_id}",
                    reason=body.reason,
                    previous_reason=was["reason"] if was["hold"] else None,
                )
        elif session.legal_hold:
            session.legal_hold, session.legal_hold_reason = False, None
            session.legal_hold_by_id, session.legal_hold_at = None, None
            work.audit(
                "legal_hold_released", target=f"session:{session_id}", reason=body.reason, held_for=was["reason"]
            )
        await work.commit()
        by = await work.db.get(User, session.legal_hold_by_id) if session.legal_hold_by_id else None
        return web.json_response(_hold_view(session, by))
