"""A whole session as one ZIP, streamed: what the school hands over when asked for a period's records.

    manifest.json                    the session, period, class, teacher; the recordings (files, sha256,
                                     place on the session clock); what retention has deleted
    attendance.csv                   one row per person (session_attendance), bilingual headers
    attendance.xlsx                  the same table for Excel (personal IDs keep their leading zeros)
    chat.csv                         every message, private ones and deleted ones marked
    polls.xlsx                       quick polls and quizzes: every question with its counts, every
                                     student's answer, every student's score (archive.polls)
    events.jsonl                     every SessionEvent, one JSON object per line
    recordings/<recording>/...       the recorded files as stored, and each recording's own manifest.json

The archive is written with the standard library's zipfile onto an unseekable sink (no temporary file,
nothing held in memory but one chunk): zipfile then writes a data descriptor after each member and
switches to ZIP64 by itself for members of 2 GiB and more (we give it each file's size up front) and for
offsets past 4 GiB. That needs no extra dependency, and zipfile is the reference reader of the format.
Recorded files are stored, not deflated: WebM is already compressed. The text members are deflated.

`prepare_export` reads everything but the events and the recorded files' bytes from the store, in the
caller's transaction (so a route can write its audit entry and commit before the first byte). Then
`stream_export` yields the ZIP in chunks; every blocking step (reading a file, deflating, checksumming)
runs in a worker thread, never on the event loop, and events are read in pages, each in its own short
database session, so a slow download holds no connection.

The tables (archive.tables) are written as archive.spreadsheets makes them: CSV in UTF-8 with a BOM,
formula-like cells neutralised, and attendance also as XLSX.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zipfile
from collections import defaultdict
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, AsyncGenerator, BinaryIO, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.archive.attendance import iso, lesson_start, session_attendance
from liveclass.archive.filenames import download_names
from liveclass.archive.polls import polls_xlsx, session_polls
from liveclass.archive.search import SCHOOL_TIMEZONE
from liveclass.archive.spreadsheets import csv_bytes, xlsx_bytes
from liveclass.archive.tables import attendance_table, chat_table
from liveclass.models import ChatMessage, Handout, LiveSession, Period, Recording, SessionEvent, User, utcnow
from recordings import MANIFEST, read_manifest

log = logging.getLogger(__name__)

FORMAT = "liveclass-session-export"
VERSION = 1
CHUNK = 1 << 20  # bytes read from a recorded file at a time
EVENTS_PAGE = 2000  # session events read per database round


# -- small helpers ---------------------------------------------------------------------------------------
def export_filenames(session_id: int, class_name: str, subject: str, starts_at: datetime) -> tuple[str, str]:
    """(ASCII name, Unicode name), e.g. liveclass-10A1-Toan-2026-11-22-session-7.zip and …-Toán-…"""
    day = starts_at.astimezone(SCHOOL_TIMEZONE).date().isoformat()
    return download_names(["liveclass", class_name, subject, day, f"session-{session_id}"], "zip")


def _person(user: User | None) -> dict | None:
    return {"user_id": user.id, "name": user.full_name, "personal_id": user.personal_id} if user else None


# -- what goes in ------------------------------------------------------------------------------------------
@dataclass
class ExportFile:
    """A recorded file (or a recording's manifest) copied into the ZIP as stored."""

    path: Path
    arcname: str
    size: int
    mtime: float


@dataclass
class SessionExport:
    session_id: int
    filename: str  # ASCII: for the CLI's default output and the HTTP fallback name
    unicode_filename: str
    texts: list[tuple[str, bytes]]  # manifest.json, attendance.csv/.xlsx, chat.csv
    files: list[ExportFile]
    event_count: int
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def estimated_size(self) -> int:
        """About the ZIP's size (events.jsonl guessed): for progress bars only."""
        return (
            sum(len(t) for _, t in self.texts)
            + sum(f.size for f in self.files)
            + self.event_count * 200
            + 200 * (len(self.texts) + len(self.files) + 1)
        )


async def prepare_export(
    db: AsyncSession,
    session: LiveSession,
    period: Period,
    recordings_dir: Path,
    handouts_dir: Path,
    exported_by: User | None = None,
    now: datetime | None = None,
) -> SessionExport:
    """Everything the ZIP holds but the events and the recorded bytes, read in the caller's transaction."""
    now = now or utcnow()
    attendance = await session_attendance(db, session, period, now=now)
    chat = (
        (
            await db.execute(
                select(ChatMessage).where(ChatMessage.session_id == session.id).order_by(ChatMessage.at, ChatMessage.id)
            )
        )
        .scalars()
        .all()
    )
    recordings = (
        (
            await db.execute(
                select(Recording).where(Recording.session_id == session.id).order_by(Recording.start_ms, Recording.id)
            )
        )
        .scalars()
        .all()
    )
    event_count = (
        await db.execute(select(func.count()).select_from(SessionEvent).where(SessionEvent.session_id == session.id))
    ).scalar_one()
    people_ids = (
        {m.sender_id for m in chat}
        | {m.recipient_id for m in chat}
        | {m.deleted_by_id for m in chat}
        | {period.teacher_id}
    ) - {None}
    people = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(people_ids)))).scalars()}

    handouts = (
        (
            await db.execute(
                select(Handout).where(Handout.session_id == session.id).order_by(Handout.uploaded_at, Handout.id)
            )
        )
        .scalars()
        .all()
    )
    recording_entries, files = await asyncio.to_thread(_recording_files, recordings_dir, recordings)
    handout_entries, handout_files = await asyncio.to_thread(_handout_files, handouts_dir / str(session.id), handouts)
    files += handout_files
    ascii_name, unicode_name = export_filenames(session.id, period.school_class.name, period.subject, period.starts_at)
    counts = {
        "attendance": len(attendance),
        "chat": len(chat),
        "events": event_count,
        "recording_files": len(recordings),
    }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso(now),
        "exported_by": (
            {"user_id": exported_by.id, "name": exported_by.full_name, "role": exported_by.role.value}
            if exported_by
            else None
        ),
        "timezone": str(SCHOOL_TIMEZONE),
        "session": {
            "session_id": session.id,
            "started_at": iso(session.started_at),
            "ended_at": iso(session.ended_at),
            "running": session.ended_at is None,
            "node": session.node,
            "lesson_started_at": iso(lesson_start(session, period)),
            "legal_hold": bool(session.legal_hold),
            "legal_hold_reason": session.legal_hold_reason,
        },
        "period": {
            "period_id": period.id,
            "subject": period.subject,
            "starts_at": iso(period.starts_at),
            "ends_at": iso(period.ends_at),
            "mode": getattr(period.mode, "value", period.mode),
        },
        "class": {
            "class_id": period.school_class.id,
            "name": period.school_class.name,
            "school_year": period.school_class.school_year,
        },
        "teacher": _person(people.get(period.teacher_id)),
        # Which kinds of record the retention job has deleted, and when: those files are empty or absent.
        "purged": session.purged or {},
        "counts": counts,
        "recordings": recording_entries,
        "handouts": handout_entries,
        "contents": {
            "attendance.csv": "Điểm danh / Attendance (UTF-8, giờ Việt Nam / local time)",
            "attendance.xlsx": "Điểm danh cho Excel / Attendance for Excel",
            "chat.csv": "Tin nhắn / Chat (UTF-8, giờ Việt Nam / local time)",
            "polls.xlsx": "Câu hỏi nhanh, bài kiểm tra: câu hỏi, câu trả lời và điểm của từng học sinh / "
            "Quick polls and quizzes: the questions, every student's answer and score",
            "events.jsonl": "Mọi sự kiện của buổi học / Every session event (UTC)",
            "recordings/": "Bản ghi hình / Recorded files (WebM), one folder per recording",
            "handouts/": "Tài liệu đã phát / Handouts given out in the period",
        },
    }
    attendance_rows = attendance_table(attendance, period)
    polls, poll_people = await session_polls(db, session.id)
    counts["polls"] = len(polls)
    counts["poll_questions"] = sum(len(p.questions) for p in polls)
    texts = [
        ("manifest.json", (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")),
        ("attendance.csv", csv_bytes(*attendance_rows)),
        ("attendance.xlsx", await asyncio.to_thread(xlsx_bytes, "Điểm danh", *attendance_rows)),
        ("chat.csv", csv_bytes(*chat_table(chat, people))),
        ("polls.xlsx", await asyncio.to_thread(polls_xlsx, polls, poll_people)),
    ]
    return SessionExport(session.id, ascii_name, unicode_name, texts, files, event_count, now, counts=counts)


def _component(name: str) -> str:
    """One safe path component inside the ZIP (never empty, "." or "..")."""
    return name if name not in ("", ".", "..") else "_"


def _handout_files(directory: Path, handouts: Sequence[Handout]) -> tuple[list[dict], list[ExportFile]]:
    """The handouts given out in the session, as uploaded (blocking: file system)."""
    entries, files = [], []
    for handout in handouts:
        # Numbered: two handouts may have the same name.
        arcname = f"handouts/{handout.id:04d}-{_component(PurePosixPath(handout.filename).name)}"
        path = directory / handout.stored_name
        item = {
            "handout_id": handout.id,
            "filename": handout.filename,
            "content_type": handout.content_type,
            "size": handout.size,
            "sha256": handout.sha256,
            "uploaded_at": iso(handout.uploaded_at),
            "path": arcname,
        }
        if path.is_file():
            stat = path.stat()
            files.append(ExportFile(path, arcname, stat.st_size, stat.st_mtime))
        else:
            item["missing"] = True  # deleted by retention, or lost
        entries.append(item)
    return entries, files


def _recording_files(recordings_dir: Path, recordings: Sequence[Recording]) -> tuple[list[dict], list[ExportFile]]:
    """The recordings, one entry per recording directory, and the files to copy (blocking: file system)."""
    root = recordings_dir.resolve()
    by_directory: dict[str, list[Recording]] = defaultdict(list)
    for recording in recordings:
        by_directory[str(PurePosixPath(recording.path).parent)].append(recording)
    entries: list[dict] = []
    files: list[ExportFile] = []
    in_zip: set[str] = set()  # a file listed twice (a recording saved again after recovery) goes in once
    for directory, rows in by_directory.items():
        folder = _component(PurePosixPath(directory).name)
        stored = (root / directory).resolve()
        inside = stored.is_relative_to(root)
        disk_manifest = read_manifest(stored) if inside else None
        entry: dict[str, Any] = {"recording_id": folder, "directory": f"recordings/{folder}/"}
        if disk_manifest:
            entry.update(
                {
                    k: disk_manifest.get(k)
                    for k in ("started_at", "duration_ms", "finished", "recovered", "stopped_reason", "pauses")
                }
            )
            manifest_path = stored / MANIFEST
            stat = manifest_path.stat()
            files.append(ExportFile(manifest_path, f"recordings/{folder}/{MANIFEST}", stat.st_size, stat.st_mtime))
            entry["manifest"] = f"recordings/{folder}/{MANIFEST}"
        entry["files"] = []
        for recording in rows:
            path = (root / recording.path).resolve()
            name = _component(PurePosixPath(recording.path).name)
            item: dict[str, Any] = {
                "recording_row_id": recording.id,
                "file": name,
                "path": f"recordings/{folder}/{name}",
                "kind": recording.kind,
                "source": recording.source,
                "label": recording.label,
                "codec": recording.codec,
                "start_ms": recording.start_ms,
                "duration_ms": recording.duration_ms,
                "size": recording.size,
                "sha256": recording.sha256,
                "recovered": recording.recovered,
            }
            if path.is_relative_to(root) and path.is_file():
                stat = path.stat()
                item["size"] = stat.st_size
                if item["path"] not in in_zip:
                    in_zip.add(item["path"])
                    files.append(ExportFile(path, item["path"], stat.st_size, stat.st_mtime))
            else:
                log.warning(
                    "session export: recording %s (%s) is not on disk; listed as missing", recording.id, recording.path
                )
                item["missing"] = True
            entry["files"].append(item)
        entries.append(entry)
    return entries, files


# -- the stream ----------------------------------------------------------------------------------------------
class _Sink:
    """An unseekable file for zipfile to write into; the stream takes what gathered after each step."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        if data:
            self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass  # zipfile never closes a file it was given; part of the writable file it expects

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _info(arcname: str, when: datetime | float, stored: bool) -> zipfile.ZipInfo:
    moment = (
        datetime.fromtimestamp(when, SCHOOL_TIMEZONE) if isinstance(when, float) else when.astimezone(SCHOOL_TIMEZONE)
    )
    info = zipfile.ZipInfo(arcname, date_time=moment.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> None:
    archive.writestr(info, data)


def _copy_chunk(source: BinaryIO, target, size: int) -> int:
    block = source.read(size)
    if block:
        target.write(block)
    return len(block)


async def _event_pages(
    db_factory: async_sessionmaker[AsyncSession], session_id: int, page: int = EVENTS_PAGE
) -> AsyncGenerator[bytes, None]:
    """events.jsonl in pages (ordered by time, then id), each page read in its own short session."""
    people: dict[int, dict | None] = {}
    after: tuple[datetime, int] | None = None
    while True:
        async with db_factory() as db:
            query = select(SessionEvent).where(SessionEvent.session_id == session_id)
            if after is not None:
                query = query.where(
                    or_(SessionEvent.at > after[0], and_(SessionEvent.at == after[0], SessionEvent.id > after[1]))
                )
            events = (await db.execute(query.order_by(SessionEvent.at, SessionEvent.id).limit(page))).scalars().all()
            named = {e.actor_id for e in events} | {e.target_id for e in events}
            wanted = {i for i in named if i is not None} - set(people)
            if wanted:
                users = (await db.execute(select(User).where(User.id.in_(wanted)))).scalars()
                found = {u.id: _person(u) for u in users}
                people.update({i: found.get(i) for i in wanted})
        if not events:
            return
        lines = [
            json.dumps(
                {
                    "event_id": e.id,
                    "at": iso(e.at),
                    "type": e.type,
                    "actor": people.get(e.actor_id) if e.actor_id else None,
                    "target": people.get(e.target_id) if e.target_id else None,
                    "data": e.data,
                },
                ensure_ascii=False,
            )
            + "\n"
            for e in events
        ]
        yield "".join(lines).encode("utf-8")
        if len(events) < page:
            return
        after = (events[-1].at, events[-1].id)


async def stream_export(
    export: SessionExport, db_factory: async_sessionmaker[AsyncSession], chunk_size: int = CHUNK
) -> AsyncGenerator[bytes, None]:
    """The ZIP, chunk by chunk. Close it with contextlib.aclosing: a reader that stops early (a client
    that went away) closes the open file."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", allowZip64=True)
    source: BinaryIO | None = None
    member = None
    finished = False
    try:
        for name, data in export.texts:
            await asyncio.to_thread(_write_text, archive, _info(name, export.created_at, stored=False), data)
            yield sink.take()

        # Its size is not known before it is written: ZIP64 sizes from the start, whatever it becomes.
        member = archive.open(_info("events.jsonl", export.created_at, stored=False), "w", force_zip64=True)
        async with aclosing(_event_pages(db_factory, export.session_id)) as pages:
            async for page in pages:
                await asyncio.to_thread(member.write, page)
                if chunk := sink.take():
                    yield chunk
        await asyncio.to_thread(member.close)
        member = None
        yield sink.take()

        for item in export.files:
            source = await asyncio.to_thread(open, item.path, "rb")
            info = _info(item.arcname, item.mtime, stored=True)
            info.file_size = item.size  # so that zipfile picks ZIP64 for large files before writing the header
            member = archive.open(info, "w")
            while await asyncio.to_thread(_copy_chunk, source, member, chunk_size):
                if chunk := sink.take():
                    yield chunk
            await asyncio.to_thread(member.close)
            member = None
            source.close()
            source = None
            if chunk := sink.take():
                yield chunk

        await asyncio.to_thread(archive.close)
        finished = True
        if chunk := sink.take():
            yield chunk
    finally:
        if source is not None:
            source.close()
        if not finished:
            # Stopped early: close zipfile's handles quietly (what they still write goes nowhere).
            try:
                if member is not None:
                    member.close()
                archive.close()
            except Exception:  # noqa: BLE001 - the archive is abandoned anyway
                pass
            sink.take()
