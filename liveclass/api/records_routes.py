"""A session's records read back: attendance, lobby decisions, chat, events, handouts.

Its teacher and admins may read them; every reading is written to the audit log (personal data).
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from liveclass.api.archive_schemas import LessonVideoJob, RecordingOut, SessionRecords
from liveclass.api.handouts_routes import handout_out
from liveclass.api.query import Flag, Query
from liveclass.api.routing import RouteTable, current_user, path_int
from liveclass.api.schemas import SessionOut
from liveclass.api.work import unit_of_work
from liveclass.appkeys import SETTINGS
from liveclass.archive.access import readable_session
from liveclass.archive.attendance import iso, session_attendance
from liveclass.archive.filenames import content_disposition, download_names
from liveclass.errors import ApiError, not_found
from liveclass.live import LESSON_VIDEOS
from liveclass.models import (
    AttendanceInterval,
    ChatMessage,
    Handout,
    LiveSession,
    Period,
    Recording,
    SessionEvent,
    User,
)
from signaling import events as ev

routes = RouteTable("records")
# What the teacher did to others or to the room: the moderation record of a session.
MODERATION_EVENTS = {
    ev.MEDIA_MUTED,
    ev.PERMISSIONS_CHANGED,
    ev.PARTICIPANT_KICKED,
    ev.LOCK_CHANGED,
    ev.STAGE_CHANGED,
    ev.CHAT_DELETED,
    ev.LOBBY_DENIED,
}


_iso = iso


async def _readable_session(request: web.Request, db, session_id: int) -> tuple[LiveSession, Period]:
    """A session whose records the caller may read: admins, and the period's own teacher."""
    return await readable_session(db, current_user(request), session_id)


def recording_out(r: Recording) -> dict:
    return {
        "recording_id": r.id,
        "kind": r.kind,
        "source": r.source,
        "label": r.label,
        "codec": r.codec,
        "start_ms": r.start_ms,
        "duration_ms": r.duration_ms,
        "size": r.size,
        "sha256": r.sha256,
        "recovered": r.recovered,
        "url": f"/api/v1/sessions/{r.session_id}/recordings/{r.id}/file",
    }


@routes.route(
    "GET",
    "/sessions/{session_id}/recordings",
    summary="The recorded files of a session, on the session clock (its teacher and admins)",
    access={"admin", "teacher"},
    response=RecordingOut,
    many=True,
)
async def list_recordings(request: web.Request) -> web.Response:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await _readable_session(request, work.db, session_id)
        found = (
            (
                await work.db.execute(
                    select(Recording)
                    .where(Recording.session_id == session_id)
                    .order_by(Recording.start_ms, Recording.id)
                )
            )
            .scalars()
            .all()
        )
        work.audit("recordings_listed", target=f"session:{session_id}")
    return web.json_response({"items": [recording_out(r) for r in found]})


class RecordingFileQuery(Query):
    download: Flag = Field(False, description="true (or 1): answer as an attachment (a download)")


@routes.route(
    "GET",
    "/sessions/{session_id}/recordings/{recording_id}/file",
    summary="Play or download (?download=1) a recorded file (HTTP Range for seeking)",
    access={"admin", "teacher"},
    query=RecordingFileQuery,
    produces="video/webm",
)
async def recording_file(request: web.Request, query: RecordingFileQuery) -> web.StreamResponse:
    session_id, recording_id = path_int(request, "session_id"), path_int(request, "recording_id")
    download = query.download
    async with unit_of_work(request) as work:
        await _readable_session(request, work.db, session_id)
        recording = await work.db.get(Recording, recording_id)
        if recording is None or recording.session_id != session_id:
            raise not_found("Recording")
        work.audit(
            "recording_downloaded" if download else "recording_viewed",
            target=f"recording:{recording.id}",
            range=request.headers.get("Range"),
        )
    return serve_recording(request, recording, download)


def serve_recording(request: web.Request, recording: Recording, download: bool = False) -> web.FileResponse:
    """A recorded file, played (HTTP Range: aiohttp's FileResponse answers 206/416, so the browser's
    <video> can seek) or downloaded as an attachment."""
    path = request.app[SETTINGS].recordings_dir / recording.path
    if not path.is_file():
        raise not_found("Recording file")
    headers = {"Content-Type": f"{recording.kind}/webm"}
    if download:
        # The recorder's file names are ASCII (01-teacher-camera.webm); the session makes them unique.
        names = download_names(["liveclass-session", str(recording.session_id), path.stem], path.suffix[1:])
        headers["Content-Disposition"] = content_disposition(*names)
    return web.FileResponse(path, headers=headers)


@routes.route(
    "POST",
    "/sessions/{session_id}/lesson-video",
    summary="Make one shareable lesson video from the session's recording (offline, low priority)",
    access={"admin", "teacher"},
    status=202,
    response=LessonVideoJob,
)
async def start_lesson_video(request: web.Request) -> web.Response:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await _readable_session(request, work.db, session_id)
        job = request.app[LESSON_VIDEOS].start(session_id)
        if job is None:
            raise ApiError(409, "nothing_recorded", "This session has no finished recording yet.")
        work.audit("lesson_video_started", target=f"session:{session_id}")
    return web.json_response(job.view(), status=202)


@routes.route(
    "GET",
    "/sessions/{session_id}/lesson-video",
    summary="The lesson video's progress",
    access={"admin", "teacher"},
    response=LessonVideoJob,
)
async def lesson_video_status(request: web.Request) -> web.Response:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await _readable_session(request, work.db, session_id)
    job = request.app[LESSON_VIDEOS].job(session_id)
    if job is None:
        raise not_found("Lesson video")
    return web.json_response(job.view())


@routes.route(
    "GET",
    "/sessions/{session_id}/lesson-video/file",
    summary="Download or play the lesson video",
    access={"admin", "teacher"},
    produces="video/mp4",
)
async def lesson_video_file(request: web.Request) -> web.StreamResponse:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        await _readable_session(request, work.db, session_id)
        job = request.app[LESSON_VIDEOS].job(session_id)
        if job is None or job.state != "done":
            raise not_found("Lesson video")
        work.audit("lesson_video_viewed", target=f"session:{session_id}")
    return web.FileResponse(job.output, headers={"Content-Type": "video/mp4"})


@routes.route(
    "GET",
    "/sessions/{session_id}/records",
    summary="Everything recorded about a session (its teacher and admins)",
    access={"admin", "teacher"},
    response=SessionRecords,
)
async def session_records(request: web.Request) -> web.Response:
    session_id = path_int(request, "session_id")
    async with unit_of_work(request) as work:
        session, period = await _readable_session(request, work.db, session_id)
        intervals = (
            (
                await work.db.execute(
                    select(AttendanceInterval)
                    .where(AttendanceInterval.session_id == session_id)
                    .order_by(AttendanceInterval.joined_at)
                )
            )
            .scalars()
            .all()
        )
        events = (
            (
                await work.db.execute(
                    select(SessionEvent)
                    .where(SessionEvent.session_id == session_id)
                    .order_by(SessionEvent.at, SessionEvent.id)
                )
            )
            .scalars()
            .all()
        )
        chat = (
            (
                await work.db.execute(
                    select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.at)
                )
            )
            .scalars()
            .all()
        )
        handouts = (await work.db.execute(select(Handout).where(Handout.session_id == session_id))).scalars().all()
        recordings = (
            (
                await work.db.execute(
                    select(Recording).where(Recording.session_id == session_id).order_by(Recording.start_ms)
                )
            )
            .scalars()
            .all()
        )
        people_ids = (
            {i.user_id for i in intervals}
            | {e.actor_id for e in events}
            | {e.target_id for e in events}
            | {m.sender_id for m in chat}
            | {m.recipient_id for m in chat}
        ) - {None}
        people = {u.id: u for u in (await work.db.execute(select(User).where(User.id.in_(people_ids)))).scalars()}
        attendance = await session_attendance(work.db, session, period)
        work.audit("records_viewed", target=f"session:{session_id}")

    def person(user_id: int | None) -> dict | None:
        if user_id is None or user_id not in people:
            return None
        who = people[user_id]
        return {"user_id": who.id, "name": who.full_name, "personal_id": who.personal_id}

    return web.json_response(
        {
            "session": {
                **SessionOut.model_validate(session).model_dump(mode="json"),
                "legal_hold": session.legal_hold,
                "legal_hold_reason": session.legal_hold_reason,
                "legal_hold_at": _iso(session.legal_hold_at),
                "purged": session.purged or {},
            },
            "period": {
                "period_id": period.id,
                "class_name": period.school_class.name,
                "subject": period.subject,
                "teacher": person(period.teacher_id)
                or {"user_id": period.teacher_id, "name": period.teacher.full_name},
                "starts_at": _iso(period.starts_at),
                "ends_at": _iso(period.ends_at),
            },
            "attendance": [line.view() for line in attendance],
            "lobby": [
                {
                    "at": _iso(e.at),
                    "type": e.type,
                    "by": person(e.actor_id),
                    "person": person(e.target_id),
                    "data": e.data,
                }
                for e in events
                if e.type.startswith("lobby_")
            ],
            "chat": [
                {
                    "message_id": m.id,
                    "at": _iso(m.at),
                    "kind": m.kind,
                    "from": person(m.sender_id),
                    "to": person(m.recipient_id),
                    "text": m.text,
                    "deleted_at": _iso(m.deleted_at),
                    "deleted_by": person(m.deleted_by_id),
                }
                for m in chat
            ],
            "moderation": [
                {
                    "at": _iso(e.at),
                    "type": e.type,
                    "by": person(e.actor_id),
                    "person": person(e.target_id),
                    "data": e.data,
                }
                for e in events
                if e.type in MODERATION_EVENTS
            ],
            "events": [
                {
                    "at": _iso(e.at),
                    "type": e.type,
                    "actor": person(e.actor_id),
                    "target": person(e.target_id),
                    "data": e.data,
                }
                for e in events
            ],
            "handouts": [handout_out(h) for h in handouts],
            "recordings": [recording_out(r) for r in recordings],
        }
    )
