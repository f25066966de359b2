"""Wires the live room (signaling/) into the application: the secret, the spent-token store, the end hook."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.config import Settings
from liveclass.lesson_videos import LessonVideos
from liveclass import periods
from liveclass.errors import ApiError
from liveclass.models import MAX_ID, LiveSession, Period, UsedJoinToken, User, utcnow
from liveclass.records import RecordsWriter
from media.engine import MediaEngine
from recordings import Recorder, recover
from signaling.events import RECORDING_SAVED, RoomEvent
from signaling.join_token import JoinClaims, JoinTokenError
from signaling.redis_router import RedisRouter
from signaling.router import LocalRouter, Router
from signaling.server import NAMESPACE, LiveServer

SOCKETIO_PATH = "/socket.io/"
SOCKETIO_NAMESPACE = NAMESPACE
LIVE_ROOMS = web.AppKey("live_rooms", LiveServer)
ROUTER = web.AppKey("router", Router)  # the only way the HTTP API reaches a live room
LESSON_VIDEOS = web.AppKey("lesson_videos", LessonVideos)
log = logging.getLogger(__name__)


class DatabaseSpentTokens:
    """Spent join-token ids in the store: a token cannot be replayed on this node or any other."""

    def __init__(self, db: async_sessionmaker[AsyncSession]):
        self._db = db

    async def spend(self, token_id: str, expires_at: float) -> bool:
        async with self._db() as db:
            # Forget ids whose tokens have expired anyway: the table stays small.
            await db.execute(delete(UsedJoinToken).where(UsedJoinToken.expires_at < utcnow() - timedelta(minutes=5)))
            db.add(UsedJoinToken(jti=token_id, expires_at=datetime.fromtimestamp(expires_at, timezone.utc)))
            try:
                await db.commit()
            except IntegrityError:
                return False
        return True


class CurrentAccounts:
    """A join token is checked against the store when it is used: the account is still active and still
    entitled to the token's room role, and the session still runs. A token issued before a deactivation,
    a removal from the class or the end of the period is refused."""

    def __init__(self, db: async_sessionmaker[AsyncSession]):
        self._db = db

    async def __call__(self, claims: JoinClaims) -> None:
        async with self._db() as db:
            user = await db.get(User, claims.user_id)
            if user is None or not user.active:
                raise JoinTokenError("account_inactive", "This account has been deactivated; ask the school's admin.")
            session = await db.get(LiveSession, claims.session_id)
            if session is None or not session.running:
                raise JoinTokenError("session_ended", "The period has ended.")
            try:
                role, _ = await periods.room_role_for(db, user, await db.get_one(Period, session.period_id))
            except ApiError:
                role = None
            if role != claims.room_role:
                raise JoinTokenError("token_outdated", "Your place in this period has changed; join again.")


def create_router(settings: Settings) -> Router:
    """Chosen once at start: Redis when it is configured (several nodes), this process alone otherwise."""
    if settings.redis_url:
        return RedisRouter(
            settings.effective_node_id,
            settings.effective_node_url,
            settings.redis_url,
            prefix=settings.redis_prefix,
            ttl_seconds=settings.node_ttl_seconds,
        )
    return LocalRouter(settings.effective_node_id, settings.effective_node_url)


def _drain_this_process() -> None:
    """An admin drained this node over the API: the same as SIGTERM (rooms move, then the process exits)."""
    os.kill(os.getpid(), signal.SIGTERM)


def setup_live(app: web.Application, settings: Settings, db: async_sessionmaker[AsyncSession]) -> LiveServer:
    """The live room, its router and records writer, and their orderly shutdown (rooms first, then the
    last records)."""
    writer = RecordsWriter(db)
    # The server's own peer connections use no STUN/TURN (no lookups on the join path); the ICE
    # servers in the settings are for the clients.
    engine = MediaEngine(
        host_addresses=settings.media_host_addresses or None, announced_address=settings.media_announced_address or None
    )

    def recorder_for(session_id: int, on_stopped) -> Recorder:
        return Recorder(
            engine, settings.recordings_dir, session_id, settings.recording_min_free_bytes, on_stopped=on_stopped
        )

    router = create_router(settings)
    live = LiveServer(
        secret=settings.secret_key,
        spent_tokens=DatabaseSpentTokens(db),
        sink=writer,
        grace_seconds=settings.reconnect_grace_seconds,
        allowed_origins=settings.socket_origins,
        media_engine=engine,
        sees_classmates=settings.students_see_classmates,
        quality_interval=settings.quality_report_seconds,
        # signaling.recording.Recorder declares start() and add_track() as returning None; ours return the
        # recording's folder and whether a file began (the protocol's to widen, in signaling/).
        recorder_factory=recorder_for,
        record_students=settings.record_students,
        router=router,
        recover_recordings=lambda session_id: _recover_session(settings, session_id),
        on_drain_requested=_drain_this_process,
        drain_timeout=settings.drain_timeout_seconds,
        admission=CurrentAccounts(db),
    )
    live.attach(app, socketio_path=SOCKETIO_PATH.strip("/"))
    app[LIVE_ROOMS] = live
    app[ROUTER] = router
    app[LESSON_VIDEOS] = lesson_videos = LessonVideos(settings.recordings_dir, exclusive=router.exclusive)

    async def live_ctx(app: web.Application):
        writer.start()  # first: a take-over at start writes records and waits for them
        await router.start()
        # Recordings a crash left unfinished are repaired (seekable, with a duration) and listed; with
        # several nodes, only those of sessions no live node hosts (the others are being written).
        for manifest in await _recover_unhosted(settings, router):
            writer.emit(RoomEvent(manifest["session_id"], RECORDING_SAVED, None, None, {"manifest": manifest}))
        live.start_quality_reports()
        yield
        await lesson_videos.close()
        await engine.close()
        await router.close()
        await writer.close()  # after the rooms closed (on_shutdown, below): their last events are in

    async def close_rooms(app: web.Application) -> None:
        # on_shutdown runs while connections are still open: everyone is told; alone, attendance closes
        # now; in a cluster, the rooms move to other nodes.
        await live.close()

    app.cleanup_ctx.append(live_ctx)
    app.on_shutdown.append(close_rooms)
    return live


def _recover_session(settings: Settings, session_id: int) -> list[dict]:
    """Finish the recordings a dead node left unfinished in one session's folder. One whose files changed
    within half the node TTL is still being written (by a node only cut off from the others, which
    finishes it itself): it is left alone."""
    folder = settings.recordings_dir / str(session_id)
    quiet_since = time.time() - settings.node_ttl_seconds / 2
    manifests = []
    for recording in sorted(folder.iterdir()) if folder.is_dir() else []:
        if recording.is_dir() and _last_write(recording) < quiet_since:
            manifests += recover(recording)
    return [m for m in manifests if m.get("session_id") == session_id]


def _last_write(folder: Path) -> float:
    return max([folder.stat().st_mtime, *(f.stat().st_mtime for f in folder.iterdir())])


async def _recover_unhosted(settings: Settings, router: Router) -> list[dict]:
    folders = []
    for folder in sorted(settings.recordings_dir.iterdir()) if settings.recordings_dir.is_dir() else []:
        session_id = int(folder.name) if folder.name.isascii() and folder.name.isdigit() else None
        if session_id is not None and 1 <= session_id <= MAX_ID:
            owner = await router.owner(session_id)
            if owner is not None and owner.state != "dead" and owner.node_id != router.node_id:
                continue  # another live node is recording it
        folders.append(folder)
    manifests = []
    for folder in folders:
        for manifest in await asyncio.to_thread(recover, folder):
            session_id = manifest.get("session_id")
            if not isinstance(session_id, int) or not 1 <= session_id <= MAX_ID:  # not recordings/<session>/
                log.warning("recovered %s, which is not a session's recording folder: not listed", manifest.get("path"))
                continue
            manifests.append(manifest)
    return manifests
