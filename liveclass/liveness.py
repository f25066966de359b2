"""What the store knows of a node's life: its heartbeat, what a crash left open, and periods nobody ends.

- Every node writes its heartbeat into the store every few seconds.
- When a node starts, the sessions it ran before a crash (kill -9, power loss) still have attendance
  intervals open: they are closed at its last heartbeat with the reason `server_crashed`, so nobody gains
  minutes for the time the server was down; a period that was being recorded is recorded again.
  (Sessions another live node has taken over are that node's.)
- A running session past its period's end plus a grace, with nobody in it, ends by itself
  (`room_ended` with the reason `auto_ended`): one node at a time checks, through the router. The grace
  counts from the session's start too (a teacher who starts a period late has it to come in), and a seat
  kept for a dropped connection's resume counts as someone in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.config import Settings
from liveclass.models import AttendanceInterval, LiveSession, NodeHeartbeat, Period, SessionEvent, utcnow
from signaling import events as ev
from signaling.protocol import RoomError
from signaling.router import DEAD, Router

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0


async def last_heartbeat(db: async_sessionmaker[AsyncSession], node_id: str) -> datetime | None:
    async with db() as session:
        row = await session.get(NodeHeartbeat, node_id)
        return row.heartbeat_at if row else None


async def beat(db: async_sessionmaker[AsyncSession], node_id: str, started_at: datetime) -> None:
    async with db() as session:
        await session.merge(NodeHeartbeat(node_id=node_id, started_at=started_at, heartbeat_at=utcnow()))
        await session.commit()


RECORDING_EVENTS = (ev.REC_STARTED, ev.REC_STOPPED, ev.REC_PAUSED, ev.REC_RESUMED)


async def close_crashed(
    db: async_sessionmaker[AsyncSession], router: Router, previous_beat: datetime | None
) -> list[int]:
    """Close the attendance this node's sessions left open when it crashed. Returns the sessions that were
    being recorded then: their recording goes on, as a new one."""
    closed, recording = 0, []
    async with db() as session:
        running = (await session.execute(select(LiveSession).where(LiveSession.ended_at.is_(None)))).scalars().all()
        for live in running:
            if not (router.alone or live.node == router.node_id):
                continue
            owner = await router.owner(live.id)
            if owner is not None and owner.state != DEAD:
                continue  # hosted by a live node (taken over after the crash): its attendance is right
            last_recording_event = (
                await session.execute(
                    select(SessionEvent.type)
                    .where(SessionEvent.session_id == live.id, SessionEvent.type.in_(RECORDING_EVENTS))
                    .order_by(SessionEvent.id.desc())
                    .limit(1)
                )
            ).scalar()
            if last_recording_event not in (None, ev.REC_STOPPED):
                recording.append(live.id)
            open_intervals = (
                (
                    await session.execute(
                        select(AttendanceInterval).where(
                            AttendanceInterval.session_id == live.id, AttendanceInterval.left_at.is_(None)
                        )
                    )
                )
                .scalars()
                .all()
            )
            if not open_intervals:
                continue
            lost_at = previous_beat or await _last_event(session, live.id) or utcnow()
            for interval in open_intervals:
                interval.left_at, interval.end_reason = max(lost_at, interval.joined_at), "server_crashed"
                session.add(
                    SessionEvent(
                        session_id=live.id,
                        at=interval.left_at,
                        type=ev.PARTICIPANT_DROPPED,
                        actor_id=interval.user_id,
                        target_id=interval.user_id,
                        data={"reason": "server_crashed"},
                    )
                )
                closed += 1
        await session.commit()
    if closed:
        log.warning(
            "the server had stopped without closing %d attendance interval(s): closed at its last "
            "heartbeat (server_crashed)",
            closed,
        )
    return recording


async def resume_recordings(router: Router, sessions: list[int]) -> None:
    """A period that was being recorded when the server crashed is recorded again at once (a new recording
    of the same session, which takes the tracks as people come back); the teacher is told on return."""
    for session_id in sessions:
        try:
            await router.command(session_id, "resume_recording", reason="server_restarted")
        except RoomError as exc:
            log.warning("recording of session %s not resumed: %s", session_id, exc.message)


async def _last_event(session: AsyncSession, session_id: int) -> datetime | None:
    return (
        await session.execute(
            select(SessionEvent.at)
            .where(SessionEvent.session_id == session_id)
            .order_by(SessionEvent.at.desc())
            .limit(1)
        )
    ).scalar()


async def end_forgotten(db: async_sessionmaker[AsyncSession], router: Router, grace: timedelta) -> list[int]:
    """Ask the rooms of running sessions past their period's end plus `grace`, and started over `grace` ago,
    to end if nobody is in them."""
    async with db() as session:
        overdue = (
            (
                await session.execute(
                    select(LiveSession.id)
                    .join(Period, Period.id == LiveSession.period_id)
                    .where(
                        LiveSession.ended_at.is_(None),
                        Period.ends_at < utcnow() - grace,
                        LiveSession.started_at < utcnow() - grace,
                    )
                )
            )
            .scalars()
            .all()
        )
    ended = []
    for session_id in overdue:
        try:
            if await router.command(session_id, "auto_end"):
                ended.append(session_id)
        except RoomError as exc:
            log.warning("session %s not checked for auto-end: %s", session_id, exc.message)
    return ended


async def liveness_ctx(app):
    """aiohttp cleanup context (after the live rooms started): close what a crash left open, then write the
    heartbeat and check for forgotten periods until shutdown."""
    from liveclass.appkeys import DB, SETTINGS
    from liveclass.live import ROUTER

    db, settings, router = app[DB], app[SETTINGS], app[ROUTER]
    node_id, started_at = router.node_id, utcnow()
    await resume_recordings(router, await close_crashed(db, router, await last_heartbeat(db, node_id)))
    task = asyncio.get_running_loop().create_task(_run(db, settings, router, node_id, started_at), name="liveness")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _run(db, settings: Settings, router: Router, node_id: str, started_at: datetime) -> None:
    grace = timedelta(minutes=settings.auto_end_grace_minutes)
    next_check = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            await beat(db, node_id, started_at)
            if loop.time() >= next_check:
                next_check = loop.time() + settings.auto_end_check_seconds
                async with router.exclusive("auto_end", seconds=settings.auto_end_check_seconds) as mine:
                    if mine:
                        for session_id in await end_forgotten(db, router, grace):
                            log.info("session %s ended by itself: nobody in it, its period over", session_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store may be away for a while: try again
            log.warning("node heartbeat in the store failed (%s); retrying", type(exc).__name__)
        await asyncio.sleep(HEARTBEAT_SECONDS)
