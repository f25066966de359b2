"""Session records: the live room's domain events written to the store, in batches.

The room hands events over without waiting (`emit`); a background task writes whatever has gathered
in one transaction, so a class of 45 never waits on the database one event at a time. A request's
acknowledgement waits (`written`) until the batch holding its events is committed — group commit: the
writer starts a batch at once when someone waits, and every event gathered meanwhile shares its commit —
so an `ok` means the records hold it even if the process is killed the next moment. Without waiters, a
batch is written every `interval` seconds. `close()` writes the rest, and runs on a clean shutdown.

An event the store refuses (e.g. a duplicate chat message id) is never stored: it is logged and skipped, and
`written` raises RecordsRefused to the task that emitted it (the request that did it), so that request is
never answered `ok` for a record the school does not have.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.models import AttendanceInterval, ChatMessage, LiveSession, Recording, SessionEvent
from signaling import events as ev
from signaling.events import RecordsRefused, RoomEvent

log = logging.getLogger(__name__)

_OPENS_ATTENDANCE = {ev.PARTICIPANT_JOINED, ev.LOBBY_ADMITTED, ev.PARTICIPANT_RECONNECTED}
_CLOSES_ATTENDANCE = {ev.PARTICIPANT_DROPPED, ev.PARTICIPANT_LEFT}


def _is_data_error(exc: Exception) -> bool:
    """The store refused this data (not: the store is unreachable). asyncpg's own refusal of a value
    (e.g. an id past 32 bits) reaches us as a plain DBAPIError whose cause is asyncpg's DataError."""
    if isinstance(exc, (IntegrityError, DataError, KeyError, ValueError, TypeError, OverflowError)):
        return True
    cause = getattr(exc, "orig", None)
    return cause is not None and any(
        kind.__name__ in ("DataError", "IntegrityError") or str(getattr(cause, "sqlstate", "")).startswith(("22", "23"))
        for kind in type(cause).__mro__
    )


def _caller() -> asyncio.Task | None:
    """The task emitting an event or waiting for it: one request (python-socketio runs each in its own task)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class RecordsWriter:
    def __init__(self, db: async_sessionmaker[AsyncSession], interval: float = 0.25, max_batch: int = 500):
        self._db = db
        self._interval = interval
        self._max_batch = max_batch
        self._buffer: list[tuple[RoomEvent, asyncio.Task | None]] = []  # each event with the task that emitted it
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._write_lock = asyncio.Lock()
        # Events are written in the order emitted: a count of emitted and of done (stored, or skipped as
        # data the store refuses) tells whether a waiter's events are in.
        self._emitted = 0
        self._done = 0
        self._waiters: list[tuple[int, asyncio.Future]] = []
        # Tasks that emitted an event the store refused, and how many: their next `written` raises.
        self._refused: weakref.WeakKeyDictionary[asyncio.Task, int] = weakref.WeakKeyDictionary()

    def emit(self, event: RoomEvent) -> None:
        self._buffer.append((event, _caller()))
        self._emitted += 1
        if len(self._buffer) >= self._max_batch:
            self._wakeup.set()

    async def written(self, timeout: float) -> bool:
        """True once every event emitted so far is done; False if not within `timeout` (kept, written
        later). Raises RecordsRefused if the store refused an event this task emitted: it is not stored."""
        target = self._emitted
        in_time = True
        if self._done < target:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((target, future))
            self._wakeup.set()  # a batch now, not at the next interval
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                in_time = False
            finally:
                self._waiters = [(t, f) for t, f in self._waiters if f is not future]
        caller = _caller()
        refused = self._refused.pop(caller, 0) if caller is not None else 0
        if refused:
            raise RecordsRefused(f"{refused} record(s) could not be stored")
        return in_time

    def _handled(self, count: int) -> None:
        self._done += count
        for target, future in self._waiters:
            if target <= self._done and not future.done():
                future.set_result(None)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - keep the events and try again on the next round
                # The error's text may quote chat messages (personal data): log its kind only.
                log.error("writing session records failed (%s); will retry", type(exc).__name__)
                await asyncio.sleep(1)

    async def flush(self) -> None:
        async with self._write_lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                async with self._db() as db:
                    for event, _ in batch:
                        await self._write(db, event)
                    await db.commit()
            except Exception as exc:
                if not _is_data_error(exc):
                    self._buffer[:0] = batch  # the store is away: nothing is lost, the next round retries
                    raise
                await self._write_one_by_one(batch)
                return
            self._handled(len(batch))

    async def _write_one_by_one(self, batch: list[tuple[RoomEvent, asyncio.Task | None]]) -> None:
        """One bad event (e.g. for a session the store does not know, or a duplicate chat message id) must
        not hold back the others; it is refused to the request that emitted it, never acknowledged."""
        for i, (event, emitter) in enumerate(batch):
            try:
                async with self._db() as db:
                    await self._write(db, event)
                    await db.commit()
            except Exception as exc:  # noqa: BLE001
                if not _is_data_error(exc):
                    self._buffer[:0] = batch[i:]  # the store went away: these are retried, not lost
                    raise
                log.error(
                    "a %s record of session %s could not be stored (%s); skipped and refused to its request",
                    event.type,
                    event.session_id,
                    type(exc).__name__,
                )
                if emitter is not None:
                    self._refused[emitter] = self._refused.get(emitter, 0) + 1
            self._handled(1)

    async def close(self) -> None:
        if self._task:
            # Not in the middle of a batch: a write cut off by the cancel would lose that batch.
            async with self._write_lock:
                self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()

    # -- one event -----------------------------------------------------------------------------------
    async def _write(self, db: AsyncSession, event: RoomEvent) -> None:
        at = _time(event.at)
        db.add(
            SessionEvent(
                session_id=event.session_id,
                at=at,
                type=event.type,
                actor_id=event.actor_user_id,
                target_id=event.target_user_id,
                data=event.data or None,
            )
        )
        if event.type in _OPENS_ATTENDANCE:
            await self._close_open_interval(db, event, at, "superseded")
            db.add(
                AttendanceInterval(
                    session_id=event.session_id,
                    user_id=event.target_user_id,
                    room_role=event.data.get("room_role", "?"),
                    joined_at=at,
                )
            )
        elif event.type in _CLOSES_ATTENDANCE:
            default = "dropped" if event.type == ev.PARTICIPANT_DROPPED else "left"
            reason = event.data.get("reason", default)  # dropped also as node_lost, node_moving
            await self._close_open_interval(db, event, at, reason)
        elif event.type == ev.CHAT_MESSAGE:
            db.add(
                ChatMessage(
                    id=event.data["message_id"],
                    session_id=event.session_id,
                    at=at,
                    sender_id=event.actor_user_id,
                    recipient_id=event.target_user_id,
                    kind=event.data.get("kind", "text"),
                    text=event.data.get("text", ""),
                )
            )
        elif event.type == ev.CHAT_DELETED:
            await db.flush()
            await db.execute(
                update(ChatMessage)
                .where(ChatMessage.id == event.data["message_id"])
                .values(deleted_at=at, deleted_by_id=event.actor_user_id)
            )
        elif event.type == ev.RECORDING_SAVED:
            manifest = event.data["manifest"]
            folder = f"{manifest['session_id']}/{manifest['recording_id']}"
            for entry in manifest.get("files", []):
                db.add(
                    Recording(
                        session_id=event.session_id,
                        path=f"{folder}/{entry['file']}",
                        kind=entry["kind"],
                        source=entry.get("source", ""),
                        label=entry.get("label", ""),
                        codec=entry.get("codec", ""),
                        start_ms=int(entry.get("start_ms", 0)),
                        duration_ms=int(entry.get("duration_ms", 0)),
                        size=int(entry.get("bytes", 0)),
                        sha256=entry.get("sha256", ""),
                        recovered=bool(manifest.get("recovered")),
                    )
                )
        elif event.type == ev.ROOM_ENDED:
            await db.execute(
                update(LiveSession)
                .where(LiveSession.id == event.session_id, LiveSession.ended_at.is_(None))
                .values(ended_at=at)
            )

    @staticmethod
    async def _close_open_interval(db: AsyncSession, event: RoomEvent, at: datetime, reason: str) -> None:
        await db.flush()
        interval = (
            (
                await db.execute(
                    select(AttendanceInterval).where(
                        AttendanceInterval.session_id == event.session_id,
                        AttendanceInterval.user_id == event.target_user_id,
                        AttendanceInterval.left_at.is_(None),
                    )
                )
            )
            .scalars()
            .first()
        )
        if interval is not None:
            interval.left_at, interval.end_reason = at, reason
