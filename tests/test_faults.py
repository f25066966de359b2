"""Faults against a real `liveclass serve` process: what an `ok` acknowledgement promises survives a kill -9
the moment after it. (SIGTERM: tests/test_shutdown_flush.py; several nodes: tests/test_cluster.py.)"""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys

from tests.live import admitted, enter
from tests.test_cli import free_port, wait_until_healthy
from tests.test_shutdown_flush import RemoteServer, seed


async def test_every_acknowledged_message_and_admission_survives_a_kill_right_after(tmp_path):
    data_dir = tmp_path / "var"
    school = await seed(data_dir)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    process = subprocess.Popen([sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port),
                                "--data-dir", str(data_dir)], cwd=tmp_path, env=clean,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remote = RemoteServer(f"http://127.0.0.1:{port}")
    try:
        await wait_until_healthy(remote.base_url, process)
        teacher_person = await remote.logged_in(school.teacher)
        session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]
        teacher = await enter(teacher_person, session_id)
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await remote.logged_in(school.student), session_id)

        # Twenty messages sent at once, each acknowledged; a hand, a lock; then the machine dies.
        answers = await asyncio.gather(*(teacher.ok("chat:send", {"text": f"Câu {i}"}) for i in range(20)))
        await student.ok("hand:raise")
        await teacher.ok("mod:lock", {"what": "chat", "locked": True})
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        await remote.close()

    with sqlite3.connect(data_dir / "liveclass.db") as db:
        stored = {row[0] for row in db.execute("SELECT id FROM chat_messages WHERE session_id = ?", (session_id,))}
        types = [row[0] for row in db.execute("SELECT type FROM session_events WHERE session_id = ?", (session_id,))]
        admitted_rows = db.execute("SELECT COUNT(*) FROM attendance_intervals WHERE session_id = ? AND user_id = ?",
                                   (session_id, school.student.id)).fetchone()[0]
    assert stored == {a["message_id"] for a in answers}  # 20 of 20
    assert {"lobby_admitted", "hand_raised", "lock_changed"} <= set(types)
    assert admitted_rows == 1  # the admitted student is in the attendance, not "absent"
