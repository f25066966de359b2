"""Retention: how long each kind of record is kept, and the deletion that applies the periods.

Periods are counted from the end of the session (`ended_at`; a session that never ended — the server
stopped without ending it — from `started_at`; a room still live on this node never), the audit log
from each entry's own time. Admins override the defaults in `retention_policies`.

What each kind deletes, per expired session:
- recordings: the session's recording folder(s) on disk (`recordings/<session id>/`, lesson videos
  included; a lesson video still being made is cancelled first) and the Recording rows; the file lists
  (`files`: labels are people's names) of the `recording_saved` events are emptied; the session's
  share links still open are revoked (a student who opens one is told it was withdrawn);
- chat: the ChatMessage rows, and the text of the `chat_message` / `chat_deleted` events. The events
  themselves stay (without `text`), so attendance, kept longer, can still count messages per person;
- attendance: the presence intervals and the participation events (lobby_*, participant_*, hand_*,
  media_*);
- handouts: the uploaded files (`handouts/<session id>/`) and the Handout rows;
- assessments: the quick polls and quizzes, i.e. the session's poll_* events (the questions, every
  student's answer and score: archive/polls.py reads them); polls.xlsx and the records page then have none;
- audit: audit entries older than the period (except those about sessions under a legal hold).

A session under a legal hold is never touched. Each session is purged in its own transaction: files
first, then rows, then the mark `LiveSession.purged[kind]`; a failure leaves that session for the
next run and does not stop the others. Every run (not a dry run) writes the audit entry
`retention_deleted` (actor: none) with its counts; the newest one is the `last_run` of GET /retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.archive.attendance import iso
from liveclass.audit import audit
from liveclass.config import Settings
from liveclass.models import (
    AttendanceInterval,
    AuditEntry,
    ChatMessage,
    Handout,
    LiveSession,
    Recording,
    RecordingShare,
    RecordKind,
    RetentionPolicy,
    SessionEvent,
    User,
    utcnow,
)
from signaling import events as ev

log = logging.getLogger(__name__)

DEFAULT_DAYS: dict[RecordKind, int] = {
    RecordKind.recordings: 365,
    RecordKind.chat: 365,
    RecordKind.attendance: 1825,
    RecordKind.handouts: 365,
    RecordKind.assessments: 1825,
    RecordKind.audit: 1825,
}
MIN_DAYS, MAX_DAYS = 1, 36500
SESSION_KINDS = (
    RecordKind.recordings,
    RecordKind.chat,
    RecordKind.attendance,
    RecordKind.handouts,
    RecordKind.assessments,
)
CHAT_EVENTS = (ev.CHAT_MESSAGE, ev.CHAT_DELETED)
PARTICIPATION_PREFIXES = ("lobby_", "participant_", "hand_", "media_")
ASSESSMENT_PREFIX = "poll_"  # poll_opened, poll_question, poll_answered, poll_closed, poll_revealed
AUDIT_ACTION = "retention_deleted"
# Called with a session's id before its recording files are deleted (the server cancels its lesson video).
BeforeRecordingsDeleted = Callable[[int], Awaitable[None]]


# -- policies ------------------------------------------------------------------------------------------
async def current_days(db: AsyncSession) -> dict[RecordKind, int]:
    """The period in days of every kind: the admins' setting, or the default."""
    days = dict(DEFAULT_DAYS)
    for policy in (await db.execute(select(RetentionPolicy))).scalars():
        days[policy.kind] = policy.days
    return days


async def policies_view(db: AsyncSession) -> list[dict]:
    rows = {p.kind: p for p in (await db.execute(select(RetentionPolicy))).scalars()}
    by_ids = {p.updated_by_id for p in rows.values() if p.updated_by_id is not None}
    people = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(by_ids)))).scalars()} if by_ids else {}
    out = []
    for kind in RecordKind:
        row = rows.get(kind)
        who = people.get(row.updated_by_id) if row and row.updated_by_id is not None else None
        out.append(
            {
                "kind": kind.value,
                "days": row.days if row else DEFAULT_DAYS[kind],
                "default_days": DEFAULT_DAYS[kind],
                "updated_at": iso(row.updated_at) if row else None,
                "updated_by": {"user_id": who.id, "name": who.full_name} if who else None,
            }
        )
    return out


async def update_policies(db: AsyncSession, user: User | None, changes: dict[RecordKind, int]) -> dict:
    """Set the periods given; answers {"old": {kind: days}, "new": {kind: days}} of those that changed."""
    current = await current_days(db)
    rows = {p.kind: p for p in (await db.execute(select(RetentionPolicy))).scalars()}
    old, new = {}, {}
    now = utcnow()
    for kind, days in changes.items():
        if not MIN_DAYS <= days <= MAX_DAYS:
            raise ValueError(f"{kind.value}: {days} days is outside {MIN_DAYS}..{MAX_DAYS}")
        if current[kind] == days:
            continue
        row = rows.get(kind)
        if row is None:
            db.add(RetentionPolicy(kind=kind, days=days, updated_at=now, updated_by_id=user.id if user else None))
        else:
            row.days, row.updated_at, row.updated_by_id = days, now, user.id if user else None
        old[kind.value], new[kind.value] = current[kind], days
    await db.flush()
    return {"old": old, "new": new}


async def last_run(db: AsyncSession) -> dict | None:
    """The report of the newest run that deleted (its audit entry), or None."""
    entry = (
        (
            await db.execute(
                select(AuditEntry)
                .where(AuditEntry.action == AUDIT_ACTION)
                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
    if entry is None:
        return None
    details = dict(entry.details or {})
    return {"at": iso(entry.at), **details}


# -- the deletion ---------------------------------------------------------------------------------------
@dataclass
class PurgeReport:
    at: datetime
    dry_run: bool
    days: dict[str, int]
    # Rows deleted per kind: Recording, ChatMessage, AttendanceInterval, Handout, the poll_* SessionEvents
    # (assessments), AuditEntry.
    deleted: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in RecordKind})
    # Sessions whose records of the kind were deleted (and marked purged) in this run.
    sessions: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in SESSION_KINDS})
    files_deleted: dict[str, int] = field(default_factory=lambda: {"recordings": 0, "handouts": 0})
    events: dict[str, int] = field(
        default_factory=lambda: {
            "chat_text_removed": 0,
            "attendance_deleted": 0,
            "recording_files_unlisted": 0,
            "shares_revoked": 0,
        }
    )
    # Sessions with expired records kept because of a legal hold.
    held_sessions: int = 0
    failed_sessions: list[int] = field(default_factory=list)

    def view(self) -> dict:
        return {
            "at": iso(self.at),
            "dry_run": self.dry_run,
            "days": self.days,
            "deleted": self.deleted,
            "sessions": self.sessions,
            "files_deleted": self.files_deleted,
            "events": self.events,
            "held_sessions": self.held_sessions,
            "failed_sessions": self.failed_sessions,
        }


def _files_under(path: Path) -> list[Path]:
    return [_absolute(p) for p in path.rglob("*") if p.is_file() or p.is_symlink()] if path.is_dir() else []


def _absolute(path: Path) -> Path:
    """Absolute and normalised, but symbolic links not followed (a link is deleted, not its target)."""
    return Path(os.path.abspath(path))


def _remove(paths: Iterable[Path], folder: Path) -> None:
    """Delete the files, then the folder; files already gone are fine, any other failure is raised."""
    for path in paths:
        path.unlink(missing_ok=True)

    def missing_is_fine(function, name, exc_info):
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    if folder.is_dir():
        shutil.rmtree(folder, onerror=missing_is_fine)


def _inside(base: Path, relative: str) -> Path | None:
    path = _absolute(base / relative)
    return path if path.is_relative_to(_absolute(base)) and path != _absolute(base) else None


def _participation_events(session_id: int):
    return and_(
        SessionEvent.session_id == session_id,
        or_(
            *(
                SessionEvent.type.like(prefix.replace("_", "\\_") + "%", escape="\\")
                for prefix in PARTICIPATION_PREFIXES
            )
        ),
    )


def _assessment_events(session_id: int):
    return and_(
        SessionEvent.session_id == session_id,
        SessionEvent.type.like(ASSESSMENT_PREFIX.replace("_", "\\_") + "%", escape="\\"),
    )


async def _count(db: AsyncSession, model, *where) -> int:
    return (await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def _purge_session(
    db_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    session_id: int,
    kinds: list[RecordKind],
    now: datetime,
    dry_run: bool,
    report: PurgeReport,
    before_recordings_deleted: BeforeRecordingsDeleted | None,
) -> bool:
    """Delete the kinds of one session in one transaction; False if it came under a legal hold meanwhile."""
    deleted: dict[str, int] = {}
    files: dict[str, int] = {}
    events: dict[str, int] = {}
    async with db_factory() as db:
        session = await db.get(LiveSession, session_id)
        if session is None:
            return True
        if session.legal_hold:
            return False
        for kind in kinds:
            if kind == RecordKind.recordings:
                rows = (await db.execute(select(Recording).where(Recording.session_id == session_id))).scalars().all()
                folder = settings.recordings_dir / str(session_id)
                paths = {p for r in rows if (p := _inside(settings.recordings_dir, r.path)) and p.exists()}
                paths |= set(await asyncio.to_thread(_files_under, folder))
                deleted[kind.value], files["recordings"] = len(rows), len(paths)
                # The `recording_saved` events list the files with the names of those recorded (labels).
                manifests = [
                    e
                    for e in (
                        await db.execute(
                            select(SessionEvent).where(
                                SessionEvent.session_id == session_id, SessionEvent.type == ev.RECORDING_SAVED
                            )
                        )
                    ).scalars()
                    if (e.data or {}).get("manifest", {}).get("files")
                ]
                events["recording_files_unlisted"] = len(manifests)
                open_shares = [
                    s
                    for s in (
                        await db.execute(select(RecordingShare).where(RecordingShare.session_id == session_id))
                    ).scalars()
                    if s.active(now)
                ]
                events["shares_revoked"] = len(open_shares)
                if not dry_run:
                    if before_recordings_deleted is not None:
                        await before_recordings_deleted(session_id)
                    await asyncio.to_thread(_remove, paths, folder)
                    await db.execute(delete(Recording).where(Recording.session_id == session_id))
                    for event in manifests:
                        assert event.data is not None  # kept above only when it lists files
                        event.data = {**event.data, "manifest": {**event.data["manifest"], "files": []}}
                    for share in open_shares:
                        share.revoked_at = now
            elif kind == RecordKind.chat:
                deleted[kind.value] = await _count(db, ChatMessage, ChatMessage.session_id == session_id)
                with_text = [
                    e
                    for e in (
                        await db.execute(
                            select(SessionEvent).where(
                                SessionEvent.session_id == session_id, SessionEvent.type.in_(CHAT_EVENTS)
                            )
                        )
                    ).scalars()
                    if e.data and "text" in e.data
                ]
                events["chat_text_removed"] = len(with_text)
                if not dry_run:
                    for event in with_text:
                        assert event.data is not None  # kept above only when it has a text
                        event.data = {k: v for k, v in event.data.items() if k != "text"}
                    await db.execute(delete(ChatMessage).where(ChatMessage.session_id == session_id))
            elif kind == RecordKind.attendance:
                deleted[kind.value] = await _count(db, AttendanceInterval, AttendanceInterval.session_id == session_id)
                events["attendance_deleted"] = await _count(db, SessionEvent, _participation_events(session_id))
                if not dry_run:
                    await db.execute(delete(AttendanceInterval).where(AttendanceInterval.session_id == session_id))
                    await db.execute(delete(SessionEvent).where(_participation_events(session_id)))
            elif kind == RecordKind.assessments:
                deleted[kind.value] = await _count(db, SessionEvent, _assessment_events(session_id))
                if not dry_run:
                    await db.execute(delete(SessionEvent).where(_assessment_events(session_id)))
            elif kind == RecordKind.handouts:
                handouts = (await db.execute(select(Handout).where(Handout.session_id == session_id))).scalars().all()
                folder = settings.handouts_dir / str(session_id)
                paths = {p for h in handouts if (p := _inside(folder, h.stored_name)) and p.exists()}
                paths |= set(await asyncio.to_thread(_files_under, folder))
                deleted[kind.value], files["handouts"] = len(handouts), len(paths)
                if not dry_run:
                    await asyncio.to_thread(_remove, paths, folder)
                    await db.execute(delete(Handout).where(Handout.session_id == session_id))
        if not dry_run:
            session.purged = {**(session.purged or {}), **{k.value: iso(now) for k in kinds}}
            await db.commit()
    # Counted only once the session's transaction is through.
    for key, n in deleted.items():
        report.deleted[key] += n
    for key, n in files.items():
        report.files_deleted[key] += n
    for key, n in events.items():
        report.events[key] += n
    for kind in kinds:
        report.sessions[kind.value] += 1
    log.info(
        "retention%s: session %s: %s",
        " (dry run)" if dry_run else "",
        session_id,
        ", ".join(f"{k} {n}" for k, n in deleted.items()),
    )
    return True


async def _purge_audit(db: AsyncSession, cutoff: datetime, held_ids: list[int], dry_run: bool) -> int:
    """Audit entries older than the cutoff, except those about sessions under a legal hold."""
    kept_targets = [f"session:{i}" for i in held_ids]
    if held_ids:
        kept_targets += [
            f"recording:{i}"
            for i in (await db.execute(select(Recording.id).where(Recording.session_id.in_(held_ids)))).scalars()
        ]
    where = [AuditEntry.at < cutoff]
    if kept_targets:
        where.append(or_(AuditEntry.target.is_(None), AuditEntry.target.not_in(kept_targets)))
    count = await _count(db, AuditEntry, *where)
    if count and not dry_run:
        await db.execute(delete(AuditEntry).where(*where))
    return count


def _session_end(started_at: datetime, ended_at: datetime | None) -> datetime:
    return ended_at or started_at


async def purge_expired(
    db_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | None = None,
    dry_run: bool = False,
    *,
    live_sessions: Iterable[int] = (),
    via: str = "job",
    requested_by: User | None = None,
    before_recordings_deleted: BeforeRecordingsDeleted | None = None,
) -> PurgeReport:
    """Delete every record whose retention period has run out (dry run: count only).

    `live_sessions`: sessions whose rooms are open on this node (never touched, even if the store has
    no end for them). `via` and `requested_by` go into the audit entry. `before_recordings_deleted`:
    awaited with a session's id before its recording files go (not in a dry run).
    """
    now = now or utcnow()
    live = set(live_sessions)
    async with db_factory() as db:
        days = await current_days(db)
        shortest = min(days[k] for k in SESSION_KINDS)
        cutoff = now - timedelta(days=shortest)
        candidates = (
            await db.execute(
                select(
                    LiveSession.id,
                    LiveSession.started_at,
                    LiveSession.ended_at,
                    LiveSession.legal_hold,
                    LiveSession.purged,
                )
                .where(
                    or_(
                        and_(LiveSession.ended_at.is_not(None), LiveSession.ended_at < cutoff),
                        and_(LiveSession.ended_at.is_(None), LiveSession.started_at < cutoff),
                    )
                )
                .order_by(LiveSession.id)
            )
        ).all()
        held_ids = list((await db.execute(select(LiveSession.id).where(LiveSession.legal_hold.is_(True)))).scalars())
    report = PurgeReport(at=now, dry_run=dry_run, days={k.value: v for k, v in days.items()})

    for row in candidates:
        if row.ended_at is None and row.id in live:
            continue
        end = _session_end(row.started_at, row.ended_at)
        done = row.purged or {}
        due = [k for k in SESSION_KINDS if k.value not in done and end < now - timedelta(days=days[k])]
        if not due:
            continue
        if row.legal_hold:
            report.held_sessions += 1
            continue
        try:
            if not await _purge_session(
                db_factory, settings, row.id, due, now, dry_run, report, before_recordings_deleted
            ):
                report.held_sessions += 1
        except Exception as exc:  # noqa: BLE001 - one session must not stop the others; retried next run
            # The error's text may quote stored data (chat): its kind and, for files, the path only.
            detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else type(exc).__name__
            log.error("retention: session %s could not be purged (%s); it is retried on the next run", row.id, detail)
            report.failed_sessions.append(row.id)

    async with db_factory() as db:
        report.deleted[RecordKind.audit.value] = await _purge_audit(
            db, now - timedelta(days=days[RecordKind.audit]), held_ids, dry_run
        )
        if not dry_run:
            details = {k: v for k, v in report.view().items() if k not in {"at", "dry_run"}}
            details["via"] = via
            if requested_by:
                details["requested_by"] = requested_by.id
            audit(db, None, AUDIT_ACTION, **details)
        await db.commit()
    log.info(
        "retention%s: deleted %s; files %s; %d session(s) under legal hold kept%s",
        " (dry run, nothing deleted)" if dry_run else "",
        ", ".join(f"{k} {n}" for k, n in report.deleted.items()),
        ", ".join(f"{k} {n}" for k, n in report.files_deleted.items()),
        report.held_sessions,
        f"; {len(report.failed_sessions)} session(s) failed" if report.failed_sessions else "",
    )
    return report


# -- the daily job ------------------------------------------------------------------------------------------
async def live_session_ids(app) -> set[int]:
    """Sessions whose rooms are open, on any node."""
    from liveclass.live import ROUTER

    router = app.get(ROUTER)
    if router is None:
        return set()
    return {sid for answer in await router.command_all("live_sessions") for sid in answer}


def cancel_lesson_video(app) -> BeforeRecordingsDeleted | None:
    """The server's hook that stops a lesson video being made from a recording about to be deleted."""
    from liveclass.live import LESSON_VIDEOS

    videos = app.get(LESSON_VIDEOS)
    return videos.cancel if videos is not None else None


async def _run_periodically(app) -> None:
    from liveclass.appkeys import DB, SETTINGS

    settings: Settings = app[SETTINGS]
    delay = settings.retention_start_delay_seconds
    while True:
        await asyncio.sleep(delay)
        delay = settings.retention_interval_hours * 3600
        try:
            from liveclass.live import ROUTER

            # Every node runs this loop; one of them purges at a time.
            async with app[ROUTER].exclusive("retention", seconds=3600) as mine:
                if mine:
                    await purge_expired(
                        app[DB],
                        settings,
                        live_sessions=await live_session_ids(app),
                        via="daily",
                        before_recordings_deleted=cancel_lesson_video(app),
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the server goes on; the next run tries again
            log.error(
                "retention run failed (%s); trying again in %g h", type(exc).__name__, settings.retention_interval_hours
            )


async def retention_ctx(app):
    """aiohttp cleanup context: the retention run shortly after start, then every
    `retention_interval_hours` (0: never); cancelled on shutdown."""
    from liveclass.appkeys import SETTINGS

    task = None
    if app[SETTINGS].retention_interval_hours > 0:
        task = asyncio.get_running_loop().create_task(_run_periodically(app), name="retention")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
