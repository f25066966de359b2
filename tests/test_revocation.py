"""An account that loses its rights loses them in the live room at once: deactivation, a password changed
or reset, a role changed, a student removed from the class. A join token is checked against the account
and the session as they are when it is used. (Across nodes: tests/test_cluster.py.)"""

from __future__ import annotations

import pytest

from liveclass.models import SessionEvent
from sqlalchemy import select
from tests.helpers import PASSWORD
from tests.live import LiveClient, RefusedError, admitted


async def _class_with(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    admin = await server.logged_in(school.admin)
    return session_id, teacher, student, admin


async def _removed(client, reason: str) -> None:
    """The connection is told why and closed: nothing it could do in the room works any more."""
    told = await client.wait_for("you:logged_out")
    assert told["reason"] == reason and told["message"]
    await client.wait_for("_disconnected")
    assert not client.sio.connected


async def test_a_teacher_whose_password_is_reset_loses_the_room_at_once(server, school, period):
    session_id, teacher, student, admin = await _class_with(server, school, period)
    await admin.json("POST", f"/users/{school.teacher.id}/reset-password")
    await _removed(teacher, "password_reset")
    left = await student.wait_for("participant:left", lambda d: d["participant_id"] != student.participant_id)
    assert left["reason"] == "password_reset"
    # Her old login is gone too: she cannot join again without the new password.
    assert (await teacher.person.request("POST", f"/sessions/{session_id}/join")).status == 401


async def test_changing_ones_own_password_closes_ones_room_connection(server, school, period):
    session_id, teacher, student, _ = await _class_with(server, school, period)
    await student.person.json(
        "POST", "/auth/password", json={"current_password": PASSWORD, "new_password": "Mật-khẩu-mới-Hè-2027"}
    )
    await _removed(student, "password_changed")
    await teacher.wait_for("participant:left", lambda d: d["reason"] == "password_changed")


async def test_a_role_change_and_a_deactivation_take_people_out(server, school, period):
    session_id, teacher, student, admin = await _class_with(server, school, period)
    await admin.json("PATCH", f"/users/{school.student.id}", json={"role": "parent"})
    await _removed(student, "role_changed")
    observer = LiveClient(await server.logged_in(school.observer))
    await observer.connect(session_id)
    await observer.wait_for("room:state")
    await admin.json("PATCH", f"/users/{school.observer.id}", json={"active": False})
    await _removed(observer, "account_deactivated")


async def test_a_student_removed_from_the_class_leaves_its_running_period(server, school, period):
    session_id, teacher, student, admin = await _class_with(server, school, period)
    await admin.json("DELETE", f"/classes/{school.school_class.id}/students/{school.student.id}")
    await _removed(student, "removed_from_class")
    assert (await student.person.request("POST", f"/sessions/{session_id}/join")).status == 403


@pytest.mark.parametrize(
    "change, refusal",
    [
        ("deactivated", "account_inactive"),
        ("removed from the class", "token_outdated"),
        ("period ended", "session_ended"),
    ],
)
async def test_a_join_token_is_checked_against_the_store_when_it_is_used(server, school, period, change, refusal):
    session_id, teacher = period
    person = await server.logged_in(school.student)
    join = await person.json("POST", f"/sessions/{session_id}/join")  # valid for 60 s ...
    admin = await server.logged_in(school.admin)
    if change == "deactivated":  # ... but the account changes before it is used
        await admin.json("PATCH", f"/users/{school.student.id}", json={"active": False})
    elif change == "removed from the class":
        await admin.json("DELETE", f"/classes/{school.school_class.id}/students/{school.student.id}")
    else:
        await admin.json("POST", f"/periods/{school.period.id}/end")
    with pytest.raises(RefusedError) as refused:
        await LiveClient(person).connect_with(join)
    assert refused.value.code == refusal
    assert not any(e["name"] == school.student.full_name for d in teacher.events("lobby:updated") for e in d["lobby"])
    async with server.db() as db:  # nothing was recorded for the refused arrival
        types = (
            (
                await db.execute(
                    select(SessionEvent.type).where(
                        SessionEvent.session_id == session_id, SessionEvent.actor_id == school.student.id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert "lobby_entered" not in types
