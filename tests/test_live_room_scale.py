"""A full class in one room: a teacher, 45 students and 2 observers with real Socket.IO clients."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from liveclass.models import AttendanceInterval, ChatMessage, Enrollment, LiveSession, SessionEvent
from tests.helpers import add_user, eventually, seed_school
from tests.live import LiveClient, enter

STUDENTS = 45
HANDS = 10


def visible_participants(client: LiveClient) -> dict[str, dict] | None:
    """The participant list a client knows: its room:state, then the joins and leaves announced after it."""
    states = client.events("room:state")
    if not states:
        return None
    state = states[-1]
    people = {p["participant_id"]: p for p in state["participants"]}
    after = False
    for event, data in client.received:
        if event == "room:state" and data is state:
            after = True
        elif after and event == "participant:joined" and data["version"] > state["version"]:
            people[data["participant"]["participant_id"]] = data["participant"]
        elif after and event == "participant:left" and data["version"] > state["version"]:
            people.pop(data["participant_id"], None)
    return people


async def test_a_full_class_of_45_with_two_observers(server):
    school = await seed_school(server)
    async with server.db() as db:
        students = [await add_user(db, "student", f"Học Sinh {i:02d}") for i in range(STUDENTS)]
        second_observer = await add_user(db, "observer", "Võ Tổ Trưởng")
        db.add_all([Enrollment(class_id=school.school_class.id, student_id=s.id) for s in students])
        await db.commit()
    student_ids = {s.id for s in students}

    teacher_person, observer_people, student_people = await asyncio.gather(
        server.logged_in(school.teacher),
        asyncio.gather(server.logged_in(school.observer), server.logged_in(second_observer)),
        asyncio.gather(*(server.logged_in(s) for s in students)),
    )
    session = await teacher_person.json("POST", f"/periods/{school.period.id}/start", expect=201)
    session_id = session["id"]
    teacher = await enter(teacher_person, session_id)
    await teacher.wait_for("room:state")

    # Everyone waits in the lobby, rostered or not; one observer walks in meanwhile, without the lobby.
    learners = await asyncio.gather(*(enter(p, session_id) for p in student_people))
    first_observer = await enter(observer_people[0], session_id)
    await asyncio.gather(*(s.wait_for("lobby:waiting", lambda d: d["teacher_present"]) for s in learners))
    lobby = (await teacher.wait_for("lobby:updated", lambda d: len(d["lobby"]) == STUDENTS))["lobby"]
    assert {e["name"] for e in lobby} == {s.full_name for s in students}
    assert all(e["on_roster"] and e["role"] == "student" for e in lobby)
    assert not [s for s in learners if s.events("room:state")]

    admitted = await teacher.ok("lobby:admit", {"all": True})
    assert sorted(admitted["admitted"]) == sorted(e["participant_id"] for e in lobby)
    await asyncio.gather(*(s.wait_for("room:state") for s in learners))
    second_observer_client = await enter(observer_people[1], session_id)
    observers = [first_observer, second_observer_client]
    await asyncio.gather(*(o.wait_for("room:state") for o in observers))
    await teacher.wait_for("lobby:updated", lambda d: d["lobby"] == [])

    # Students see the teacher and the 45 students, never the observers; the teacher sees all 48.
    for student in learners:
        people = await eventually(
            lambda: (p := visible_participants(student)) and len(p) == STUDENTS + 1 and p,
            10,  # events arrive on 48 sockets in any order
            f"{student.person.user.full_name}'s participant list",
        )
        assert Counter(p["role"] for p in people.values()) == {"teacher": 1, "student": STUDENTS}
    syncs = await asyncio.gather(*(s.ok("room:sync") for s in learners))
    for sync in syncs:
        assert Counter(p["role"] for p in sync["participants"]) == {"teacher": 1, "student": STUDENTS}
        assert all("personal_id" not in p for p in sync["participants"])  # only the teacher sees IDs
    for student in learners:
        assert not [d for d in student.events("participant:joined") if d["participant"]["role"] == "observer"]
    teacher_view = await teacher.ok("room:sync")
    assert Counter(p["role"] for p in teacher_view["participants"]) == {
        "teacher": 1,
        "student": STUDENTS,
        "observer": 2,
    }
    for observer in observers:
        observer_view = await observer.ok("room:sync")
        assert len(observer_view["participants"]) == STUDENTS + 3

    # One message from the teacher reaches all 47 others.
    others = [*learners, *observers]
    sent = await teacher.ok("chat:send", {"text": "Chào cả lớp, hôm nay học hàm số bậc hai."})
    messages = await asyncio.gather(
        *(c.wait_for("chat:message", lambda m: m["message_id"] == sent["message_id"]) for c in others)
    )
    assert {m["text"] for m in messages} == {"Chào cả lớp, hôm nay học hàm số bậc hai."}
    assert all(m["from"]["role"] == "teacher" and m["to"] is None for m in messages)

    # Ten hands, raised one after another, come back in that order.
    raisers = learners[7 : 7 + HANDS]
    for position, student in enumerate(raisers, start=1):
        assert await student.ok("hand:raise") == {"position": position}
    expected = [s.person.user.full_name for s in raisers]
    for watcher in (teacher, learners[0], raisers[-1]):
        queue = (await watcher.wait_for("hand:queue", lambda d: len(d["hands"]) == HANDS))["hands"]
        assert [h["name"] for h in queue] == expected
        assert [h["position"] for h in queue] == list(range(1, HANDS + 1))
        assert [h["raised_at"] for h in queue] == sorted(h["raised_at"] for h in queue)
    assert [h["participant_id"] for h in (await teacher.ok("room:sync"))["hands"]] == [
        s.participant_id for s in raisers
    ]

    # The teacher ends the period: everyone is told and disconnected.
    await teacher.ok("room:end")
    await asyncio.gather(*(c.wait_for("room:ended") for c in others))
    await asyncio.gather(*(c.wait_for("_disconnected") for c in [teacher, *others]))

    # The records match what happened, event for event.
    async def stored_events():
        async with server.db() as db:
            return (
                (
                    await db.execute(
                        select(SessionEvent).where(SessionEvent.session_id == session_id).order_by(SessionEvent.id)
                    )
                )
                .scalars()
                .all()
            )

    async def stored_until_ended():
        events = await stored_events()
        return events if any(e.type == "room_ended" for e in events) else None

    events = await eventually(stored_until_ended, 10, "the records writer (every 0.25 s) to write room_ended")

    teacher_id = school.teacher.id
    observer_ids = {school.observer.id, second_observer.id}
    assert Counter(e.type for e in events) == {
        "participant_joined": 3,
        "lobby_entered": STUDENTS,
        "lobby_admitted": STUDENTS,
        "chat_message": 1,
        "hand_raised": HANDS,
        "participant_left": STUDENTS + 3,
        "room_ended": 1,
    }

    def of(type_: str) -> list[SessionEvent]:
        return [e for e in events if e.type == type_]

    assert {e.target_id for e in of("participant_joined")} == {teacher_id, *observer_ids}
    assert {e.target_id for e in of("lobby_entered")} == student_ids
    admissions = of("lobby_admitted")
    assert {e.actor_id for e in admissions} == {teacher_id}
    assert sorted(e.target_id for e in admissions) == sorted(student_ids)
    assert all(e.data["room_role"] == "student" for e in admissions)
    hands = of("hand_raised")
    assert [(e.actor_id, e.data["position"]) for e in hands] == [
        (s.person.user.id, i) for i, s in enumerate(raisers, start=1)
    ]
    left = of("participant_left")
    assert sorted(e.target_id for e in left) == sorted([teacher_id, *observer_ids, *student_ids])
    assert {e.data["reason"] for e in left} == {"ended"}
    assert events[-1].type == "room_ended" and events[-1].actor_id == teacher_id
    # Each admission comes after that student entered the lobby; each departure after the admission.
    position = {(e.type, e.target_id): i for i, e in enumerate(events)}
    for student_id in student_ids:
        assert (
            position[("lobby_entered", student_id)]
            < position[("lobby_admitted", student_id)]
            < position[("participant_left", student_id)]
        )

    async with server.db() as db:
        intervals = (
            (await db.execute(select(AttendanceInterval).where(AttendanceInterval.session_id == session_id)))
            .scalars()
            .all()
        )
        chat = (await db.execute(select(ChatMessage).where(ChatMessage.session_id == session_id))).scalars().all()
        live_session = await db.get(LiveSession, session_id)
    per_user = Counter(i.user_id for i in intervals)
    assert per_user == Counter([teacher_id, *observer_ids, *student_ids])  # exactly one interval each
    roles = {i.user_id: i.room_role for i in intervals}
    assert {roles[s] for s in student_ids} == {"student"}
    assert roles[teacher_id] == "teacher" and {roles[o] for o in observer_ids} == {"observer"}
    for interval in intervals:
        assert interval.end_reason == "ended"
        assert interval.left_at is not None and interval.joined_at <= interval.left_at
    assert [(m.id, m.sender_id, m.recipient_id, m.deleted_at) for m in chat] == [
        (sent["message_id"], teacher_id, None, None)
    ]
    assert live_session.ended_at is not None
