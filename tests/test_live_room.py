"""The live room as teacher, students and observers live it, with real Socket.IO clients."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from liveclass.models import AttendanceInterval, ChatMessage, SessionEvent
from tests.helpers import add_user, eventually
from tests.live import LiveClient, RefusedError, admitted, enter


async def test_student_arriving_before_the_teacher_waits_then_is_admitted(server, school):
    teacher_person = await server.logged_in(school.teacher)
    session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
    student = await enter(await server.logged_in(school.student), session["id"])
    waiting = await student.wait_for("lobby:waiting")
    assert waiting["teacher_present"] is False
    assert await student.refused("chat:send", {"text": "xin chào"}) == "not_admitted"

    teacher = await enter(teacher_person, session["id"])
    state = await teacher.wait_for("room:state")
    assert [(e["name"], e["on_roster"], e["personal_id"]) for e in state["lobby"]] == [
        ("Phạm Ngọc Ánh", True, school.student.personal_id)
    ]
    await student.wait_for("lobby:waiting", lambda d: d["teacher_present"] is True)

    await teacher.ok("lobby:admit", {"participant_ids": [state["lobby"][0]["participant_id"]]})
    assert (await student.wait_for("lobby:admitted"))["admitted_by"] == "Nguyễn Thị Hà"
    student_state = await student.wait_for("room:state")
    assert {p["role"] for p in student_state["participants"]} == {"teacher", "student"}
    joined = await teacher.wait_for("participant:joined")
    assert joined["participant"]["name"] == "Phạm Ngọc Ánh"
    await teacher.wait_for("lobby:updated", lambda d: d["lobby"] == [])
    await student.close()
    await teacher.close()


async def test_admit_all_and_deny_with_reason(server, school, period):
    session_id, teacher = period
    async with server.db() as db:
        more = [await add_user(db, "student", f"Học Sinh {i}") for i in range(3)]
        await db.commit()
    # Enroll them so they may join.
    admin = await server.logged_in(school.admin)
    for user in more:
        await admin.json("PUT", f"/classes/{school.school_class.id}/students/{user.id}")
    clients = [await enter(await server.logged_in(u), session_id) for u in more]
    lobby = (await teacher.wait_for("lobby:updated", lambda d: len(d["lobby"]) == 3))["lobby"]
    assert [e["name"] for e in lobby] == ["Học Sinh 0", "Học Sinh 1", "Học Sinh 2"]  # in order of arrival

    denied = await teacher.ok("lobby:deny", {"participant_ids": [lobby[0]["participant_id"]], "reason": "Sai lớp"})
    assert denied["denied"] == [lobby[0]["participant_id"]]
    assert (await clients[0].wait_for("lobby:denied"))["reason"] == "Sai lớp"
    await clients[0].wait_for("_disconnected")
    await teacher.ok("lobby:admit", {"all": True})
    for client in clients[1:]:
        await client.wait_for("lobby:admitted")
    # The denied student may ask again and waits in the lobby again.
    again = await enter(clients[0].person, session_id)
    await again.wait_for("lobby:waiting")
    await teacher.wait_for("lobby:updated", lambda d: [e["name"] for e in d["lobby"]] == ["Học Sinh 0"])
    assert await teacher.refused("lobby:admit", {"participant_ids": ["nobody"]}) == "not_in_lobby"
    assert await teacher.refused("lobby:admit", {}) == "invalid_payload"


async def test_locked_room_refuses_new_arrivals(server, school, period):
    session_id, teacher = period
    await teacher.ok("mod:lock", {"locked": True})
    with pytest.raises(RefusedError) as refused:
        await enter(await server.logged_in(school.student), session_id)
    assert refused.value.code == "room_locked"
    # An observer still enters (visits are not blocked by the lock).
    observer = await enter(await server.logged_in(school.observer), session_id)
    await observer.wait_for("room:state")
    await teacher.ok("mod:lock", {"locked": False})
    student = await enter(await server.logged_in(school.student), session_id)
    await student.wait_for("lobby:waiting")


async def test_observer_enters_silently(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    observer = await enter(await server.logged_in(school.observer), session_id)
    state = await observer.wait_for("room:state")
    assert state["you"]["role"] == "observer"
    joined = await teacher.wait_for("participant:joined", lambda d: d["participant"]["role"] == "observer")
    assert joined["participant"]["name"] == "Hoàng Hiệu Trưởng"
    # Students are not told about the observer (room:sync's answer comes after any event the arrival sent the
    # student), and do not see one in a fresh snapshot either.
    resync = await student.ok("room:sync")
    assert not [d for d in student.events("participant:joined") if d["participant"]["role"] == "observer"]
    assert {p["role"] for p in resync["participants"]} == {"teacher", "student"}
    assert await observer.refused("chat:send", {"text": "chào"}) == "forbidden"
    teacher_pid = state["participants"][0]["participant_id"]
    await observer.ok("chat:send", {"text": "Tiết học tốt.", "to": teacher_pid})
    assert await observer.refused("hand:raise") == "forbidden"


async def test_reconnect_within_grace_keeps_the_seat(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await student.drop()
    update = await teacher.wait_for("participant:updated", lambda d: d["participant"]["connection"] == "reconnecting")
    assert update["participant"]["name"] == "Phạm Ngọc Ánh"
    back = LiveClient(student.person)
    back.resume_token = student.resume_token
    await back.connect(session_id, resume=True)
    state = await back.wait_for("room:state")  # straight into the room, no lobby
    assert state["you"]["participant_id"] == student.participant_id
    assert not back.events("lobby:waiting")
    await teacher.wait_for("participant:updated", lambda d: d["participant"]["connection"] == "connected")

    async def both_intervals():
        async with server.db() as db:
            intervals = (
                (
                    await db.execute(
                        select(AttendanceInterval)
                        .where(AttendanceInterval.user_id == school.student.id)
                        .order_by(AttendanceInterval.id)
                    )
                )
                .scalars()
                .all()
            )
        return intervals if len(intervals) >= 2 else None

    intervals = await eventually(both_intervals, 10, "the records writer (every 0.25 s) to write the second interval")
    assert [i.end_reason for i in intervals] == ["dropped", None]
    assert intervals[0].left_at <= intervals[1].joined_at


@pytest.mark.settings(reconnect_grace_seconds=0.5)
async def test_after_the_grace_period_the_student_has_left(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await student.drop()
    left = await teacher.wait_for("participant:left")
    assert left["reason"] == "grace_expired"
    back = LiveClient(student.person)
    back.resume_token = student.resume_token
    await back.connect(session_id, resume=True)
    await back.wait_for("lobby:waiting")  # the seat is gone: through the lobby again


async def test_a_second_connection_of_the_same_account_replaces_the_first(server, school, period):
    session_id, teacher = period
    first = await admitted(teacher, await server.logged_in(school.student), session_id)
    second = await enter(await server.logged_in(school.student), session_id)  # another device, no resume token
    replaced = await first.wait_for("you:replaced")
    assert replaced["reason"] == "signed_in_elsewhere"
    await first.wait_for("_disconnected")
    await second.wait_for("lobby:waiting")  # without the seat's resume token: the lobby again


async def test_logging_out_leaves_the_room_at_once(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await student.person.json("POST", "/auth/logout")
    await student.wait_for("you:logged_out")
    left = await teacher.wait_for("participant:left")
    assert left["reason"] == "logged_out"


async def test_chat_public_private_limits_and_deletion(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    teacher_pid = teacher.participant_id
    sent = await student.ok("chat:send", {"text": "  Em chào cô ạ  "})
    message = await teacher.wait_for("chat:message", lambda m: m["message_id"] == sent["message_id"])
    assert message["text"] == "Em chào cô ạ" and message["to"] is None and message["from"]["role"] == "student"
    await student.ok("chat:send", {"text": "Cô ơi em hỏi riêng", "to": teacher_pid})
    private = await teacher.wait_for("chat:message", lambda m: m["to"] is not None)
    assert private["to"]["participant_id"] == teacher_pid
    assert await student.refused("chat:send", {"text": "x" * 2001}) == "message_too_long"
    assert await student.refused("chat:send", {"text": "   "}) == "empty_message"
    assert await student.refused("chat:send", {"text": 5}) == "invalid_payload"
    await student.ok("chat:send", {"text": "x" * 2000})

    await teacher.ok("chat:delete", {"message_id": sent["message_id"]})
    deleted = await student.wait_for("chat:deleted")
    assert deleted == {"message_id": sent["message_id"], "deleted_by": "Nguyễn Thị Hà"}
    assert await student.refused("chat:delete", {"message_id": sent["message_id"]}) == "forbidden"
    # A late joiner's history has the deleted message marked deleted, without its text.
    observer = await enter(await server.logged_in(school.observer), session_id)
    history = (await observer.wait_for("room:state"))["chat"]
    first = next(m for m in history if m["message_id"] == sent["message_id"])
    assert first["deleted"] is True and first["text"] == ""
    assert all(m["to"] is None for m in history)  # others' private messages are not shown to an observer

    async def stored_deletion():
        async with server.db() as db:
            stored = (await db.execute(select(ChatMessage).where(ChatMessage.id == sent["message_id"]))).scalar_one()
        return stored if stored.deleted_at else None

    stored = await eventually(stored_deletion, 10, "the records writer to write the deletion")
    assert stored.text == "Em chào cô ạ" and stored.deleted_by_id == school.teacher.id and stored.deleted_at


async def test_chat_rate_limit_tells_when_to_retry(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    for i in range(5):
        await student.ok("chat:send", {"text": f"tin {i}"})
    answer = await student.call("chat:send", {"text": "tin 6"})
    assert answer["ok"] is False and answer["error"]["code"] == "rate_limited"
    assert 0 < answer["error"]["retry_after"] <= 10


async def test_chat_lock_and_per_student_chat_mute(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await teacher.ok("mod:lock", {"what": "chat", "locked": True})
    assert await student.refused("chat:send", {"text": "a"}) == "chat_locked"
    await student.ok("chat:send", {"text": "Cô ơi", "to": teacher.participant_id})  # the teacher is still reachable
    await teacher.ok("mod:lock", {"what": "chat", "locked": False})
    await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"chat": False}})
    assert (await student.wait_for("you:permissions"))["permissions"]["chat"] is False
    assert await student.refused("chat:send", {"text": "a"}) == "chat_muted"
    assert await student.refused("chat:send", {"text": "a", "to": teacher.participant_id}) == "chat_muted"


async def test_hand_queue_is_ordered_by_time_raised(server, school, period):
    session_id, teacher = period
    async with server.db() as db:
        huy = await add_user(db, "student", "Trần Gia Huy")
        await db.commit()
    admin = await server.logged_in(school.admin)
    await admin.json("PUT", f"/classes/{school.school_class.id}/students/{huy.id}")
    anh = await admitted(teacher, await server.logged_in(school.student), session_id)
    huy_client = await admitted(teacher, await server.logged_in(huy), session_id)
    assert await anh.ok("hand:raise") == {"position": 1}
    assert await huy_client.ok("hand:raise") == {"position": 2}
    assert await anh.ok("hand:raise") == {"position": 1}  # raising again keeps the place
    queue = await teacher.wait_for("hand:queue", lambda d: len(d["hands"]) == 2)
    assert [(h["name"], h["position"]) for h in queue["hands"]] == [("Phạm Ngọc Ánh", 1), ("Trần Gia Huy", 2)]
    assert await huy_client.refused("hand:lower", {"participant_id": anh.participant_id}) == "forbidden"
    mark = huy_client.mark()
    await teacher.ok("hand:lower", {"participant_id": anh.participant_id})
    queue = await huy_client.wait_for("hand:queue", lambda d: len(d["hands"]) == 1, after=mark)
    assert queue["hands"][0]["position"] == 1 and queue["hands"][0]["name"] == "Trần Gia Huy"
    await anh.ok("hand:raise")
    await teacher.ok("hand:lower", {"all": True})
    await anh.wait_for("hand:queue", lambda d: d["hands"] == [])


async def test_mute_locks_permits_and_screen_share(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await student.ok("media:state", {"microphone": True, "camera": True})
    updated = await teacher.wait_for("participant:updated", lambda d: d["participant"]["media"]["microphone"])
    assert updated["participant"]["media"]["camera"] is True
    await teacher.ok("mod:mute", {"participant_id": student.participant_id, "source": "microphone"})
    assert (await student.wait_for("you:muted"))["source"] == "microphone"

    await teacher.ok("mod:lock", {"what": "microphones", "locked": True})
    assert await student.refused("media:state", {"microphone": True}) == "not_permitted"
    # The teacher gives this student the floor although microphones are locked ...
    await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"microphone": True}})
    await student.ok("media:state", {"microphone": True})
    # ... and locking again takes it back at once, on the server.
    mark = student.mark()
    await teacher.ok("mod:lock", {"what": "microphones", "locked": True})  # already locked: nothing changes
    await teacher.ok("mod:lock", {"what": "microphones", "locked": False})
    await teacher.ok("mod:lock", {"what": "microphones", "locked": True})
    await student.wait_for("you:muted", after=mark)
    assert await student.refused("media:state", {"microphone": True}) == "not_permitted"

    assert await student.refused("media:state", {"screen": True}) == "not_permitted"
    await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"screen": True}})
    await student.ok("media:state", {"screen": True})
    await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"screen": False}})
    muted = await student.wait_for("you:muted", lambda d: d["source"] == "screen")
    assert muted["by"] == "Nguyễn Thị Hà"
    assert (await student.ok("room:sync"))["you"]["media"]["screen"] is False


async def test_kicked_student_cannot_come_back_without_the_teacher(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await teacher.ok("mod:kick", {"participant_id": student.participant_id, "reason": "Nói chuyện riêng"})
    kicked = await student.wait_for("you:kicked")
    assert kicked["reason"] == "Nói chuyện riêng"
    await student.wait_for("_disconnected")
    left = await teacher.wait_for("participant:left")
    assert left["reason"] == "kicked"
    # Coming back with the old resume token does not skip the lobby, and the teacher sees who it is.
    back = LiveClient(student.person)
    back.resume_token = student.resume_token
    mark = teacher.mark()
    await back.connect(session_id, resume=True)
    await back.wait_for("lobby:waiting")
    lobby = await teacher.wait_for("lobby:updated", lambda d: len(d["lobby"]) == 1, after=mark)
    assert lobby["lobby"][0]["was_removed"] is True
    await teacher.ok("lobby:admit", {"all": True})
    await back.wait_for("room:state")
    assert await teacher.refused("mod:kick", {"participant_id": teacher.participant_id}) == "forbidden"


async def test_teacher_ends_the_period_for_everyone(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    assert await student.refused("room:end") == "forbidden"
    await teacher.ok("room:end")
    ended = await student.wait_for("room:ended")
    assert ended["ended_by"] == "Nguyễn Thị Hà"
    await student.wait_for("_disconnected")

    async def stored_types():
        async with server.db() as db:
            types = (
                (
                    await db.execute(
                        select(SessionEvent.type).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        return types if "room_ended" in types else None

    types = await eventually(stored_types, 10, "the records writer to write room_ended")
    refused = await student.person.json("POST", f"/sessions/{session_id}/join", expect=409)
    assert refused["error"]["code"] == "session_not_running"
    assert types[-1] == "room_ended"


async def test_bad_requests_get_answers_and_the_connection_lives_on(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    assert await student.refused("no:such:event", {}) == "unknown_event"
    assert await student.refused("chat:send", "not a map") == "invalid_payload"
    assert await student.refused("chat:send", {"text": "a", "extra": 1}) == "invalid_payload"
    assert await student.refused("hand:lower", {"participant_id": ["x"]}) == "invalid_payload"
    assert await student.refused("chat:send", {"text": "x" * 70_000}) == "payload_too_large"
    assert await student.refused("mod:kick", {"participant_id": teacher.participant_id}) == "forbidden"
    assert await student.refused("rec:start") == "forbidden"
    assert await teacher.refused("rec:start", {"extra": 1}) == "invalid_payload"
    assert await teacher.refused("mod:mute", {"participant_id": "ghost", "source": "camera"}) == "unknown_participant"
    # Still connected, still in the room.
    assert (await student.ok("room:sync"))["you"]["participant_id"] == student.participant_id


async def test_teacher_and_admin_read_the_session_records_back(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    sent = await student.ok("chat:send", {"text": "Em nộp bài ạ"})
    await teacher.ok("chat:delete", {"message_id": sent["message_id"]})
    await student.drop()
    await teacher.wait_for("participant:updated", lambda d: d["participant"]["connection"] == "reconnecting")
    await teacher.ok("room:end")

    async def ended_records():
        records = await teacher.person.json("GET", f"/sessions/{session_id}/records")
        return records if records["session"]["running"] is False else None

    records = await eventually(ended_records, 10, "the records to show the session ended")
    by_name = {a["name"]: a for a in records["attendance"]}
    assert [i["end_reason"] for i in by_name["Phạm Ngọc Ánh"]["intervals"]] == ["dropped"]
    assert by_name["Nguyễn Thị Hà"]["room_role"] == "teacher"
    assert by_name["Phạm Ngọc Ánh"]["status"] in ("present", "late")  # came, 5 min after the period began
    assert [(e["type"], e["by"]["name"]) for e in records["lobby"] if e["type"] == "lobby_admitted"] == [
        ("lobby_admitted", "Nguyễn Thị Hà")
    ]
    message = records["chat"][0]
    assert message["text"] == "Em nộp bài ạ" and message["deleted_by"]["name"] == "Nguyễn Thị Hà"
    assert records["session"]["running"] is False and records["events"][-1]["type"] == "room_ended"
    admin = await server.logged_in(school.admin)
    assert (await admin.json("GET", f"/sessions/{session_id}/records"))["chat"] == records["chat"]
    # The student has no access to the records.
    await student.person.json("GET", f"/sessions/{session_id}/records", expect=403)


async def test_locks_take_back_grants_but_never_undo_a_revoke(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await teacher.ok("mod:permit", {"participant_id": student.participant_id, "permissions": {"camera": False}})
    await teacher.ok("mod:lock", {"what": "cameras", "locked": True})
    mark = teacher.mark()
    await teacher.ok("mod:lock", {"what": "cameras", "locked": False})
    # Everyone's list follows the lock, and the revoked camera stays revoked.
    update = await teacher.wait_for(
        "participant:updated", after=mark, where=lambda d: d["participant"]["participant_id"] == student.participant_id
    )
    assert update["participant"]["permissions"]["camera"] is False
    assert await student.refused("media:state", {"camera": True}) == "not_permitted"


async def test_a_second_tab_refused_by_the_lock_does_not_cost_the_seat(server, school, period):
    session_id, teacher = period
    first = await admitted(teacher, await server.logged_in(school.student), session_id)
    await teacher.ok("mod:lock", {"locked": True})
    with pytest.raises(RefusedError) as refused:
        await enter(await server.logged_in(school.student), session_id)
    assert refused.value.code == "room_locked"
    assert (await first.ok("room:sync"))["you"]["participant_id"] == first.participant_id
    assert not first.events("you:replaced")


async def test_admitting_the_same_person_twice_in_one_request_admits_once(server, school, period):
    session_id, teacher = period
    student = await enter(await server.logged_in(school.student), session_id)
    lobby = await teacher.wait_for("lobby:updated", lambda d: len(d["lobby"]) == 1)
    pid = lobby["lobby"][0]["participant_id"]
    assert (await teacher.ok("lobby:admit", {"participant_ids": [pid, pid]}))["admitted"] == [pid]
    await student.wait_for("room:state")
    await student.ok("room:sync")  # its answer comes after any event the admission sent the student
    assert len(student.events("lobby:admitted")) == 1
    assert len([d for d in teacher.events("participant:joined") if d["participant"]["participant_id"] == pid]) == 1


async def test_a_removed_observer_waits_in_the_lobby_to_come_back(server, school, period):
    session_id, teacher = period
    observer = await enter(await server.logged_in(school.observer), session_id)
    state = await observer.wait_for("room:state")
    await teacher.ok("mod:kick", {"participant_id": state["you"]["participant_id"]})
    await observer.wait_for("you:kicked")
    back = await enter(observer.person, session_id)
    await back.wait_for("lobby:waiting")


async def test_ending_over_http_records_who_ended_it(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    admin = await server.logged_in(school.admin)
    await admin.json("POST", f"/periods/{school.period.id}/end")
    assert (await student.wait_for("room:ended"))["ended_by"] == "Trần Quản Trị"

    async def stored_end():
        async with server.db() as db:
            return (
                await db.execute(select(SessionEvent).where(SessionEvent.type == "room_ended"))
            ).scalar_one_or_none()

    ended = await eventually(stored_end, 10, "the records writer to write room_ended")
    assert ended.actor_id == school.admin.id


async def test_leaving_closes_the_connection_and_tells_the_others(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    await student.ok("room:leave")
    await student.wait_for("_disconnected")
    assert (await teacher.wait_for("participant:left"))["reason"] == "left"


async def test_a_map_with_number_keys_is_answered_not_lost(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    assert await student.refused("chat:send", {1: "a", "text": "x"}) == "invalid_payload"
    assert await student.refused("mod:permit", {"participant_id": "x", "permissions": {2: True}}) in (
        "invalid_payload",
        "forbidden",
    )


async def test_a_student_who_vanishes_silently_is_seen_dropped_within_seconds(server, school, period):
    """No FIN, no close: the phone's network is simply gone. The server's pings find out within about 10 s
    (Engine.IO's defaults took 45 s), so the seat's grace period and the attendance gap start on time."""
    from tests.blackhole import Blackhole

    session_id, teacher = period
    relay = Blackhole(int(server.base_url.rsplit(":", 1)[1]))
    port = await relay.start()
    try:
        person = await server.logged_in(school.student)
        join = await person.json("POST", f"/sessions/{session_id}/join")
        join["connect"]["url"] = f"http://127.0.0.1:{port}"  # the student's path to the server
        student = LiveClient(person)
        await student.connect_with(join)
        waiting = await teacher.wait_for("lobby:updated", lambda d: d["lobby"])
        await teacher.ok("lobby:admit", {"participant_ids": [waiting["lobby"][0]["participant_id"]]})
        await student.wait_for("room:state")
        mark = teacher.mark()
        relay.silent = True
        update = await teacher.wait_for(
            "participant:updated",
            lambda d: (
                d["participant"]["participant_id"] == student.participant_id
                and d["participant"]["connection"] == "reconnecting"
            ),
            timeout=15,
            after=mark,
        )
        assert update["participant"]["media"] == {"camera": False, "microphone": False, "screen": False}
    finally:
        await relay.close()
