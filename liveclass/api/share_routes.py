"""Sharing a session's recordings with its class through an expiring link (liveclass/archive/shares.py)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from liveclass.api.archive_schemas import ShareCreated, ShareOut, SharedPage
from liveclass.api.records_routes import recording_out, serve_recording
from liveclass.api.routing import ANY_USER, RouteTable, current_user, path_int
from liveclass.api.schemas import Strict
from liveclass.api.work import Work, unit_of_work
from liveclass.archive import shares
from liveclass.archive.access import readable_session
from liveclass.archive.attendance import iso
from liveclass.archive.search import session_summary
from liveclass.errors import ApiError, not_found
from liveclass.models import LiveSession, Period, Recording, RecordingShare, User, utcnow

routes = RouteTable("records")
MAX_SHARE_DAYS = 90


class ShareCreate(Strict):
    days: int = Field(7, ge=1, le=MAX_SHARE_DAYS, description="how long the link works")
    include_parents: bool = Field(False, description="parents of the class's students may open it too")


def share_out(share: RecordingShare, people: dict[int, User], now) -> dict:
    creator = people.get(share.created_by_id) if share.created_by_id is not None else None
    return {
        "share_id": share.id,
        "created_at": iso(share.created_at),
        "expires_at": iso(share.expires_at),
        "revoked_at": iso(share.revoked_at),
        "include_parents": share.include_parents,
        "active": share.active(now),
        "created_by": {"user_id": creator.id, "name": creator.full_name} if creator else None,
    }


async def _recordings(db, session_id: int) -> list[Recording]:
    return (
        (
            await db.execute(
                select(Recording).where(Recording.session_id == session_id).order_by(Recording.start_ms, Recording.id)
            )
        )
        .scalars()
        .all()
    )


@routes.route(
    "POST",
    "/sessions/{session_id}/shares",
    status=201,
    body=ShareCreate,
    access={"admin", "teacher"},
    summary="Share the session's recordings with its class through an expiring link (shown once)",
    response=ShareCreated,
)
async def create_share(request: web.Request, body: ShareCreate) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await readable_session(work.db, user, session_id)
        if not await _recordings(work.db, session_id):
            raise ApiError(409, "nothing_recorded", "This session has no recording to share.")
        token, digest = shares.new_token()
        share = RecordingShare(
            session_id=session_id,
            token_hash=digest,
            created_by_id=user.id,
            expires_at=utcnow() + timedelta(days=body.days),
            include_parents=body.include_parents,
        )
        work.db.add(share)
        await work.db.flush()
        work.audit(
            "share_created",
            target=f"session:{session_id}",
            share_id=share.id,
            days=body.days,
            include_parents=body.include_parents,
        )
    return web.json_response(
        {
            "share_id": share.id,
            "token": token,
            "url": shares.link_for(token),
            "expires_at": iso(share.expires_at),
            "include_parents": share.include_parents,
        },
        status=201,
    )


@routes.route(
    "GET",
    "/sessions/{session_id}/shares",
    summary="The session's share links (not the links themselves)",
    access={"admin", "teacher"},
    response=ShareOut,
    many=True,
)
async def list_shares(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await readable_session(work.db, user, session_id)
        found = (
            (
                await work.db.execute(
                    select(RecordingShare)
                    .where(RecordingShare.session_id == session_id)
                    .order_by(RecordingShare.id.desc())
                )
            )
            .scalars()
            .all()
        )
        people = {
            u.id: u
            for u in (
                await work.db.execute(select(User).where(User.id.in_({s.created_by_id for s in found} - {None})))
            ).scalars()
        }
    now = utcnow()
    return web.json_response({"items": [share_out(s, people, now) for s in found]})


@routes.route(
    "DELETE",
    "/sessions/{session_id}/shares/{share_id}",
    summary="Revoke a share link at once",
    access={"admin", "teacher"},
    response=ShareOut,
)
async def revoke_share(request: web.Request) -> web.Response:
    user = current_user(request)
    session_id, share_id = path_int(request, "session_id"), path_int(request, "share_id")
    async with unit_of_work(request) as work:
        await readable_session(work.db, user, session_id)
        share = await work.db.get(RecordingShare, share_id)
        if share is None or share.session_id != session_id:
            raise not_found("Share")
        if share.revoked_at is None:
            share.revoked_at = utcnow()
            work.audit("share_revoked", target=f"session:{session_id}", share_id=share.id)
        return web.json_response(share_out(share, {user.id: user}, utcnow()))


async def _open_share(request: web.Request, work: Work) -> tuple[RecordingShare, LiveSession, Period]:
    """The share behind the link, if the caller may open it: 404 when unknown or not theirs, 410 when it
    expired or was revoked (told only to those it was meant for; the refusal is audited, so it is kept)."""
    share = await shares.find_share(work.db, request.match_info["token"])
    session = await work.db.get(LiveSession, share.session_id) if share else None
    period = await work.db.get(Period, session.period_id) if session else None
    if share is None or session is None or period is None:
        raise not_found("Shared recording")
    if not await shares.may_open(work.db, current_user(request), share, period):
        raise not_found("Shared recording")
    if not share.active(utcnow()):
        work.audit(
            "share_refused",
            target=f"session:{session.id}",
            share_id=share.id,
            reason="revoked" if share.revoked_at else "expired",
        )
        await work.commit()
        raise ApiError(
            410,
            "share_expired",
            "This link has expired or was withdrawn by the teacher. "
            "/ Liên kết đã hết hạn hoặc đã bị giáo viên thu hồi.",
        )
    return share, session, period


@routes.route(
    "GET",
    "/shared/{token}",
    summary="A shared recording's page: the session and its files",
    access=ANY_USER,
    response=SharedPage,
)
async def open_share(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    async with unit_of_work(request) as work:
        share, session, period = await _open_share(request, work)
        recordings = await _recordings(work.db, session.id)
        work.audit("share_opened", target=f"session:{session.id}", share_id=share.id)
    files = [dict(recording_out(r), url=f"/api/v1/shared/{token}/recordings/{r.id}/file") for r in recordings]
    return web.json_response(
        {
            "share_id": share.id,
            "expires_at": iso(share.expires_at),
            "session": session_summary(session, period),
            "recordings": files,
        }
    )


@routes.route(
    "GET",
    "/shared/{token}/recordings/{recording_id}/file",
    summary="Play a shared recording (HTTP Range for seeking)",
    access=ANY_USER,
    produces="video/webm",
)
async def shared_recording_file(request: web.Request) -> web.StreamResponse:
    recording_id = path_int(request, "recording_id")
    async with unit_of_work(request) as work:
        share, session, _ = await _open_share(request, work)
        recording = await work.db.get(Recording, recording_id)
        if recording is None or recording.session_id != session.id:
            raise not_found("Recording")
        work.audit(
            "shared_recording_viewed",
            target=f"recording:{recording.id}",
            share_id=share.id,
            range=request.headers.get("Range"),
        )
    return serve_recording(request, recording)
