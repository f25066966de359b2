"""Faults against a real `liveclass serve` process: what an `ok` acknowledgement promises survives a kill -9
the moment after it. (SIGTERM: tests/test_shutdown_flush.py; several nodes: tests/test_cluster.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.ports import free_port
from liveclass.models import Period, SessionEvent

from tests.helpers import eventually
from tests.live import admitted, enter
from tests.test_cli import wait_until_healthy
from tests.test_shutdown_flush import RemoteServer, seed


def _serve(data_dir, port, cwd) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    return subprocess.Popen(
        [sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=cwd,
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class ServedClass:
    """A real `liveclass serve` with a running period, its teacher in the room (and a student admitted)."""

    data_dir: Path
    school: Any
    port: int
    process: subprocess.Popen
    remote: RemoteServer
    session_id: int
    teacher_person: Any
    teacher: Any
    student: Any = None

    def restart(self) -> None:
        self.process = _serve(self.data_dir, self.port, self.data_dir.parent)

    async def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        await self.remote.close()


async def _serve_class(tmp_path, with_student: bool = True) -> ServedClass:
    data_dir = tmp_path / "var"
    school = await seed(data_dir)
    port = free_port()
    process = _serve(data_dir, port, tmp_path)
    remote = RemoteServer(f"http://127.0.0.1:{port}")
    try:
        await wait_until_healthy(remote.base_url, process)
        teacher_person = await remote.logged_in(school.teacher)
        session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
        teacher = await enter(teacher_person, session_id)
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await remote.logged_in(school.student), session_id) if with_student else None
    except BaseException:
        process.kill()
        await remote.close()
        raise
    return ServedClass(data_dir, school, port, process, remote, session_id, teacher_person, teacher, student)


async def test_every_acknowledged_message_and_admission_survives_a_kill_right_after(tmp_path):
    served = await _serve_class(tmp_path)
    school, session_id, data_dir = served.school, served.session_id, served.data_dir
    try:
        # Twenty messages sent at once, each acknowledged; a hand, a lock; then the machine dies.
        answers = await asyncio.gather(*(served.teacher.ok("chat:send", {"text": f"Câu {i}"}) for i in range(20)))
        await served.student.ok("hand:raise")
        await served.teacher.ok("mod:lock", {"what": "chat", "locked": True})
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(10)
    finally:
        await served.close()

    with sqlite3.connect(data_dir / "liveclass.db") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM chat_messages WHERE session_id = ?", (session_id,))}
        types = [row[0] for row in db.execute("SELECT type FROM session_events WHERE session_id = ?", (session_id,))]
        admitted_rows = db.execute(
            "SELECT COUNT(*) FROM attendance_intervals WHERE session_id = ? AND user_id = ?",
            (session_id, school.student.id),
        ).fetchone()[0]
    assert stored == {a["message_id"] for a in answers}  # 20 of 20
    assert {"lobby_admitted", "hand_raised", "lock_changed"} <= set(types)
    assert admitted_rows == 1  # the admitted student is in the attendance, not "absent"


async def test_after_a_crash_attendance_closes_at_the_crash_not_at_the_restart(tmp_path):
    served = await _serve_class(tmp_path)
    school, session_id = served.school, served.session_id
    try:
        await asyncio.sleep(3)  # time in class, with heartbeats, before the crash
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(10)
        killed_at = time.time()
        await asyncio.sleep(4)  # the server is down; nobody is in any room
        served.restart()
        await wait_until_healthy(served.remote.base_url, served.process)
        admin = await served.remote.logged_in(school.admin)
        first = await admin.json("GET", f"/sessions/{session_id}/attendance")
        await asyncio.sleep(3)  # time after the restart, in which no minutes may accrue
        again = await admin.json("GET", f"/sessions/{session_id}/attendance")
    finally:
        await served.close()
    for user in (school.teacher, school.student):
        line = next(p for p in first["items"] if p["user_id"] == user.id)
        (interval,) = line["intervals"]
        assert interval["end_reason"] == "server_crashed", line
        left_at = datetime.fromisoformat(interval["left_at"]).timestamp()
        assert killed_at - 5 <= left_at <= killed_at, (left_at, killed_at)
    # No minutes accrue while the server is down or after it restarts.
    minutes = lambda answer: {p["user_id"]: p["minutes_present"] for p in answer["items"]}  # noqa: E731
    assert minutes(first) == minutes(again)


async def _periods(server, school, count: int, *, ended_minutes_ago: float) -> list[Period]:
    now = datetime.now(timezone.utc)
    async with server.db() as db:
        periods = [
            Period(
                class_id=school.school_class.id,
                subject="Toán",
                teacher_id=school.teacher.id,
                starts_at=now - timedelta(minutes=45 + ended_minutes_ago),
                ends_at=now - timedelta(minutes=ended_minutes_ago),
            )
            for _ in range(count)
        ]
        db.add_all(periods)
        await db.commit()
    return periods


async def _end_periods_minutes_ago(server, periods: list[Period], minutes: float) -> None:
    async with server.db() as db:
        for period in periods:
            (await db.get(Period, period.id)).ends_at = datetime.now(timezone.utc) - timedelta(minutes=minutes)
        await db.commit()


async def _running(person, session_id: int) -> bool:
    return (await person.json("GET", f"/sessions/{session_id}"))["running"]


@pytest.mark.settings(auto_end_grace_minutes=0, auto_end_check_seconds=0.5)
async def test_a_period_long_over_with_nobody_in_it_ends_by_itself(server, school):
    # Both periods are on now while they start and the teacher comes into one; then they are long over.
    periods = await _periods(server, school, 2, ended_minutes_ago=-30)
    teacher_person = await server.logged_in(school.teacher)
    empty, busy = [(await teacher_person.json("POST", f"/periods/{p.id}/start", expect=201))["id"] for p in periods]
    teacher = await enter(teacher_person, busy)  # the teacher is still in this one
    await teacher.wait_for("room:state")
    await _end_periods_minutes_ago(server, periods, 5)

    async def empty_ended() -> bool:
        return not await _running(teacher_person, empty)

    await eventually(empty_ended, 10, "the empty period to end by itself (checked every 0.5 s)", step=0.1)
    assert await _running(teacher_person, empty) is False
    assert await _running(teacher_person, busy) is True
    async with server.db() as db:
        ended = (
            await db.execute(
                select(SessionEvent.data).where(SessionEvent.session_id == empty, SessionEvent.type == "room_ended")
            )
        ).scalar_one()
    assert ended == {"reason": "auto_ended"}


@pytest.mark.settings(auto_end_grace_minutes=0.1, auto_end_check_seconds=0.5)
async def test_a_period_started_after_its_end_has_the_grace_for_the_teacher_to_come_in(server, school):
    """A teacher who starts a period after its end (a period made up late) is not told "the period has
    ended" before the page has joined: the grace (6 s here, 15 min by default) counts from the start too."""
    (period,) = await _periods(server, school, 1, ended_minutes_ago=30)
    teacher_person = await server.logged_in(school.teacher)
    session = (await teacher_person.json("POST", f"/periods/{period.id}/start", expect=201))["id"]
    await asyncio.sleep(4.5)  # two checks at least (the node checks with its heartbeat, every 2 s), nobody in it
    assert await _running(teacher_person, session), "ended before its teacher could come in"
    teacher = await enter(teacher_person, session)
    await teacher.wait_for("room:state")
    await teacher.ok("room:leave")  # she leaves: now it is forgotten

    async def ended() -> bool:
        return not await _running(teacher_person, session)

    await eventually(ended, 10, "the period to end by itself once its grace is over and nobody is in it", step=0.1)


@pytest.mark.settings(auto_end_grace_minutes=0, auto_end_check_seconds=0.5, reconnect_grace_seconds=6)
async def test_a_period_over_does_not_end_while_its_teacher_is_reconnecting(server, school):
    """Her connection dropped: her seat is kept for its grace (6 s here) and the period with it."""
    (period,) = await _periods(server, school, 1, ended_minutes_ago=-30)
    teacher_person = await server.logged_in(school.teacher)
    session = (await teacher_person.json("POST", f"/periods/{period.id}/start", expect=201))["id"]
    teacher = await enter(teacher_person, session)
    await teacher.wait_for("room:state")
    await _end_periods_minutes_ago(server, [period], 5)
    await teacher.drop()  # the network, not a goodbye
    await asyncio.sleep(4.5)  # two checks at least (the node checks with its heartbeat, every 2 s)
    assert await _running(teacher_person, session), "ended while its teacher's seat waited for her"

    async def ended() -> bool:
        return not await _running(teacher_person, session)

    await eventually(ended, 10, "the period to end by itself once her seat has expired", step=0.1)


async def test_a_recording_cut_by_a_crash_goes_on_after_the_restart(tmp_path):
    from tests.media.room_peer import RoomPeer

    served = await _serve_class(tmp_path, with_student=False)
    school, session_id, teacher = served.school, served.session_id, served.teacher
    peers = []
    try:
        peers.append(media := RoomPeer(teacher))
        await media.publish("A")
        await teacher.ok("media:state", {"camera": True, "microphone": True})
        await teacher.ok("rec:start")
        await asyncio.sleep(3)  # media recorded before the crash (its recovered file is checked)
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(10)
        await media.close()

        served.restart()
        await wait_until_healthy(served.remote.base_url, served.process)
        teacher_person = await served.remote.logged_in(school.teacher)
        teacher = await enter(teacher_person, session_id)
        state = await teacher.wait_for("room:state")
        assert state["recording"] is True  # the indicator comes from the server's status
        told = await teacher.wait_for("rec:status", lambda d: d["reason"] == "server_restarted")
        assert told["recording"] is True
        peers.append(media := RoomPeer(teacher))
        await media.publish("B")
        await teacher.ok("media:state", {"camera": True, "microphone": True})
        await asyncio.sleep(3)  # media recorded after the restart (over 1 s is checked)
        await teacher.ok("rec:stop")
        recordings = (await teacher_person.json("GET", f"/sessions/{session_id}/recordings"))["items"]
    finally:
        for peer in peers:
            await peer.close()
        await served.close()
    recovered = [r for r in recordings if r["recovered"]]
    fresh = [r for r in recordings if not r["recovered"]]
    assert {r["source"] for r in recovered} >= {"camera"} and {r["source"] for r in fresh} >= {"camera"}, recordings
    assert all(r["duration_ms"] > 1000 for r in fresh), recordings
    with sqlite3.connect(served.data_dir / "liveclass.db") as db:
        started = [
            row[0]
            for row in db.execute(
                "SELECT data FROM session_events WHERE session_id = ? AND type = 'recording_started' ORDER BY id",
                (session_id,),
            )
        ]
    assert len(started) == 2 and "server_restarted" in started[1]
