"""One student flooding the room costs the class little: requests that reach everyone or write records are
rate-limited per learner, repeated knocks too, and snapshot events are coalesced."""

from __future__ import annotations

from sqlalchemy import func, select

from liveclass.models import SessionEvent
from tests.live import LiveClient, RefusedError, admitted


async def test_a_student_flooding_hands_costs_classmates_a_few_updates(server, school, period):
    session_id, teacher = period
    flooder = await admitted(teacher, await server.logged_in(school.student), session_id)
    mark = teacher.mark()
    answers = []
    for i in range(200):
        answers.append(await flooder.call("hand:raise" if i % 2 == 0 else "hand:lower", {}))
    accepted = [a for a in answers if a["ok"]]
    refused = [a["error"] for a in answers if not a["ok"]]
    assert len(accepted) <= 6 and refused and all(e["code"] == "rate_limited" and e["retry_after"] > 0 for e in refused)
    await teacher.ok("room:sync")  # everything the flood caused has reached the teacher by now
    assert len([e for e, _ in teacher.received[mark:] if e == "hand:queue"]) <= 6
    async with server.db() as db:
        written = (
            await db.execute(
                select(func.count()).where(
                    SessionEvent.session_id == session_id, SessionEvent.type.in_(["hand_raised", "hand_lowered"])
                )
            )
        ).scalar()
    assert written <= 6


async def test_a_denied_student_cannot_knock_again_and_again(server, school, period):
    session_id, teacher = period
    person = await server.logged_in(school.student)
    outcomes = []
    for _ in range(20):
        client = LiveClient(person)
        try:
            await client.connect(session_id)
        except RefusedError as refusal:
            outcomes.append(refusal.code)
            assert refusal.data["retry_after"] > 0
            continue
        waiting = await teacher.wait_for("lobby:updated", lambda d: d["lobby"], after=teacher.mark() - 1)
        await teacher.ok("lobby:deny", {"participant_ids": [waiting["lobby"][0]["participant_id"]]})
        await client.wait_for("_disconnected")
        outcomes.append("denied")
    assert outcomes.count("denied") == 5 and set(outcomes[5:]) == {"rate_limited"}
    async with server.db() as db:
        knocks = (
            await db.execute(
                select(func.count()).where(SessionEvent.session_id == session_id, SessionEvent.type == "lobby_entered")
            )
        ).scalar()
    assert knocks == 5
