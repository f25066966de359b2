"""The room's rules (signaling/room.py) tested directly, without I/O: a Room, join claims, a clock we move by
hand, and what the room would send (its outbox) and record (its sink)."""

from __future__ import annotations

import pytest

from signaling.events import ListSink
from signaling.protocol import RoomError, parse
from signaling.room import CHAT_RATE_COUNT, KNOCKS, Room
from signaling.server import REQUESTS
from tests.rooms import SESSION_ID, claims


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def room(clock) -> Room:
    return Room(SESSION_ID, ListSink(), grace_seconds=60, clock=clock)


def sent(room: Room, sid: str, event: str) -> list:
    """What the room said to one connection, of one event, since the outbox was last read."""
    return [out.data for out in room.outbox if out.sid == sid and out.event == event]


def do(room: Room, who, action: str, data: dict | None = None):
    """A request as the server passes it on: validated by its payload model, then to the room's rules."""
    return room.handle(who, action, parse(REQUESTS[action], data or {}))


def refused(room: Room, who, action: str, data: dict | None = None) -> str:
    with pytest.raises(RoomError) as caught:
        do(room, who, action, data)
    return caught.value.code


def records(room: Room) -> list[str]:
    return [e.type for e in room.sink.events]


def test_learners_wait_in_the_lobby_until_the_teacher_admits_them(room):
    student = room.arrive("s1", claims(2, "student", "Ánh"))  # before the teacher: waits too
    assert student.state == "lobby" and sent(room, "s1", "lobby:waiting")[0]["teacher_present"] is False
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    observer = room.arrive("o1", claims(9, "observer", "Thầy Hiệu trưởng"))
    assert teacher.state == "admitted" and observer.state == "admitted"  # staff enter directly
    lobby = sent(room, "t1", "room:state")[0]["lobby"]
    assert [e["name"] for e in lobby] == ["Ánh"]
    assert refused(room, student, "chat:send", {"text": "Chào cô"}) == "not_admitted"
    assert refused(room, observer, "lobby:admit", {"all": True}) == "forbidden"

    room.outbox.clear()
    assert do(room, teacher, "lobby:admit", {"participant_ids": [student.participant_id]}) == {
        "admitted": [student.participant_id]
    }
    assert student.state == "admitted" and sent(room, "s1", "lobby:admitted") == [{"admitted_by": "Cô Hà"}]
    assert sent(room, "s1", "room:state")[0]["you"]["participant_id"] == student.participant_id
    assert refused(room, teacher, "lobby:admit", {"participant_ids": [student.participant_id]}) == "not_in_lobby"
    assert "lobby_admitted" in records(room)


def test_a_denied_learner_is_told_why_and_disconnected(room):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    stranger = room.arrive("x1", claims(5, "student", "Người lạ"))
    room.outbox.clear()
    do(room, teacher, "lobby:deny", {"all": True, "reason": "Không có trong danh sách lớp"})
    denied = [out for out in room.outbox if out.sid == "x1" and out.event == "lobby:denied"]
    assert denied[0].data == {"reason": "Không có trong danh sách lớp"} and denied[0].disconnect_after
    assert stranger.state == "gone" and room.lobby() == []


def test_a_dropped_student_keeps_the_seat_for_the_grace_period_and_comes_back_without_the_lobby(room, clock):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    student = room.arrive("s1", claims(2, "student", "Ánh"))
    do(room, teacher, "lobby:admit", {"all": True})
    do(room, student, "hand:raise")
    token = student.resume_token
    room.disconnected("s1")
    clock.now += 59
    assert room.expire_seat(student.participant_id) is False  # still within the grace period
    back = room.arrive("s2", claims(2, "student", "Ánh"), token)
    assert back is student and back.state == "admitted" and back.sid == "s2"
    assert [h["name"] for h in room.hand_queue()] == ["Ánh"]  # the hand is still up

    room.disconnected("s2")
    clock.now += 60
    assert room.expire_seat(student.participant_id) is True
    assert student.state == "gone" and room.hand_queue() == []
    again = room.arrive("s3", claims(2, "student", "Ánh"), token)  # too late: the lobby again
    assert again is not student and again.state == "lobby"


def test_a_room_is_abandoned_only_when_no_seat_waits_for_a_resume(room, clock):
    """What the automatic end of a forgotten period asks: nobody connected, and nobody coming back."""
    assert room.abandoned  # nobody came yet
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    room.arrive("s1", claims(2, "student", "Ánh"))  # waits in the lobby
    room.disconnected("t1")
    assert not room.abandoned, "a connected student waits in the lobby"
    room.disconnected("s1")  # a lobby connection that goes leaves
    assert not teacher.connected and not room.abandoned, "the teacher's seat waits for her resume"
    clock.now += 60
    assert room.expire_seat(teacher.participant_id)
    assert room.abandoned


def test_a_second_tab_replaces_the_first_so_nobody_is_in_twice(room):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    first = room.arrive("s1", claims(2, "student", "Ánh"))
    do(room, teacher, "lobby:admit", {"all": True})
    room.outbox.clear()
    second = room.arrive("s2", claims(2, "student", "Ánh"))  # no resume token: another device
    replaced = [out for out in room.outbox if out.sid == "s1" and out.event == "you:replaced"]
    assert replaced and replaced[0].data["reason"] == "signed_in_elsewhere" and replaced[0].disconnect_after
    assert first.state == "gone" and second.state == "lobby"
    assert sum(1 for p in room.participants.values() if p.user_id == 2 and p.state != "gone") == 1


def test_a_locked_room_refuses_learners_but_not_the_teacher_and_knocks_are_limited(room, clock):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    do(room, teacher, "mod:lock", {"what": "room", "locked": True})
    with pytest.raises(RoomError) as locked:
        room.arrive("s1", claims(2, "student", "Ánh"))
    assert locked.value.code == "room_locked"
    assert room.arrive("t2", claims(3, "teacher", "Thầy Nam")).state == "admitted"
    do(room, teacher, "mod:lock", {"what": "room", "locked": False})

    count, window = KNOCKS
    for i in range(count):
        room.arrive(f"k{i}", claims(4, "student", "Khôi"))  # each knock replaces the previous one
    with pytest.raises(RoomError) as knocked:
        room.arrive("k-more", claims(4, "student", "Khôi"))
    assert knocked.value.code == "rate_limited" and knocked.value.extra["retry_after"] > 0
    clock.now += window
    assert room.arrive("k-later", claims(4, "student", "Khôi")).state == "lobby"


def test_chat_is_limited_private_messages_reach_only_their_people_and_the_teacher_deletes(room, clock):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    anh = room.arrive("s1", claims(2, "student", "Ánh"))
    huy = room.arrive("s2", claims(3, "student", "Huy"))
    do(room, teacher, "lobby:admit", {"all": True})
    for i in range(CHAT_RATE_COUNT):
        do(room, anh, "chat:send", {"text": f"câu {i}"})
    assert refused(room, anh, "chat:send", {"text": "nữa"}) == "rate_limited"
    for _ in range(20):
        do(room, teacher, "chat:send", {"text": "Cô nói"})  # the teacher is not limited
    assert refused(room, anh, "chat:send", {"text": "   "}) == "empty_message"
    clock.now += 60

    room.outbox.clear()
    private = do(room, anh, "chat:send", {"text": "Em xin phép ra ngoài", "to": teacher.participant_id})
    assert sent(room, "t1", "chat:message")[0]["text"] == "Em xin phép ra ngoài"
    assert sent(room, "s1", "chat:message") and not sent(room, "s2", "chat:message")
    assert refused(room, anh, "chat:send", {"text": "Huy ơi", "to": huy.participant_id}) == "forbidden"
    assert refused(room, huy, "chat:delete", {"message_id": private["message_id"]}) == "forbidden"

    do(room, teacher, "mod:permit", {"participant_id": huy.participant_id, "permissions": {"chat": False}})
    assert refused(room, huy, "chat:send", {"text": "Em muốn nói"}) == "chat_muted"
    room.outbox.clear()
    do(room, teacher, "chat:delete", {"message_id": private["message_id"]})
    assert sent(room, "s1", "chat:deleted") and not sent(room, "s2", "chat:deleted")
    assert next(m for m in room.chat if m["message_id"] == private["message_id"])["text"] == ""


def test_hands_queue_in_order_and_a_student_lowers_only_their_own(room, clock):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    anh = room.arrive("s1", claims(2, "student", "Ánh"))
    huy = room.arrive("s2", claims(3, "student", "Huy"))
    do(room, teacher, "lobby:admit", {"all": True})
    assert do(room, huy, "hand:raise") == {"position": 1}
    clock.now += 1
    assert do(room, anh, "hand:raise") == {"position": 2}
    assert do(room, anh, "hand:raise") == {"position": 2}  # raising again changes nothing
    assert refused(room, anh, "hand:lower", {"participant_id": huy.participant_id}) == "forbidden"
    do(room, anh, "hand:lower")
    assert [h["name"] for h in room.hand_queue()] == ["Huy"]
    assert do(room, teacher, "hand:lower", {"all": True}) == {"lowered": [huy.participant_id]}
    assert records(room).count("hand_raised") == 2 and records(room).count("hand_lowered") == 2


def test_locks_turn_media_off_and_a_permission_gives_one_student_the_floor(room):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    anh = room.arrive("s1", claims(2, "student", "Ánh"))
    do(room, teacher, "lobby:admit", {"all": True})
    do(room, anh, "media:state", {"microphone": True})
    room.outbox.clear()
    do(room, teacher, "mod:lock", {"what": "microphones", "locked": True})
    assert anh.media["microphone"] is False and sent(room, "s1", "you:muted")[0]["source"] == "microphone"
    assert refused(room, anh, "media:state", {"microphone": True}) == "not_permitted"
    do(room, teacher, "mod:permit", {"participant_id": anh.participant_id, "permissions": {"microphone": True}})
    assert do(room, anh, "media:state", {"microphone": True})["media"]["microphone"] is True
    do(room, teacher, "mod:permit", {"participant_id": anh.participant_id, "permissions": {"microphone": False}})
    assert anh.media["microphone"] is False  # a revoke stops it at once


def test_a_removed_student_waits_in_the_lobby_when_they_come_back(room):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    anh = room.arrive("s1", claims(2, "student", "Ánh"))
    do(room, teacher, "lobby:admit", {"all": True})
    do(room, teacher, "mod:stage", {"participant_id": anh.participant_id})
    assert refused(room, teacher, "mod:kick", {"participant_id": teacher.participant_id}) == "forbidden"
    room.outbox.clear()
    do(room, teacher, "mod:kick", {"participant_id": anh.participant_id, "reason": "Nói chuyện riêng"})
    kicked = [out for out in room.outbox if out.sid == "s1" and out.event == "you:kicked"]
    assert kicked[0].data["reason"] == "Nói chuyện riêng" and kicked[0].disconnect_after
    assert room.stage is None  # the stage empties with them
    back = room.arrive("s2", claims(2, "student", "Ánh"), anh.resume_token)
    assert back.state == "lobby" and room._lobby_entry(back)  # their old seat is gone


def test_the_end_sends_everyone_away_and_nobody_enters_after(room):
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    anh = room.arrive("s1", claims(2, "student", "Ánh"))
    waiting = room.arrive("s2", claims(3, "student", "Huy"))
    do(room, teacher, "lobby:admit", {"participant_ids": [anh.participant_id]})
    do(room, teacher, "poll:open", {"kind": "abcd"})
    room.outbox.clear()
    assert refused(room, anh, "room:end") == "forbidden"
    do(room, teacher, "room:end")
    for sid in ("t1", "s1", "s2"):
        ended = [out for out in room.outbox if out.sid == sid and out.event == "room:ended"]
        assert ended and ended[0].data["ended_by"] == "Cô Hà" and ended[0].disconnect_after, sid
    assert room.ended and {p.state for p in (teacher, anh, waiting)} == {"gone"}
    assert room.poll.state == "closed" and records(room)[-1] == "room_ended"
    with pytest.raises(RoomError) as late:
        room.arrive("s3", claims(4, "student", "Trang"))
    assert late.value.code == "session_ended"


def test_the_end_of_a_full_class_tells_each_person_once(room):
    """Ending a class of 40 sends one room:ended to each person (42 here, with the teacher and a latecomer in
    the lobby): not a participant:left and a hand:queue for every classmate processed before them."""
    teacher = room.arrive("t1", claims(1, "teacher", "Cô Hà"))
    students = [room.arrive(f"s{n}", claims(100 + n, "student", f"Học sinh {n}")) for n in range(40)]
    do(room, teacher, "lobby:admit", {"all": True})
    late = room.arrive("late", claims(999, "student", "Đến muộn"))  # still in the lobby
    for student in students[:3]:
        do(room, student, "hand:raise")
    do(room, teacher, "mod:stage", {"participant_id": students[5].participant_id})
    room.outbox.clear()
    do(room, teacher, "room:end")
    said = {}
    for out in room.outbox:
        said.setdefault(out.sid, []).append((out.event, out.disconnect_after))
    assert said == {p.sid: [("room:ended", True)] for p in (teacher, *students, late)}
    events = room.sink.events
    left = [e for e in events if e.type in ("participant_left", "lobby_left")]
    assert len(left) == 42 and {e.data["reason"] for e in left} == {"ended"}
    assert "stage_changed" in records(room)[-44:] and records(room)[-1] == "room_ended"
