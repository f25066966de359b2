"""Retention and legal holds (docs/records-archive.md): periods set by admins, the retention run (over
HTTP, by the daily job, by the CLI) deleting exactly what expired, legal holds keeping everything."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psutil
from sqlalchemy import func, select

from liveclass.archive import retention
from liveclass.models import (
    AttendanceInterval,
    AuditEntry,
    ChatMessage,
    Handout,
    LiveSession,
    Recording,
    SessionEvent,
    utcnow,
)
from tests.archive_seed import seed_archived_session
from tests.helpers import eventually, make_settings, seed_school, start_server
from tests.test_cli import liveclass as run_cli

HOLD_REASON = "Thanh tra Sở GD&ĐT, công văn số 123/TTr"


# -- helpers -----------------------------------------------------------------------------------------------
async def add_handout(server, session_id: int) -> None:
    """A handout as the upload route stores it: a file under a random name, and its row."""
    stored = secrets.token_hex(16)
    folder = server.settings.handouts_dir / str(session_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / stored).write_bytes(b"%PDF-1.4\n% bai tap\n")
    async with server.db() as db:
        db.add(
            Handout(
                session_id=session_id,
                filename="Phiếu bài tập.pdf",
                content_type="application/pdf",
                size=19,
                sha256="0" * 64,
                stored_name=stored,
            )
        )
        await db.commit()


async def add_audit(server, days_ago: float, target: str | None = None) -> int:
    async with server.db() as db:
        entry = AuditEntry(at=utcnow() - timedelta(days=days_ago), action="records_viewed", target=target)
        db.add(entry)
        await db.commit()
        return entry.id


@dataclass
class Snapshot:
    recordings: int
    chat: int
    chat_texts: int  # chat events still holding their text
    chat_events: int
    attendance: int
    participation_events: int
    other_events: int
    handouts: int
    recording_files: int  # files on disk under recordings/<session>/
    handout_files: int
    purged: dict | None

    def counts(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "purged"}


async def snapshot(server, session_id: int) -> Snapshot:
    async def count(model, *where) -> int:
        return (await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one()

    async with server.db() as db:
        events = (await db.execute(select(SessionEvent).where(SessionEvent.session_id == session_id))).scalars().all()
        chat_events = [e for e in events if e.type in retention.CHAT_EVENTS]
        participation = [e for e in events if e.type.startswith(retention.PARTICIPATION_PREFIXES)]
        session = await db.get(LiveSession, session_id)
        result = Snapshot(
            recordings=await count(Recording, Recording.session_id == session_id),
            chat=await count(ChatMessage, ChatMessage.session_id == session_id),
            chat_texts=sum(1 for e in chat_events if "text" in (e.data or {})),
            chat_events=len(chat_events),
            attendance=await count(AttendanceInterval, AttendanceInterval.session_id == session_id),
            participation_events=len(participation),
            other_events=len(events) - len(chat_events) - len(participation),
            handouts=await count(Handout, Handout.session_id == session_id),
            recording_files=_files(server.settings.recordings_dir / str(session_id)),
            handout_files=_files(server.settings.handouts_dir / str(session_id)),
            purged=session.purged,
        )
    return result


def _files(folder) -> int:
    # os.walk skips what disappears while it walks (the retention job may be deleting it right now).
    return sum(len(files) for _, _, files in os.walk(folder))


async def audit_entries(server, action: str) -> list[AuditEntry]:
    async with server.db() as db:
        return list(
            (await db.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))).scalars()
        )


# -- the retention run -------------------------------------------------------------------------------------
async def test_the_run_deletes_exactly_what_expired(any_store_server, lesson):
    server = any_store_server
    school = await seed_school(server)
    old = await seed_archived_session(server, school, lesson, days_ago=400)
    held = await seed_archived_session(server, school, lesson, days_ago=400)
    mid = await seed_archived_session(server, school, lesson, days_ago=100)
    recent = await seed_archived_session(server, school, lesson, days_ago=1)
    sessions = {"old": old.session_id, "held": held.session_id, "mid": mid.session_id, "recent": recent.session_id}
    for session_id in sessions.values():
        await add_handout(server, session_id)
    expired_audit = [await add_audit(server, 400), await add_audit(server, 300)]
    kept_audit = [
        await add_audit(server, 100),
        await add_audit(server, 400, target=f"session:{held.session_id}"),
    ]  # about a held session

    admin = await server.logged_in(school.admin)
    hold = await admin.json(
        "PUT", f"/sessions/{held.session_id}/legal-hold", json={"hold": True, "reason": HOLD_REASON}
    )
    assert hold["legal_hold"] is True and hold["legal_hold_reason"] == HOLD_REASON
    assert hold["legal_hold_by"]["user_id"] == school.admin.id
    # chat 50 days: the 100-day-old session loses its chat too; attendance keeps its default (5 years).
    await admin.json("PUT", "/retention", json={"recordings": 200, "chat": 50, "handouts": 200, "audit": 200})
    # Share links a student holds: the one to the recording that expires stops opening, the other not.
    links = {
        name: (await admin.json("POST", f"/sessions/{sessions[name]}/shares", expect=201, json={"days": 30}))["token"]
        for name in ("old", "recent")
    }
    student = await server.logged_in(school.student)
    assert all([(await student.json("GET", f"/shared/{token}"))["recordings"] for token in links.values()])

    before = {name: await snapshot(server, sid) for name, sid in sessions.items()}
    for name in sessions:
        assert before[name].recordings > 0 and before[name].recording_files >= before[name].recordings
        assert before[name].chat > 0 and before[name].chat_texts > 0 and before[name].attendance > 0
        assert before[name].handouts == before[name].handout_files == 1
    expected = {
        "recordings": before["old"].recordings,
        "chat": before["old"].chat + before["mid"].chat,
        "attendance": 0,
        "handouts": 1,
        "assessments": 0,
        "audit": len(expired_audit),
    }

    # A dry run deletes nothing but counts the same.
    dry = await admin.json("POST", "/retention/run?dry_run=true")
    assert dry["dry_run"] is True and dry["deleted"] == expected and dry["held_sessions"] == 1
    assert {name: await snapshot(server, sid) for name, sid in sessions.items()} == before
    assert await audit_entries(server, "retention_deleted") == []

    report = await admin.json("POST", "/retention/run")
    assert report["dry_run"] is False and report["failed_sessions"] == []
    assert report["deleted"] == expected == dry["deleted"]
    assert report["sessions"] == {"recordings": 1, "chat": 2, "attendance": 0, "handouts": 1, "assessments": 0}
    assert report["files_deleted"] == {"recordings": before["old"].recording_files, "handouts": 1}
    assert report["events"] == {
        "chat_text_removed": before["old"].chat_texts + before["mid"].chat_texts,
        "attendance_deleted": 0,
        "recording_files_unlisted": 1,
        "shares_revoked": 1,
    }
    assert dry["events"] == report["events"]
    async with server.db() as db:
        [saved] = (
            await db.execute(
                select(SessionEvent).where(
                    SessionEvent.session_id == old.session_id, SessionEvent.type == "recording_saved"
                )
            )
        ).scalars()
    assert saved.data["manifest"]["files"] == [] and saved.data["manifest"]["recording_id"]
    assert report["held_sessions"] == 1
    assert report["days"] == {
        "recordings": 200,
        "chat": 50,
        "attendance": 1825,
        "handouts": 200,
        "assessments": 1825,
        "audit": 200,
    }

    after = {name: await snapshot(server, sid) for name, sid in sessions.items()}
    # The old session: recordings (files and rows), chat and handouts gone; attendance kept.
    assert after["old"].counts() == dict(
        before["old"].counts(), recordings=0, recording_files=0, chat=0, chat_texts=0, handouts=0, handout_files=0
    )
    assert not (server.settings.recordings_dir / str(old.session_id)).exists()
    assert all(not path.exists() for path in old.recording_files)
    assert set(after["old"].purged) == {"recordings", "chat", "handouts"}
    # 100 days: only the chat (its events stay, without their text).
    assert after["mid"].counts() == dict(before["mid"].counts(), chat=0, chat_texts=0)
    assert set(after["mid"].purged) == {"chat"}
    # Yesterday's session and the held one: untouched.
    for name in ("recent", "held"):
        assert after[name] == before[name]
        assert after[name].purged is None
    assert all(path.exists() for path in held.recording_files + recent.recording_files + mid.recording_files)

    # The audit log: entries older than 200 days gone, except those about the held session.
    async with server.db() as db:
        remaining = set((await db.execute(select(AuditEntry.id))).scalars())
    assert not set(expired_audit) & remaining and set(kept_audit) <= remaining

    # Logged in the audit log, and shown as the last run.
    [entry] = await audit_entries(server, "retention_deleted")
    assert entry.actor_id is None
    assert entry.details["deleted"] == expected and entry.details["held_sessions"] == 1
    assert entry.details["via"] == "api" and entry.details["requested_by"] == school.admin.id
    shown = await admin.json("GET", "/retention")
    assert shown["last_run"]["deleted"] == expected and shown["last_run"]["held_sessions"] == 1
    assert shown["last_run"]["at"].endswith("Z")
    assert {p["kind"]: p["days"] for p in shown["policies"]} == report["days"]

    # The records read back say what was deleted; the recordings list is empty.
    records = await admin.json("GET", f"/sessions/{old.session_id}/records")
    assert records["chat"] == [] and records["recordings"] == [] and records["handouts"] == []
    assert records["attendance"]

    # The share link of the purged recording is withdrawn; the student is told so. The other still plays.
    refused = await student.request("GET", f"/shared/{links['old']}")
    assert refused.status == 410 and "Liên kết đã hết hạn" in (await refused.json())["error"]["message"]
    assert (await student.json("GET", f"/shared/{links['recent']}"))["recordings"]
    [withdrawn] = (await admin.json("GET", f"/sessions/{old.session_id}/shares"))["items"]
    assert withdrawn["revoked_at"]

    # Nothing is left to delete: a second run deletes nothing.
    again = await admin.json("POST", "/retention/run")
    assert again["deleted"] == dict.fromkeys(expected, 0)
    assert again["sessions"] == dict.fromkeys(report["sessions"], 0) and again["held_sessions"] == 1

    # Released, the held session's records go on the next run.
    await admin.json("PUT", f"/sessions/{held.session_id}/legal-hold", json={"hold": False, "reason": None})
    released = await admin.json("POST", "/retention/run")
    assert released["deleted"]["recordings"] == before["held"].recordings
    assert released["deleted"]["chat"] == before["held"].chat and released["held_sessions"] == 0
    assert released["deleted"]["audit"] == 1  # the old entry about it
    assert (await snapshot(server, held.session_id)).recording_files == 0


async def test_attendance_and_participation_events_expire_with_their_own_period(server, school):
    old = await seed_archived_session(server, school, days_ago=400)
    recent = await seed_archived_session(server, school, days_ago=10)
    admin = await server.logged_in(school.admin)
    await admin.json("PUT", "/retention", json={"attendance": 300, "chat": 36500})
    before = await snapshot(server, old.session_id)
    assert before.participation_events > 0 and before.other_events > 0
    kept = await snapshot(server, recent.session_id)

    report = await admin.json("POST", "/retention/run")
    assert report["deleted"]["attendance"] == before.attendance
    assert report["events"]["attendance_deleted"] == before.participation_events
    assert report["deleted"]["chat"] == 0
    after = await snapshot(server, old.session_id)
    # Other events (recording, room ended) and the chat stay.
    assert after.counts() == dict(before.counts(), attendance=0, participation_events=0)
    assert after.purged.keys() == {"attendance", "recordings", "handouts"}  # no recording, no handouts: marked
    assert await snapshot(server, recent.session_id) == kept


def _renders() -> list:
    """The lesson-video renders running as children of this process (the in-process server's)."""
    return [
        child for child in psutil.Process().children(recursive=True) if "recordings.render" in " ".join(child.cmdline())
    ]


async def test_a_lesson_video_being_made_is_cancelled_when_its_recording_expires(server, school, lesson):
    old = await seed_archived_session(server, school, lesson, days_ago=400)
    admin = await server.logged_in(school.admin)
    job = await admin.json("POST", f"/sessions/{old.session_id}/lesson-video", expect=202)
    assert job["state"] == "running"
    await eventually(_renders, 5, "the render process to start")
    assert _renders() and (await admin.json("GET", f"/sessions/{old.session_id}/lesson-video"))["state"] == "running"

    report = await admin.json("POST", "/retention/run")
    assert report["deleted"]["recordings"] == len(old.recording_files)
    # The render was stopped before the files went: no process left, nothing written back, no job.
    assert _renders() == []
    await asyncio.sleep(0.5)  # time for a stopped render to (wrongly) write its file back: nothing to wait on
    assert not (server.settings.recordings_dir / str(old.session_id)).exists()
    assert (await admin.request("GET", f"/sessions/{old.session_id}/lesson-video")).status == 404
    response = await admin.request("POST", f"/sessions/{old.session_id}/lesson-video")
    assert response.status == 409 and (await response.json())["error"]["code"] == "nothing_recorded"


async def test_a_failing_session_does_not_stop_the_others_and_missing_files_are_fine(
    server, school, lesson, monkeypatch
):
    bad = await seed_archived_session(server, school, lesson, days_ago=400)
    good = await seed_archived_session(server, school, lesson, days_ago=400)
    gone = await seed_archived_session(server, school, lesson, days_ago=400)
    for path in gone.recording_files:  # deleted by hand before the run
        path.unlink()
    real_remove = retention._remove

    def remove(paths, folder):
        if folder.name == str(bad.session_id) and folder.parent == server.settings.recordings_dir:
            raise PermissionError(13, "Permission denied", str(folder))
        real_remove(paths, folder)

    monkeypatch.setattr(retention, "_remove", remove)
    bad_before = await snapshot(server, bad.session_id)
    report = await retention.purge_expired(server.db, server.settings)
    assert report.failed_sessions == [bad.session_id]
    assert report.sessions["recordings"] == 2
    for archived in (good, gone):
        after = await snapshot(server, archived.session_id)
        assert after.recordings == after.recording_files == after.chat == 0
    # The failed session keeps everything (its transaction was rolled back) and is not marked.
    assert await snapshot(server, bad.session_id) == bad_before

    monkeypatch.setattr(retention, "_remove", real_remove)
    report = await retention.purge_expired(server.db, server.settings)
    assert report.failed_sessions == [] and report.deleted["recordings"] == bad_before.recordings
    assert (await snapshot(server, bad.session_id)).recording_files == 0


async def test_running_sessions_are_never_touched(server, school):
    """A session without an end counts from its start, unless its room is open on this node."""
    stale = await seed_archived_session(server, school, days_ago=400)
    live = await seed_archived_session(server, school, days_ago=400)
    async with server.db() as db:
        for archived in (stale, live):
            (await db.get(LiveSession, archived.session_id)).ended_at = None
        await db.commit()
    report = await retention.purge_expired(server.db, server.settings, live_sessions={live.session_id})
    assert report.sessions["chat"] == 1
    assert (await snapshot(server, stale.session_id)).chat == 0
    assert (await snapshot(server, live.session_id)).chat > 0


# -- policies and legal holds over HTTP ------------------------------------------------------------------
async def test_policies_defaults_changes_and_validation(server, school):
    admin = await server.logged_in(school.admin)
    shown = await admin.json("GET", "/retention")
    assert shown["last_run"] is None
    assert [(p["kind"], p["days"], p["default_days"], p["updated_by"]) for p in shown["policies"]] == [
        ("recordings", 365, 365, None),
        ("chat", 365, 365, None),
        ("attendance", 1825, 1825, None),
        ("handouts", 365, 365, None),
        ("assessments", 1825, 1825, None),
        ("audit", 1825, 1825, None),
    ]
    for bad in (
        {"chat": 0},
        {"chat": 36501},
        {"chat": "30"},
        {"chat": 30.5},
        {"chat": True},
        {"sms": 30},
        {"chat": 30, "other": 1},
        [],
    ):
        error = await admin.json("PUT", "/retention", expect=400, json=bad)
        assert error["error"]["code"] == "invalid_request", bad
    assert await audit_entries(server, "retention_changed") == []

    shown = await admin.json("PUT", "/retention", json={"chat": 30, "audit": 36500, "recordings": 365})
    policies = {p["kind"]: p for p in shown["policies"]}
    assert policies["chat"]["days"] == 30 and policies["audit"]["days"] == 36500
    assert policies["chat"]["updated_by"] == {"user_id": school.admin.id, "name": school.admin.full_name}
    assert policies["chat"]["updated_at"].endswith("Z")
    assert policies["recordings"]["updated_by"] is None  # unchanged: not written
    [entry] = await audit_entries(server, "retention_changed")
    assert entry.actor_id == school.admin.id
    assert entry.details == {"old": {"chat": 365, "audit": 1825}, "new": {"chat": 30, "audit": 36500}}
    await admin.json("PUT", "/retention", json={"chat": 30})  # no change, nothing audited
    assert len(await audit_entries(server, "retention_changed")) == 1

    teacher = await server.logged_in(school.teacher)
    for method, path in (("GET", "/retention"), ("PUT", "/retention"), ("POST", "/retention/run")):
        error = await teacher.json(method, path, expect=403, json={"chat": 1})
        assert error["error"]["code"] == "forbidden"
    assert (await admin.json("GET", "/retention"))["policies"][1]["days"] == 30


async def test_legal_hold_needs_a_reason_and_is_audited(server, school):
    archived = await seed_archived_session(server, school, days_ago=3)
    admin = await server.logged_in(school.admin)
    path = f"/sessions/{archived.session_id}/legal-hold"
    for bad in (
        {"hold": True},
        {"hold": True, "reason": None},
        {"hold": True, "reason": "  ab  "},
        {"hold": True, "reason": "x" * 501},
        {"hold": "yes", "reason": HOLD_REASON},
        {"reason": HOLD_REASON},
        {"hold": True, "reason": HOLD_REASON, "until": "2030-01-01"},
    ):
        error = await admin.json("PUT", path, expect=400, json=bad)
        assert error["error"]["code"] == "invalid_request", bad
    assert (
        await admin.json("PUT", "/sessions/999999/legal-hold", expect=404, json={"hold": True, "reason": HOLD_REASON})
    )["error"]["code"] == "not_found"
    teacher = await server.logged_in(school.teacher)  # even the session's own teacher
    await teacher.json("PUT", path, expect=403, json={"hold": True, "reason": HOLD_REASON})

    held = await admin.json("PUT", path, json={"hold": True, "reason": f"  {HOLD_REASON} "})
    assert held["legal_hold"] is True and held["legal_hold_reason"] == HOLD_REASON
    assert held["legal_hold_at"].endswith("Z")
    await admin.json("PUT", path, json={"hold": True, "reason": HOLD_REASON})  # the same: no new entry
    released = await admin.json("PUT", path, json={"hold": False, "reason": "Đã kết thúc thanh tra"})
    assert released["legal_hold"] is False and released["legal_hold_reason"] is None
    assert released["legal_hold_by"] is None
    [set_entry] = await audit_entries(server, "legal_hold_set")
    [release_entry] = await audit_entries(server, "legal_hold_released")
    for entry in (set_entry, release_entry):
        assert entry.actor_id == school.admin.id and entry.target == f"session:{archived.session_id}"
    assert set_entry.details["reason"] == HOLD_REASON
    assert release_entry.details == {"reason": "Đã kết thúc thanh tra", "held_for": HOLD_REASON}
    async with server.db() as db:
        session = await db.get(LiveSession, archived.session_id)
        assert session.legal_hold is False and session.legal_hold_by_id is None


# -- the daily job -------------------------------------------------------------------------------------------
async def test_the_daily_job_runs_shortly_after_start(tmp_path, lesson):
    data_dir = tmp_path / "var"
    first = await start_server(make_settings(data_dir, retention_interval_hours=0))
    try:
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "retention"]  # 0: no job
        school = await seed_school(first)
        old = await seed_archived_session(first, school, lesson, days_ago=400)
        recent = await seed_archived_session(first, school, lesson, days_ago=2)
    finally:
        await first.close()
    assert all(path.exists() for path in old.recording_files)

    second = await start_server(make_settings(data_dir, retention_interval_hours=24, retention_start_delay_seconds=0))
    try:

        async def purged() -> bool:
            return (await snapshot(second, old.session_id)).purged is not None

        await eventually(purged, 30, "the retention run at start-up")
        after = await snapshot(second, old.session_id)
        assert after.recordings == after.recording_files == after.chat == 0
        assert all(not path.exists() for path in old.recording_files)
        assert (await snapshot(second, recent.session_id)).recording_files > 0
        [entry] = await audit_entries(second, "retention_deleted")
        assert entry.details["via"] == "daily" and entry.details["deleted"]["recordings"] > 0
        [job] = [t for t in asyncio.all_tasks() if t.get_name() == "retention"]
    finally:
        await second.close()
    assert job.done()  # cancelled on shutdown


async def test_a_failing_run_does_not_stop_the_job_or_the_server(tmp_path, monkeypatch):
    calls = []
    real = retention.purge_expired

    async def flaky(*args, **kwargs):
        calls.append(kwargs.get("via"))
        if len(calls) == 1:
            raise ConnectionRefusedError("the store is away")
        return await real(*args, **kwargs)

    monkeypatch.setattr(retention, "purge_expired", flaky)
    server = await start_server(
        make_settings(tmp_path / "var", retention_interval_hours=0.5 / 3600, retention_start_delay_seconds=0)
    )
    try:

        async def ran_again() -> bool:
            return bool(await audit_entries(server, "retention_deleted"))

        await eventually(ran_again, 30, "a retention run after a failed one")
        assert calls[:2] == ["daily", "daily"]
        assert (await server.person(None).request("GET", server.base_url + "/healthz")).status == 200
    finally:
        await server.close()


# -- the CLI ---------------------------------------------------------------------------------------------------
async def test_cli_purge_and_dry_run(tmp_path, lesson):
    data_dir = tmp_path / "var"
    server = await start_server(make_settings(data_dir))
    try:
        school = await seed_school(server)
        old = await seed_archived_session(server, school, lesson, days_ago=400)
        await add_handout(server, old.session_id)
        before = await snapshot(server, old.session_id)
    finally:
        await server.close()

    dry = run_cli("records", "purge", "--dry-run", data_dir=data_dir)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Dry run: nothing was deleted.")
    assert (
        f"recordings  {before.recordings} recording(s), {before.recording_files} file(s) in 1 session(s)" in dry.stdout
    ), dry.stdout
    assert f"chat        {before.chat} chat message(s)" in dry.stdout
    assert "attendance  0 presence interval(s)" in dry.stdout
    assert "handouts    1 handout(s), 1 file(s) in 1 session(s)" in dry.stdout
    assert "assessments 0 poll/quiz event(s) in 0 session(s) (period 1825 days)" in dry.stdout
    assert all(path.exists() for path in old.recording_files)

    result = run_cli("records", "purge", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Deleted:")
    assert result.stdout.splitlines()[1:] == dry.stdout.splitlines()[1:]
    assert all(not path.exists() for path in old.recording_files)
    assert not (data_dir / "handouts" / str(old.session_id)).exists()

    server = await start_server(make_settings(data_dir))
    try:
        after = await snapshot(server, old.session_id)
        assert after.recordings == after.chat == after.handouts == 0 and after.attendance == before.attendance
        [entry] = await audit_entries(server, "retention_deleted")
        assert entry.details["via"] == "cli"
    finally:
        await server.close()
    again = run_cli("records", "purge", data_dir=data_dir)
    assert "recordings  0 recording(s), 0 file(s) in 0 session(s)" in again.stdout
