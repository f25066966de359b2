"""Several nodes (real `liveclass serve` processes, Redis, PostgreSQL): periods placed on different nodes,
the join answer naming the node that hosts the room, and HTTP requests on one node reaching a room on
another."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import aiohttp
import psutil
import pytest
import redis.asyncio as aioredis

from bench.ports import free_port
from tests.cluster import REDIS_URL, Cluster, Node
from tests.helpers import create_postgres_database, eventually
from tests.test_cli import liveclass, wait_until_healthy
from tests.live import admitted, enter
from tests.media.peers import wait_for
from tests.media.room_peer import RoomPeer


@pytest.fixture
async def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    await cluster.close()


async def _class_in_room(teacher_person, student_person, session_id):
    """The teacher enters, the student is admitted, the teacher's camera and voice reach the student."""
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    student = await admitted(teacher, student_person, session_id)
    teacher_media, student_media = RoomPeer(teacher), RoomPeer(student)
    await teacher_media.publish("A")
    await teacher.ok("media:state", {"camera": True, "microphone": True})
    await student_media.subscribe()
    return teacher, student, teacher_media, student_media


async def test_two_periods_on_two_nodes_and_requests_that_cross_nodes(cluster):
    school = await cluster.start(nodes=2)
    node_a, node_b = cluster.nodes
    try:
        # Both periods are started through node A; the second goes to the other, less loaded node.
        teacher = await node_a.logged_in(school.teacher)
        other_teacher = await node_a.logged_in(school.other_teacher)
        first = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
        second = await other_teacher.json("POST", f"/periods/{school.other_period.id}/start", expect=201)
        assert {first["node"], second["node"]} == {node_a.node_id, node_b.node_id}
        on_b = first if first["node"] == node_b.node_id else second

        # /join through node A for node B's session answers node B.
        admin = await node_a.logged_in(school.admin)
        join = await admin.json("POST", f"/sessions/{on_b['id']}/join")
        assert join["connect"]["url"] == node_b.base_url and join["connect"]["node"] == node_b.node_id

        # Each class (teacher and a student, both asking node A) works in its own room.
        student = await node_a.logged_in(school.student)
        other_student = await node_a.logged_in(school.other_student)
        rooms = await asyncio.gather(
            _class_in_room(teacher, student, first["id"]), _class_in_room(other_teacher, other_student, second["id"])
        )
        for (t, s, _, _), session in zip(rooms, (first, second)):
            assert t.join["connect"]["node"] == s.join["connect"]["node"] == session["node"]
            await s.ok("chat:send", {"text": f"Em chào thầy cô (phiên {session['id']})"})
            await t.wait_for("chat:message", lambda m, sid=session["id"]: m["text"].endswith(f"{sid})"))
            await s.ok("hand:raise")
            await t.wait_for("hand:queue", lambda d: len(d["hands"]) == 1)
        for _, _, _, student_media in rooms:
            await wait_for(lambda m=student_media: m.seen("teacher_camera", "A"), 20, "the teacher's camera")
            await wait_for(
                lambda m=student_media: m.audio_frames.get("teacher_audio", 0) > 10, 20, "the teacher's voice"
            )

        # Through node A, a handout reaches node B's room, and an admin's deactivation takes the account
        # out of it at once.
        b_teacher, b_student, _, _ = rooms[0] if first is on_b else rooms[1]
        b_teacher_person = teacher if first is on_b else other_teacher
        b_student_person = student if first is on_b else other_student
        form = aiohttp.FormData()
        form.add_field(
            "file", b"%PDF-1.4\n% phieu bai tap\n", filename="Phiếu bài tập.pdf", content_type="application/pdf"
        )
        handout = await b_teacher_person.json("POST", f"/sessions/{on_b['id']}/handouts", expect=201, data=form)
        assert handout["announced"] is True
        await b_student.wait_for("chat:message", lambda m: m["kind"] == "handout")
        await admin.json("PATCH", f"/users/{b_student_person.user.id}", json={"active": False})
        removed = await b_student.wait_for("you:logged_out")
        assert removed["reason"] == "account_deactivated"
        await b_student.wait_for("_disconnected")
        await b_teacher.wait_for("participant:left", lambda d: d["reason"] == "account_deactivated")

        # The admin sees both nodes live, one session each.
        nodes = (await admin.json("GET", "/nodes"))["items"]
        assert {n["node_id"]: (n["state"], n["sessions"]) for n in nodes} == {
            first["node"]: ("live", [first["id"]]),
            second["node"]: ("live", [second["id"]]),
        }

        # Ending node B's period through node A ends it for the people in it.
        await b_teacher_person.json(
            "POST", f"/periods/{school.period.id if first is on_b else school.other_period.id}/end", expect=200
        )
        await b_teacher.wait_for("room:ended")
        nodes = (await admin.json("GET", "/nodes"))["items"]
        assert on_b["id"] not in [s for n in nodes for s in n["sessions"]]
        for _, _, teacher_media, student_media in rooms:
            await teacher_media.close()
            await student_media.close()
    except BaseException:
        print(cluster.logs())
        raise


async def _end_reasons(admin, session_id: int, user_id: int, expected: list[str]) -> list[str]:
    """The end reasons of the person's attendance intervals, once the records hold `expected` (the
    records writer stores in batches); fails after 10 s."""

    async def as_expected() -> bool:
        attendance = await admin.json("GET", f"/sessions/{session_id}/attendance")
        line = next(p for p in attendance["items"] if p["user_id"] == user_id)
        return [i["end_reason"] for i in line["intervals"]] == expected

    await eventually(as_expected, 10, f"the attendance records to end with {expected}", step=0.2)
    return expected


async def _state_saved(cluster: Cluster, session_id: int, participant_id: str) -> None:
    """Until the room's durable state in Redis (saved every 0.1 s) holds the participant's seat."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:

        async def saved() -> bool:
            raw = await client.get(f"{cluster.prefix}:room:{session_id}")
            return raw is not None and participant_id in raw.decode()

        await eventually(saved, 10, f"the room's saved state to hold {participant_id}")
    finally:
        await client.aclose()


async def _back_in_room(client, session_id, deadline: float):
    """The client reconnects as the web client does: /join (through any live node), then the node it
    names, again every half second until a node takes it (its resume token keeps its seat)."""
    loop = asyncio.get_running_loop()
    while True:
        mark = client.mark()
        try:
            await client.connect(session_id, resume=True)
            return await client.wait_for("room:state", after=mark)
        except Exception:  # noqa: BLE001 - the dead node is still named until its heartbeat expires
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)  # the web client's retry pace


async def test_a_killed_node_s_class_is_back_on_another_node_recording_on(cluster):
    school = await cluster.start(nodes=2)
    try:
        teacher_person = await cluster.front.logged_in(school.teacher)
        student_person = await cluster.front.logged_in(school.student)
        session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
        teacher, student, teacher_media, student_media = await _class_in_room(
            teacher_person, student_person, session["id"]
        )
        doomed = cluster.node(session["node"])
        await wait_for(lambda: student_media.seen("teacher_camera", "A"), 20, "the teacher's camera")
        assert (await teacher.ok("rec:start"))["recording"] is True
        await teacher.ok("chat:send", {"text": "Mở sách trang 42."})
        await student.ok("hand:raise")
        await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"screen": True}})
        await teacher.ok("mod:lock", {"what": "microphones", "locked": True})
        # Media recorded on the doomed node's disk (over 1 s is checked after its recovery); the room state saved.
        await asyncio.sleep(2.5)

        # The machine is lost mid-period.
        cluster.kill(doomed)
        lost_at = asyncio.get_running_loop().time()
        await teacher.wait_for("_disconnected")
        await student.wait_for("_disconnected")
        teacher_media_old, student_media_old = teacher_media, student_media
        await teacher_media_old.close()
        await student_media_old.close()

        # Both come back through /join, on the other node, without the lobby, in the same seats.
        deadline = lost_at + 15
        teacher_state, student_state = await asyncio.gather(
            _back_in_room(teacher, session["id"], deadline), _back_in_room(student, session["id"], deadline)
        )
        survivor = next(n for n in cluster.nodes if n.alive)
        assert teacher.join["connect"]["node"] == student.join["connect"]["node"] == survivor.node_id
        assert not student.events("lobby:waiting")[1:]  # only the first entry waited
        assert student_state["you"]["participant_id"] == student.participant_id
        assert student_state["you"]["permissions"]["screen"] is True
        assert student_state["locks"]["microphones"] is True
        assert [h["participant_id"] for h in student_state["hands"]] == [student.participant_id]
        assert [m["text"] for m in student_state["chat"]] == ["Mở sách trang 42."]
        assert teacher_state["recording"] is True
        notice = await teacher.wait_for("rec:status", lambda d: d["reason"] == "node_lost")
        assert notice["recording"] is True

        # Media flows again: the teacher publishes anew, the student subscribes anew.
        teacher_media, student_media = RoomPeer(teacher), RoomPeer(student)
        await teacher_media.publish("B")
        await teacher.ok("media:state", {"camera": True, "microphone": True})
        await student_media.subscribe()
        await wait_for(lambda: student_media.seen("teacher_camera", "B"), 15, "the teacher's camera after the move")
        back_in = asyncio.get_running_loop().time() - lost_at
        print(f"back with media {back_in:.1f} s after the kill")
        assert back_in < 15
        await asyncio.sleep(2)  # media recorded on the new node (over 1 s is checked below)
        await teacher.ok("room:end")
        await teacher_media.close()
        await student_media.close()

        # The records: the gap closed as node_lost, the dead node's partial recording recovered and listed,
        # and the recording that went on on the new node.
        admin = await cluster.front.logged_in(school.admin)

        async def records_complete():
            attendance = await admin.json("GET", f"/sessions/{session['id']}/attendance")
            recordings = (await admin.json("GET", f"/sessions/{session['id']}/recordings"))["items"]
            return attendance, recordings

        async def both_recordings_listed():
            attendance, recordings = await records_complete()
            return (attendance, recordings) if {r["recovered"] for r in recordings} == {True, False} else None

        attendance, recordings = await eventually(
            both_recordings_listed, 10, "the recovered and the new recordings listed", step=0.2
        )
        line = next(p for p in attendance["items"] if p["user_id"] == school.student.id)
        reasons = [i["end_reason"] for i in line["intervals"]]
        assert reasons[0] == "node_lost" and len(reasons) == 2, line
        recovered = [r for r in recordings if r["recovered"]]
        fresh = [r for r in recordings if not r["recovered"]]
        assert {r["source"] for r in recovered} >= {"camera", "microphone"}, recordings
        assert {r["source"] for r in fresh} >= {"camera", "microphone"}, recordings
        assert all(r["duration_ms"] > 1000 for r in recovered + fresh), recordings
    except BaseException:
        print(cluster.logs())
        raise


async def test_a_drained_node_moves_its_class_and_exits(cluster):
    school = await cluster.start(nodes=2)
    try:
        teacher_person = await cluster.front.logged_in(school.teacher)
        session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
        drained = cluster.node(session["node"])
        other = next(n for n in cluster.nodes if n is not drained)
        teacher = await enter(teacher_person, session["id"])
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await cluster.front.logged_in(school.student), session["id"])
        await teacher.ok("rec:start")
        await student.ok("chat:send", {"text": "Em nộp bài ạ"})

        admin = await other.logged_in(school.admin)
        answer = await admin.json("POST", f"/nodes/{drained.node_id}/drain", expect=202)
        assert answer["node_id"] == drained.node_id and answer["state"] == "draining"
        for client in (teacher, student):
            closing = await client.wait_for("room:closing")
            assert closing["reason"] == "node_moving" and closing["message"]
            await client.wait_for("_disconnected")
        # The drained node exits by itself once its room has moved.
        assert await asyncio.to_thread(drained.process.wait, 30) == 0

        deadline = asyncio.get_running_loop().time() + 15
        teacher_state, student_state = await asyncio.gather(
            _back_in_room(teacher, session["id"], deadline), _back_in_room(student, session["id"], deadline)
        )
        assert teacher.join["connect"]["node"] == student.join["connect"]["node"] == other.node_id
        assert student_state["you"]["participant_id"] == student.participant_id
        assert [m["text"] for m in student_state["chat"]] == ["Em nộp bài ạ"]
        assert teacher_state["recording"] is True
        assert (await teacher.wait_for("rec:status", lambda d: d["reason"] == "node_moved"))["recording"]
        nodes = (await admin.json("GET", "/nodes"))["items"]
        assert [(n["node_id"], n["sessions"]) for n in nodes] == [(other.node_id, [session["id"]])]
        await teacher.ok("room:end")

        assert await _end_reasons(admin, session["id"], school.student.id, ["node_moving", "ended"])
    except BaseException:
        print(cluster.logs())
        raise


async def test_nodes_starting_together_migrate_once(tmp_path):
    """Three nodes of a fresh deployment run the migrations at the same moment: one migrates, the others wait."""
    cluster = Cluster(tmp_path)
    cluster.database = await create_postgres_database()
    try:
        results = await asyncio.gather(
            *[
                asyncio.to_thread(liveclass, "db", "upgrade", data_dir=tmp_path / f"v{i}", env=cluster.env)
                for i in range(3)
            ]
        )
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr[-2000:] for r in results]
    finally:
        await cluster.close()


def _serve_two_workers(cluster: Cluster, tmp_path, port: int, output: int) -> subprocess.Popen:
    """`liveclass serve --workers 2` on the cluster's store and Redis, with no LIVECLASS_ setting of this process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
    command = [sys.executable, "-m", "liveclass.cli", "serve", "--workers", "2", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--data-dir", str(cluster.data_dir)],
        env={**clean, **cluster.env},
        cwd=tmp_path,
        stdout=output,
        stderr=subprocess.STDOUT if output == subprocess.PIPE else subprocess.DEVNULL,
        text=True,
    )


async def test_serve_with_workers_runs_that_many_nodes(tmp_path):
    cluster = Cluster(tmp_path)
    school = await cluster.start(nodes=0)
    port = free_port()
    parent = _serve_two_workers(cluster, tmp_path, port, output=subprocess.PIPE)
    try:
        for worker_port in (port, port + 1):
            await wait_until_healthy(f"http://127.0.0.1:{worker_port}", parent)
        await cluster.wait_for_nodes(2)
        admin = await Node("A", port, parent, tmp_path / "unused").logged_in(school.admin)
        nodes = (await admin.json("GET", "/nodes"))["items"]
        assert sorted(n["node_id"] for n in nodes) == [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"]
        assert {n["state"] for n in nodes} == {"live"}
        await admin.close()
        parent.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(parent.communicate, timeout=30)
        assert parent.returncode == 0, output
    finally:
        if parent.poll() is None:
            parent.kill()
        await cluster.close()


async def test_a_node_cut_off_past_its_ttl_gives_its_moved_class_up(cluster):
    """A node frozen longer than the TTL (an overloaded machine, a lost network) was taken for dead and its
    class moved; when it wakes it closes that room instead of running it twice, and people follow."""
    school = await cluster.start(nodes=2)
    try:
        teacher_person = await cluster.front.logged_in(school.teacher)
        session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
        frozen = cluster.node(session["node"])
        other = next(n for n in cluster.nodes if n is not frozen)
        teacher = await enter(teacher_person, session["id"])
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await cluster.front.logged_in(school.student), session["id"])

        await _state_saved(cluster, session["id"], student.participant_id)
        frozen.process.send_signal(signal.SIGSTOP)
        admin = await other.logged_in(school.admin)
        try:

            async def swept():  # the other node sweeps the dead node's session to itself
                nodes = {n["node_id"]: n for n in (await admin.json("GET", "/nodes"))["items"]}
                moved = nodes[frozen.node_id]["state"] == "dead" and session["id"] in nodes[other.node_id]["sessions"]
                return nodes if moved else None

            nodes = await eventually(swept, 10, "the other node to take the frozen node's session", step=0.1)
            assert session["id"] in nodes[other.node_id]["sessions"], nodes
        finally:
            frozen.process.send_signal(signal.SIGCONT)

        for client in (teacher, student):
            assert (await client.wait_for("room:closing", timeout=15))["reason"] == "node_moving"
            await client.wait_for("_disconnected")
        deadline = asyncio.get_running_loop().time() + 15
        _, student_state = await asyncio.gather(
            _back_in_room(teacher, session["id"], deadline), _back_in_room(student, session["id"], deadline)
        )
        assert student.join["connect"]["node"] == other.node_id
        assert student_state["you"]["participant_id"] == student.participant_id
        nodes = {n["node_id"]: n for n in (await admin.json("GET", "/nodes"))["items"]}
        assert nodes[frozen.node_id]["state"] == "live" and nodes[frozen.node_id]["sessions"] == []
        assert "closing it here" in frozen.log.read_text()
    except BaseException:
        print(cluster.logs())
        raise


async def test_a_node_restarted_at_once_under_its_id_takes_its_class_back_as_lost(cluster):
    """A worker killed and restarted within the TTL (by `serve --workers` or systemd's Restart=) is the same
    node id again: it takes its sessions back, and the records show the gap as node_lost."""
    school = await cluster.start(nodes=1)
    try:
        teacher_person = await cluster.front.logged_in(school.teacher)
        session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
        teacher = await enter(teacher_person, session["id"])
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await cluster.front.logged_in(school.student), session["id"])
        await _state_saved(cluster, session["id"], student.participant_id)
        old = cluster.nodes[0]
        cluster.kill(old)
        new = cluster.start_node(port=old.port)
        await wait_until_healthy(new.base_url, new.process)
        deadline = asyncio.get_running_loop().time() + 15
        _, student_state = await asyncio.gather(
            _back_in_room(teacher, session["id"], deadline), _back_in_room(student, session["id"], deadline)
        )
        assert student_state["you"]["participant_id"] == student.participant_id
        await teacher.ok("room:end")
        admin = await cluster.front.logged_in(school.admin)
        assert await _end_reasons(admin, session["id"], school.student.id, ["node_lost", "ended"])
    except BaseException:
        print(cluster.logs())
        raise


async def test_when_redis_forgets_everything_the_classes_go_on(cluster):
    """Redis restarted empty (it keeps nothing on disk): the nodes register again, claim their rooms back
    and save their states again; nobody in a class notices."""
    school = await cluster.start(nodes=2)
    try:
        teacher_person = await cluster.front.logged_in(school.teacher)
        session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
        teacher = await enter(teacher_person, session["id"])
        await teacher.wait_for("room:state")
        student = await admitted(teacher, await cluster.front.logged_in(school.student), session["id"])
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(f"{cluster.prefix}:*")]
            await client.delete(*keys)
            admin = await cluster.front.logged_in(school.admin)

            async def registered_again():
                nodes = {n["node_id"]: n for n in (await admin.json("GET", "/nodes"))["items"]}
                saved = await client.exists(f"{cluster.prefix}:room:{session['id']}")
                claimed = nodes.get(session["node"], {}).get("sessions") == [session["id"]]
                return nodes if len(nodes) == 2 and claimed and saved else None

            nodes = await eventually(registered_again, 6, "the nodes to register and save the room again", step=0.1)
            assert nodes[session["node"]]["sessions"] == [session["id"]], nodes
        finally:
            await client.aclose()
        await student.ok("chat:send", {"text": "Em vẫn ở trong lớp ạ"})
        await teacher.wait_for("chat:message", lambda m: m["text"] == "Em vẫn ở trong lớp ạ")
        assert not teacher.events("room:closing") and not student.events("room:closing")
        join = await (await cluster.front.logged_in(school.observer)).json("POST", f"/sessions/{session['id']}/join")
        assert join["connect"]["node"] == session["node"]
    except BaseException:
        print(cluster.logs())
        raise


async def test_workers_stop_when_their_parent_is_killed(tmp_path):
    """kill -9 of `serve --workers`: its workers drain and exit instead of running on unsupervised."""
    cluster = Cluster(tmp_path)
    await cluster.start(nodes=0)
    port = free_port()
    parent = _serve_two_workers(cluster, tmp_path, port, output=subprocess.DEVNULL)
    workers: list[psutil.Process] = []
    try:
        for worker_port in (port, port + 1):
            await wait_until_healthy(f"http://127.0.0.1:{worker_port}", parent)
        workers = psutil.Process(parent.pid).children()
        assert len(workers) == 2
        parent.kill()
        parent.wait(10)
        gone, alive = await asyncio.to_thread(psutil.wait_procs, workers, 30)
        assert not alive and len(gone) == 2
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()
        if parent.poll() is None:
            parent.kill()
        await cluster.close()
