"""A clean shutdown (SIGTERM) of a real `liveclass serve` tells everyone and writes every record first."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.ports import free_port
from liveclass.db import create_engine, session_factory
from liveclass.models import ChatMessage, LiveSession, SessionEvent
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import RoomEvent
from tests.helpers import Clients, Person, seed_school
from tests.live import LiveClient, admitted, enter
from tests.test_cli import liveclass, wait_until_healthy


class RemoteServer(Clients):
    """What tests.helpers.Person and tests.live.LiveClient need of a server: its address."""

    def __init__(self, base_url: str, db=None):
        self.base_url = base_url
        self.db = db
        self.live_clients: list[LiveClient] = []
        self.people: list[Person] = []

    async def close(self) -> None:
        await self.close_clients()


async def seed(data_dir: Path):
    """The schema (through the CLI, which also makes the secret key) and a school, before the server starts."""
    upgraded = await asyncio.to_thread(liveclass, "db", "upgrade", data_dir=data_dir)
    assert upgraded.returncode == 0, upgraded.stderr
    engine = create_engine(f"sqlite+aiosqlite:///{(data_dir / 'liveclass.db').resolve()}")
    try:
        return await seed_school(RemoteServer("", session_factory(engine)))
    finally:
        await engine.dispose()


async def test_sigterm_tells_everyone_and_flushes_the_last_records(tmp_path):
    data_dir = tmp_path / "var"
    school = await seed(data_dir)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    remote = RemoteServer(f"http://127.0.0.1:{port}")
    try:
        await wait_until_healthy(remote.base_url, process)
        teacher_person = await remote.logged_in(school.teacher)
        session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
        teacher = await enter(teacher_person, session_id)
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await remote.logged_in(school.student), session_id)

        sent = [
            await student.ok("chat:send", {"text": "Em chào cô ạ"}),
            await teacher.ok("chat:send", {"text": "Chào cả lớp, mở sách trang 42."}),
            await student.ok("chat:send", {"text": "Cô ơi em hỏi riêng", "to": teacher.participant_id}),
            await teacher.ok("chat:send", {"text": "Ánh đọc bài nhé", "to": student.participant_id}),
        ]
        await student.ok("hand:raise")
        # At once: these last events are still waiting for the records writer's next round (0.25 s).
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        stopped_in = time.monotonic() - stopped_at
        for client in (teacher, student):
            await client.wait_for("_disconnected", timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        await remote.close()

    assert process.returncode == 0, (process.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    assert stopped_in < 10, f"the shutdown took {stopped_in:.1f} s"  # no waiting out shutdown_timeout
    for client in (teacher, student):
        names = [event for event, _ in client.received]
        assert "room:closing" in names, names
        assert names.index("room:closing") < names.index("_disconnected"), names
        closing = client.events("room:closing")[0]
        assert closing["message"]

    with sqlite3.connect(data_dir / "liveclass.db") as db:
        chat = db.execute(
            "SELECT id, sender_id, recipient_id, text FROM chat_messages WHERE session_id = ? ORDER BY at",
            (session_id,),
        ).fetchall()
        intervals = db.execute(
            "SELECT user_id, room_role, left_at, end_reason FROM attendance_intervals WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        events = db.execute(
            "SELECT type, actor_id, target_id FROM session_events WHERE session_id = ? ORDER BY id", (session_id,)
        ).fetchall()
    assert [row[0] for row in chat] == [m["message_id"] for m in sent]
    assert [row[1:] for row in chat] == [
        (school.student.id, None, "Em chào cô ạ"),
        (school.teacher.id, None, "Chào cả lớp, mở sách trang 42."),
        (school.student.id, school.teacher.id, "Cô ơi em hỏi riêng"),
        (school.teacher.id, school.student.id, "Ánh đọc bài nhé"),
    ]
    assert [(user, role, reason) for user, role, _, reason in intervals] == [
        (school.teacher.id, "teacher", "server_stopped"),
        (school.student.id, "student", "server_stopped"),
    ]
    assert all(left_at is not None for _, _, left_at, _ in intervals)
    assert events[-3:] == [
        ("hand_raised", school.student.id, school.student.id),
        ("participant_left", school.teacher.id, school.teacher.id),
        ("participant_left", school.student.id, school.student.id),
    ]


# -- the writer itself: closing while a batch is being written ------------------------------------------
class SlowCommit(AsyncSession):
    """A store that takes its time to commit (a busy disk, a far database)."""

    committing: asyncio.Event | None = None

    async def commit(self) -> None:
        if SlowCommit.committing is not None:
            SlowCommit.committing.set()
        await asyncio.sleep(0.3)  # the slow commit this store simulates
        await super().commit()


async def test_closing_the_writer_while_it_writes_loses_nothing(server, school):
    async with server.db() as db:
        live = LiveSession(period_id=school.period.id, started_by_id=school.teacher.id, node="test")
        db.add(live)
        await db.commit()
    engine = create_engine(server.settings.effective_database_url)
    SlowCommit.committing = asyncio.Event()
    writer = RecordsWriter(async_sessionmaker(engine, class_=SlowCommit, expire_on_commit=False), interval=0.05)
    try:
        writer.start()
        now = datetime.now(timezone.utc).timestamp()
        first = [
            RoomEvent(
                live.id,
                ev.CHAT_MESSAGE,
                school.teacher.id,
                None,
                {"message_id": f"m-{i}", "text": f"tin {i}", "private": False, "kind": "text"},
                now + i,
            )
            for i in range(3)
        ]
        for event in first:
            writer.emit(event)
        await asyncio.wait_for(SlowCommit.committing.wait(), 5)  # the writer is in the middle of a batch ...
        writer.emit(RoomEvent(live.id, ev.ROOM_ENDED, school.teacher.id, None, {}, now + 10))
        await writer.close()  # ... when the server stops
    finally:
        await engine.dispose()
    async with server.db() as db:
        stored = sorted((await db.execute(select(ChatMessage.id).where(ChatMessage.session_id == live.id))).scalars())
        types = list(
            (
                await db.execute(
                    select(SessionEvent.type).where(SessionEvent.session_id == live.id).order_by(SessionEvent.id)
                )
            ).scalars()
        )
        ended = (await db.get(LiveSession, live.id)).ended_at
    assert stored == ["m-0", "m-1", "m-2"]
    assert types == ["chat_message"] * 3 + ["room_ended"]
    assert ended is not None
