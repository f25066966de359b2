"""Handouts of a live session: upload (its teacher), list and download (its participants)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage
from sqlalchemy import exists, select

from liveclass import periods
from liveclass.api.archive_schemas import HandoutOut
from liveclass.api.routing import ANY_USER, RouteTable, current_user, path_int
from liveclass.api.work import unit_of_work
from liveclass.appkeys import SETTINGS
from liveclass.archive.filenames import content_disposition, download_names
from liveclass.errors import ApiError, forbidden, not_found
from liveclass.handouts import store_upload
from liveclass.live import ROUTER
from liveclass.models import AttendanceInterval, Handout, LiveSession, Period, User
from signaling.protocol import RoomError

routes = RouteTable("handouts")


def handout_out(h: Handout) -> dict:
    return {
        "handout_id": h.id,
        "session_id": h.session_id,
        "filename": h.filename,
        "content_type": h.content_type,
        "size": h.size,
        "sha256": h.sha256,
        "uploaded_at": h.uploaded_at.isoformat().replace("+00:00", "Z"),
        "url": f"/api/v1/sessions/{h.session_id}/handouts/{h.id}",
    }


async def _session_and_role(db, user: User, session_id: int) -> tuple[LiveSession, str]:
    session = await db.get(LiveSession, session_id)
    if session is None:
        raise not_found("Session")
    period = await db.get(Period, session.period_id)
    try:
        role, _ = await periods.room_role_for(db, user, period)
    except ApiError:
        raise not_found("Session") from None
    return session, role


async def _ensure_participant(request: web.Request, db, user: User, session_id: int) -> None:
    """Teachers and observers of the session, and learners the teacher let in, may read its handouts."""
    session, role = await _session_and_role(db, user, session_id)
    if role in ("teacher", "observer"):
        return
    # In the room now: the attendance record of a learner admitted moments ago may not be written yet
    # (records are written in batches), but the handout's announcement has already reached them.
    try:
        if session.running and await request.app[ROUTER].command(session.id, "user_present", user_id=user.id):
            return
    except RoomError:
        pass  # the room cannot be asked right now: the records decide
    was_admitted = (
        await db.execute(
            select(exists().where(AttendanceInterval.session_id == session.id, AttendanceInterval.user_id == user.id))
        )
    ).scalar()
    if not was_admitted:
        raise forbidden("Only the participants of this period can open its handouts.")


@routes.route(
    "POST",
    "/sessions/{session_id}/handouts",
    summary="Hand out a file (multipart field `file`); it is announced in the room's chat",
    access={"teacher"},
    status=201,
    response=HandoutOut,
)
async def upload_handout(request: web.Request) -> web.Response:
    user = current_user(request)
    settings = request.app[SETTINGS]
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        session, role = await _session_and_role(work.db, user, session_id)
        if role != "teacher":
            raise forbidden("Only the period's teacher hands out material.")
        if not session.running:
            raise ApiError(409, "session_not_running", "This session has ended.")
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415, "unsupported_media_type", "Upload the file as multipart/form-data, field `file`.")
    try:
        reader = await request.multipart()
        field = await reader.next()
        # A part of its own (not a nested multipart), named `file`, with a file name.
        if not isinstance(field, BodyPartReader) or field.name != "file" or not field.filename:
            raise ApiError(400, "invalid_request", "Send one file in the multipart field `file`.")
        stored, filename = await store_upload(
            field, settings.handouts_dir / str(session_id), settings.handout_max_bytes, settings.handout_allowed_types
        )
    except (ValueError, BadHttpMessage):  # aiohttp's parser: no boundary, not multipart, a bad part header
        raise ApiError(
            400,
            "invalid_request",
            "The upload is not a valid multipart/form-data body; send one file in the field `file`.",
        ) from None
    async with unit_of_work(request) as work:
        handout = Handout(
            session_id=session_id,
            uploaded_by_id=user.id,
            filename=filename,
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
            stored_name=stored.stored_name,
        )
        work.db.add(handout)
        await work.db.flush()
        work.audit("handout_uploaded", target=f"session:{session_id}", handout=handout.id, filename=filename)
    answer = handout_out(handout)
    try:
        await request.app[ROUTER].command(session_id, "share_handout", uploader_user_id=user.id, handout=answer)
    except RoomError:
        answer["announced"] = False  # the teacher is not in the room: stored, listed, not announced
    else:
        answer["announced"] = True
    return web.json_response(answer, status=201)


@routes.route(
    "GET",
    "/sessions/{session_id}/handouts",
    summary="The handouts of a session",
    access=ANY_USER,
    response=HandoutOut,
    many=True,
)
async def list_handouts(request: web.Request) -> web.Response:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await _ensure_participant(request, work.db, current_user(request), session_id)
        found = (
            await work.db.execute(select(Handout).where(Handout.session_id == session_id).order_by(Handout.uploaded_at))
        ).scalars()
        return web.json_response({"items": [handout_out(h) for h in found]})


@routes.route(
    "GET",
    "/sessions/{session_id}/handouts/{handout_id}",
    summary="Download a handout",
    access=ANY_USER,
    produces="application/octet-stream",
)
async def download_handout(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    session_id, handout_id = path_int(request, "session_id"), path_int(request, "handout_id")
    async with unit_of_work(request) as work:
        await _ensure_participant(request, work.db, user, session_id)
        handout = await work.db.get(Handout, handout_id)
        if handout is None or handout.session_id != session_id:
            raise not_found("Handout")
        work.audit("handout_downloaded", target=f"session:{session_id}", handout=handout.id)
    path = request.app[SETTINGS].handouts_dir / str(session_id) / handout.stored_name
    if not path.exists():
        raise not_found("Handout file")
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": handout.content_type + ("; charset=utf-8" if handout.content_type == "text/plain" else ""),
            "Content-Disposition": content_disposition(
                download_names([Path(handout.filename).stem], Path(handout.filename).suffix[1:])[0], handout.filename
            ),
        },
    )
    return response
