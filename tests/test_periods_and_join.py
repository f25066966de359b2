"""Periods, starting and ending them, and the join token, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import socketio
from sqlalchemy.exc import IntegrityError

from liveclass.db import create_engine, session_factory, upgrade_database
from liveclass.models import LiveSession, Period, SchoolClass
from signaling.join_token import issue_join_token
from tests.helpers import add_user, seed_school


def _at(hours: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


async def connect_live(server, token, session_id=None):
    """Connect a real Socket.IO client (msgpack) to /live; returns (client, None) or (None, error data)."""
    client = socketio.AsyncClient(serializer="msgpack", reconnection=False)
    refused = asyncio.get_running_loop().create_future()

    @client.on("connect_error", namespace="/live")
    async def on_error(data):
        if not refused.done():
            refused.set_result(data.get("data", data) if isinstance(data, dict) else data)

    auth = {"token": token} if session_id is None else {"token": token, "session_id": session_id}
    try:
        await client.connect(
            server.base_url,
            namespaces=["/live"],
            auth=auth,
            transports=["websocket"],
            socketio_path="/socket.io/",
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        await client.disconnect()
        return None, await asyncio.wait_for(refused, 5)
    return client, None


async def test_teacher_schedules_starts_and_ends_a_period(any_store_server):
    school = await seed_school(any_store_server)
    teacher = await any_store_server.logged_in(school.teacher)
    created = await teacher.json(
        "POST",
        "/periods",
        expect=201,
        json={
            "class_id": school.school_class.id,
            "subject": "Toán",
            "starts_at": "2026-11-24T08:00:00+07:00",
            "ends_at": "2026-11-24T08:45:00+07:00",
        },
    )
    assert created["teacher_id"] == school.teacher.id and created["class_name"] == "10A1"
    assert created["starts_at"].startswith("2026-11-24T01:00:00")  # stored in UTC
    student = await any_store_server.logged_in(school.student)
    listed = await student.json("GET", "/periods?from=2026-11-24T00:00:00%2B07:00&to=2026-11-25T00:00:00%2B07:00")
    assert [p["id"] for p in listed["items"]] == [created["id"]]

    started = await teacher.json("POST", f"/periods/{created['id']}/start", expect=201)
    again = await teacher.json("POST", f"/periods/{created['id']}/start", expect=200)
    assert started["id"] == again["id"] and started["running"]
    seen = await student.json("GET", f"/periods/{created['id']}")
    assert seen["live_session"]["id"] == started["id"] and seen["taught_until"] is None
    ended = await teacher.json("POST", f"/periods/{created['id']}/end")
    assert ended["running"] is False and ended["ended_at"]
    # The lists say the period was taught (the teacher's page shows "Đã dạy", not "Bắt đầu tiết học").
    listed = await teacher.json("GET", "/periods?from=2026-11-24T00:00:00%2B07:00&to=2026-11-25T00:00:00%2B07:00")
    (item,) = listed["items"]
    assert item["live_session"] is None and item["taught_until"] is not None
    assert (await student.json("GET", f"/periods/{created['id']}"))["taught_until"] == item["taught_until"]
    await teacher.json("POST", f"/periods/{created['id']}/end", expect=409)
    join = await student.json("POST", f"/sessions/{started['id']}/join", expect=409)
    assert join["error"]["code"] == "session_not_running"


async def test_a_period_started_by_many_requests_at_once_has_one_session_and_still_ends(any_store_server):
    """Ten "start" clicks at the same moment (a teacher double-clicking on two devices, a retrying
    client): one session, the others answered with it; the period then ends normally."""
    school = await seed_school(any_store_server)
    teachers = [await any_store_server.logged_in(school.teacher) for _ in range(10)]
    path = f"/periods/{school.period.id}/start"
    answers = await asyncio.gather(*(t.request("POST", path) for t in teachers))
    statuses = sorted(a.status for a in answers)
    bodies = [await a.json() for a in answers]
    assert all(status in (200, 201) for status in statuses), bodies
    assert statuses.count(201) == 1
    assert len({b["id"] for b in bodies}) == 1  # everyone got the same session
    ended = await teachers[0].json("POST", f"/periods/{school.period.id}/end")
    assert ended["running"] is False
    assert (await teachers[1].json("GET", f"/periods/{school.period.id}"))["live_session"] is None


@pytest.mark.parametrize(
    "body,code",
    [
        ({"ends_at": "2026-11-24T07:00:00+07:00"}, "invalid_times"),
        ({"starts_at": "2026-11-24T08:00:00"}, "invalid_request"),  # no offset
        ({"class_id": 999999}, "unknown_class"),
        ({"teacher_id": "student"}, "not_a_teacher"),
        ({"subject": ""}, "invalid_request"),
        ({"mode": "offline"}, "invalid_request"),
    ],
)
async def test_bad_periods_are_refused_and_nothing_is_created(server, body, code):
    school = await seed_school(server)
    admin = await server.logged_in(school.admin)
    payload = {
        "class_id": school.school_class.id,
        "subject": "Toán",
        "teacher_id": school.teacher.id,
        "starts_at": "2026-11-24T08:00:00+07:00",
        "ends_at": "2026-11-24T08:45:00+07:00",
    } | body
    if payload["teacher_id"] == "student":
        payload["teacher_id"] = school.student.id
    before = await admin.json("GET", "/periods")
    refused = await admin.json("POST", "/periods", expect=400, json=payload)
    assert refused["error"]["code"] == code
    assert await admin.json("GET", "/periods") == before


async def test_teacher_cannot_schedule_for_a_class_they_do_not_teach(server):
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)
    refused = await teacher.json(
        "POST",
        "/periods",
        expect=403,
        json={"class_id": school.other_class.id, "subject": "Văn", "starts_at": _at(1), "ends_at": _at(2)},
    )
    assert refused["error"]["code"] == "forbidden"


async def test_join_answers_role_where_to_connect_and_ice_servers(any_store_server):
    school = await seed_school(any_store_server)
    teacher = await any_store_server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    expected_roles = {"teacher": "teacher", "student": "student", "admin": "observer", "observer": "observer"}
    for role, room_role in expected_roles.items():
        person = teacher if role == "teacher" else await any_store_server.logged_in(getattr(school, role))
        join = await person.json("POST", f"/sessions/{session['id']}/join")
        assert join["room_role"] == room_role
        assert join["connect"] == {
            "url": any_store_server.base_url,
            "socketio_path": "/socket.io/",
            "namespace": "/live",
            "node": any_store_server.settings.effective_node_id,
        }
        assert join["ice_servers"] == [] and 0 < join["expires_in"] <= 60
        claims = jwt.decode(join["token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 60 and claims["sid"] == session["id"]


async def test_parent_joins_as_guest_only_when_parents_are_invited(server):
    school = await seed_school(server, parents_invited=True)
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    parent = await server.logged_in(school.parent)
    join = await parent.json("POST", f"/sessions/{session['id']}/join")
    assert join["room_role"] == "guest"
    await teacher.json("PATCH", f"/periods/{school.period.id}", json={"parents_invited": False})
    # Not invited any more: the period is hidden from the parent and joining is refused.
    await parent.json("POST", f"/sessions/{session['id']}/join", expect=403)


async def test_join_token_is_single_use(any_store_server):
    school = await seed_school(any_store_server)
    teacher = await any_store_server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    student = await any_store_server.logged_in(school.student)
    join = await student.json("POST", f"/sessions/{session['id']}/join")
    client, error = await connect_live(any_store_server, join["token"])
    assert error is None and client.connected
    replay, error = await connect_live(any_store_server, join["token"])
    assert replay is None and error["code"] == "token_reused" and error["message"], error
    await client.disconnect()


async def test_expired_forged_and_missing_tokens_are_refused_with_the_reason(server):
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    expired, _ = issue_join_token(
        server.settings.secret_key,
        user_id=school.student.id,
        session_id=session["id"],
        room_role="student",
        name="x",
        personal_id="x",
        on_roster=True,
        ttl_seconds=-5,
    )
    forged, _ = issue_join_token(
        "another-secret-" * 3,
        user_id=school.student.id,
        session_id=session["id"],
        room_role="teacher",
        name="x",
        personal_id="x",
        on_roster=True,
    )
    for token, code in (
        (expired, "token_expired"),
        (forged, "token_invalid"),
        (None, "token_missing"),
        ("garbage", "token_invalid"),
    ):
        client, error = await connect_live(server, token)
        assert client is None and error["code"] == code, (token, error)


async def test_token_presented_for_another_session_is_refused(server):
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    join = await teacher.json("POST", f"/sessions/{session['id']}/join")
    client, error = await connect_live(server, join["token"], session_id=session["id"] + 1)
    assert client is None and error["code"] == "token_wrong_session"
    # Refused before it was spent: the rightful use still works.
    client, error = await connect_live(server, join["token"], session_id=session["id"])
    assert error is None
    await client.disconnect()


async def test_ending_the_period_tells_everyone_and_bars_new_joins(server):
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    student = await server.logged_in(school.student)
    client, _ = await connect_live(server, (await student.json("POST", f"/sessions/{session['id']}/join"))["token"])
    ended = asyncio.get_running_loop().create_future()
    client.on("room:ended", lambda data: ended.set_result(data), namespace="/live")
    late_token = (await student.json("POST", f"/sessions/{session['id']}/join"))["token"]
    await teacher.json("POST", f"/periods/{school.period.id}/end")
    assert (await asyncio.wait_for(ended, 5))["session_id"] == session["id"]
    late, error = await connect_live(server, late_token)
    assert late is None and error["code"] == "session_ended"
    await client.disconnect()


async def test_live_socket_from_a_foreign_web_origin_is_refused(server):
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    join = await teacher.json("POST", f"/sessions/{session['id']}/join")
    client = socketio.AsyncClient(serializer="msgpack", reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            server.base_url,
            namespaces=["/live"],
            auth={"token": join["token"]},
            transports=["websocket"],
            headers={"Origin": "https://evil.example"},
            wait_timeout=5,
        )
    await client.disconnect()
    # The same token from the server's own origin still works: the refusal did not spend it.
    same_origin, error = await connect_live(server, join["token"])
    assert error is None
    await same_origin.disconnect()


async def test_the_upgrade_ends_duplicate_running_sessions_then_the_store_refuses_new_ones(tmp_path, store_url):
    """A store written before migration 0005 may hold two running sessions of one period (the race
    above): the upgrade ends all but the newest (at their own start) instead of failing, and from then
    on the store itself refuses a second running session."""
    url = store_url or f"sqlite+aiosqlite:///{tmp_path}/before.db"
    await asyncio.to_thread(upgrade_database, url, "0004")
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db:
            teacher = await add_user(db, "teacher", "Nguyễn Thị Hà")
            school_class = SchoolClass(name="10A1", school_year="2026-2027")
            db.add(school_class)
            await db.flush()
            now = datetime.now(timezone.utc)
            period = Period(
                class_id=school_class.id,
                subject="Toán",
                teacher_id=teacher.id,
                starts_at=now,
                ends_at=now + timedelta(minutes=45),
            )
            db.add(period)
            await db.flush()
            older, newer = (
                LiveSession(
                    period_id=period.id, started_by_id=teacher.id, node="node-1", started_at=now + timedelta(seconds=s)
                )
                for s in (0, 1)
            )
            db.add_all([older, newer])
            await db.commit()
            ids, period_id, teacher_id = (older.id, newer.id), period.id, teacher.id

        await asyncio.to_thread(upgrade_database, url)

        async with session_factory(engine)() as db:
            older, newer = [await db.get(LiveSession, i) for i in ids]
            assert older.ended_at == older.started_at and newer.ended_at is None
            db.add(LiveSession(period_id=period_id, started_by_id=teacher_id, node="node-1"))
            with pytest.raises(IntegrityError):
                await db.commit()
    finally:
        await engine.dispose()
