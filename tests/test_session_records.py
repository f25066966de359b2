"""After a period, the store's records match what happened in the room, event for event (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from sqlalchemy import select

from liveclass.models import AttendanceInterval, ChatMessage, Enrollment, LiveSession, SessionEvent
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import RoomEvent
from tests.helpers import add_user, eventually, seed_school
from tests.live import LiveClient, enter


async def wait_for_records(server, session_id: int, last_type: str, timeout: float = 10) -> list[SessionEvent]:
    """The session's events once `last_type` is among them (the writer batches every 0.25 s)."""

    async def written():
        async with server.db() as db:
            rows = (
                (
                    await db.execute(
                        select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)
                    )
                )
                .scalars()
                .all()
            )
        return rows if any(r.type == last_type for r in rows) else None

    return await eventually(written, timeout, f"the records writer to write {last_type}", step=0.1)


async def lobby_entry(teacher: LiveClient, name: str, after: int = 0) -> str:
    lobby = await teacher.wait_for("lobby:updated", lambda d: any(e["name"] == name for e in d["lobby"]), after=after)
    return next(e["participant_id"] for e in lobby["lobby"] if e["name"] == name)


async def test_records_match_the_period_event_for_event(any_store_server):
    server = any_store_server
    school = await seed_school(server)
    async with server.db() as db:
        huy = await add_user(db, "student", "Trần Gia Huy")
        db.add(Enrollment(class_id=school.school_class.id, student_id=huy.id))
        await db.commit()
    T, S1, S2, OBS = school.teacher.id, school.student.id, huy.id, school.observer.id

    teacher_person = await server.logged_in(school.teacher)
    session_id = (await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201))["id"]

    # Ánh arrives before the teacher and waits in the lobby.
    anh = await enter(await server.logged_in(school.student), session_id)
    assert (await anh.wait_for("lobby:waiting"))["teacher_present"] is False
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")
    await anh.wait_for("lobby:waiting", lambda d: d["teacher_present"])
    huy_person = await server.logged_in(huy)
    huy_client = await enter(huy_person, session_id)
    await huy_client.wait_for("lobby:waiting")
    await lobby_entry(teacher, "Trần Gia Huy")
    observer = await enter(await server.logged_in(school.observer), session_id)
    await observer.wait_for("room:state")

    # Ánh is let in; Huy is denied, asks again and is let in.
    await teacher.ok("lobby:admit", {"participant_ids": [await lobby_entry(teacher, "Phạm Ngọc Ánh")]})
    await anh.wait_for("room:state")
    await teacher.ok(
        "lobby:deny", {"participant_ids": [await lobby_entry(teacher, "Trần Gia Huy")], "reason": "Chờ cô một chút"}
    )
    await huy_client.wait_for("lobby:denied")
    await huy_client.wait_for("_disconnected")
    mark = teacher.mark()
    huy_client = await enter(huy_person, session_id)
    await huy_client.wait_for("lobby:waiting")
    await teacher.ok("lobby:admit", {"participant_ids": [await lobby_entry(teacher, "Trần Gia Huy", mark)]})
    await huy_client.wait_for("room:state")

    # Chat: public and private, and a deletion.
    public = await anh.ok("chat:send", {"text": "Em chào cô ạ"})
    to_teacher = await anh.ok("chat:send", {"text": "Cô ơi em hỏi riêng", "to": teacher.participant_id})
    to_huy = await teacher.ok("chat:send", {"text": "Huy bật micro nhé", "to": huy_client.participant_id})
    from_observer = await observer.ok("chat:send", {"text": "Lớp học tốt.", "to": teacher.participant_id})
    from_teacher = await teacher.ok("chat:send", {"text": "Mở sách trang 42."})
    await teacher.ok("chat:delete", {"message_id": public["message_id"]})

    # Hands: raised in order, one lowered by its owner, the rest by the teacher.
    assert await anh.ok("hand:raise") == {"position": 1}
    assert await huy_client.ok("hand:raise") == {"position": 2}
    await anh.ok("hand:lower")
    await teacher.ok("hand:lower", {"all": True})

    # Huy's microphone on, the teacher mutes it; chat locked and unlocked; Ánh may share her screen.
    await huy_client.ok("media:state", {"microphone": True})
    await teacher.ok("mod:mute", {"participant_id": huy_client.participant_id, "source": "microphone"})
    await teacher.ok("mod:lock", {"what": "chat", "locked": True})
    await teacher.ok("mod:lock", {"what": "chat", "locked": False})
    await teacher.ok("mod:permit", {"participant_id": anh.participant_id, "permissions": {"screen": True}})

    # Ánh's network drops; she is back within the grace period.
    mark = teacher.mark()
    await anh.drop()
    await teacher.wait_for(
        "participant:updated", lambda d: d["participant"]["connection"] == "reconnecting", after=mark
    )
    anh_back = LiveClient(anh.person)
    anh_back.resume_token = anh.resume_token
    await anh_back.connect(session_id, resume=True)
    assert (await anh_back.wait_for("room:state"))["you"]["participant_id"] == anh.participant_id

    # Huy is removed; the teacher ends the period.
    await teacher.ok("mod:kick", {"participant_id": huy_client.participant_id, "reason": "Nói chuyện riêng"})
    await huy_client.wait_for("_disconnected")
    await teacher.ok("room:end")
    await anh_back.wait_for("room:ended")

    rows = await wait_for_records(server, session_id, "room_ended")
    observed = [(r.type, r.actor_id, r.target_id) for r in rows]
    assert observed == [
        ("lobby_entered", S1, S1),
        ("participant_joined", T, T),
        ("lobby_entered", S2, S2),
        ("participant_joined", OBS, OBS),
        ("lobby_admitted", T, S1),
        ("lobby_denied", T, S2),
        ("lobby_entered", S2, S2),
        ("lobby_admitted", T, S2),
        ("chat_message", S1, None),
        ("chat_message", S1, T),
        ("chat_message", T, S2),
        ("chat_message", OBS, T),
        ("chat_message", T, None),
        ("chat_deleted", T, None),
        ("hand_raised", S1, S1),
        ("hand_raised", S2, S2),
        ("hand_lowered", S1, S1),
        ("hand_lowered", T, S2),
        ("media_changed", S2, S2),
        ("media_muted", T, S2),
        ("lock_changed", T, None),
        ("lock_changed", T, None),
        ("permissions_changed", T, S1),
        ("participant_dropped", S1, S1),
        ("participant_reconnected", S1, S1),
        ("participant_kicked", T, S2),
        ("participant_left", S2, S2),
        ("participant_left", S1, S1),
        ("participant_left", T, T),
        ("participant_left", OBS, OBS),
        ("room_ended", T, None),
    ], observed
    times = [r.at for r in rows]
    assert times == sorted(times)
    by = {i: r for i, r in enumerate(rows)}
    assert by[0].data == {"on_roster": True}
    assert by[5].data["reason"] == "Chờ cô một chút"
    assert by[8].data["message_id"] == public["message_id"] and by[8].data["private"] is False
    assert by[9].data["private"] is True
    assert by[13].data == {"message_id": public["message_id"]}
    assert [by[14].data["position"], by[15].data["position"]] == [1, 2]
    assert by[18].data == {"microphone": True} and by[19].data == {"source": "microphone"}
    assert [by[20].data, by[21].data] == [{"what": "chat", "locked": True}, {"what": "chat", "locked": False}]
    assert by[22].data == {"screen": True}
    assert by[25].data == {"reason": "Nói chuyện riêng"}
    assert [r.data["reason"] for r in rows if r.type == "participant_left"] == ["kicked", "ended", "ended", "ended"]

    # Attendance: one interval per stretch of presence, closed with why it ended.
    async with server.db() as db:
        intervals = (
            (
                await db.execute(
                    select(AttendanceInterval)
                    .where(AttendanceInterval.session_id == session_id)
                    .order_by(AttendanceInterval.id)
                )
            )
            .scalars()
            .all()
        )
        messages = {
            m.id: m
            for m in (await db.execute(select(ChatMessage).where(ChatMessage.session_id == session_id))).scalars()
        }
        session = await db.get(LiveSession, session_id)
    at = {(r.type, r.target_id): r.at for r in rows if r.type != "participant_left"}
    left_at = {r.target_id: r.at for r in rows if r.type == "participant_left"}
    assert [(i.user_id, i.room_role, i.joined_at, i.left_at, i.end_reason) for i in intervals] == [
        (T, "teacher", at["participant_joined", T], left_at[T], "ended"),
        (OBS, "observer", at["participant_joined", OBS], left_at[OBS], "ended"),
        (S1, "student", at["lobby_admitted", S1], at["participant_dropped", S1], "dropped"),
        (S2, "student", at["lobby_admitted", S2], left_at[S2], "kicked"),
        (S1, "student", at["participant_reconnected", S1], left_at[S1], "ended"),
    ]
    assert all(i.left_at > i.joined_at for i in intervals)

    # Chat: private through recipient_id, the deletion with who and when.
    assert len(messages) == 5
    expected = {
        public["message_id"]: (S1, None, "Em chào cô ạ"),
        to_teacher["message_id"]: (S1, T, "Cô ơi em hỏi riêng"),
        to_huy["message_id"]: (T, S2, "Huy bật micro nhé"),
        from_observer["message_id"]: (OBS, T, "Lớp học tốt."),
        from_teacher["message_id"]: (T, None, "Mở sách trang 42."),
    }
    assert {k: (m.sender_id, m.recipient_id, m.text) for k, m in messages.items()} == expected
    assert all(m.kind == "text" for m in messages.values())
    deleted = messages[public["message_id"]]
    assert deleted.deleted_by_id == T and deleted.deleted_at == rows[13].at
    assert all(
        m.deleted_at is None and m.deleted_by_id is None for k, m in messages.items() if k != public["message_id"]
    )
    assert messages[to_teacher["message_id"]].at == rows[9].at

    # The session is over in the store too.
    assert session.ended_at == rows[-1].at


async def test_an_event_the_store_cannot_hold_is_skipped_and_the_others_are_written(any_store_server):
    """A session id past the store's 32-bit ids (a recording folder copied in by hand, say): PostgreSQL's
    driver refuses the value itself. That event is skipped; it must not hold back the session's others
    by being retried forever as if the store were away."""
    school = await seed_school(any_store_server)
    teacher = await any_store_server.logged_in(school.teacher)
    session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
    writer = RecordsWriter(any_store_server.db)
    now = time.time()
    writer.emit(RoomEvent(3_000_000_000, ev.ROOM_ENDED, None, None, {}, now))
    writer.emit(RoomEvent(session["id"], ev.ROOM_ENDED, None, None, {}, now))
    await writer.flush()  # raises if the batch was kept for a retry
    records = await teacher.json("GET", f"/sessions/{session['id']}/records")
    assert [e["type"] for e in records["events"]] == [ev.ROOM_ENDED]
