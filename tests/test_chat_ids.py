"""Chat message ids are unique for the whole period (past the 200 messages the room keeps, and across a
move to another node), and a message whose record the store refuses is never acknowledged `ok`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select

from liveclass.live import LIVE_ROOMS
from liveclass.models import ChatMessage, LiveSession
from liveclass.records import RecordsWriter
from signaling import events as ev
from signaling.events import ListSink, RecordsRefused, RoomEvent
from signaling.room import CHAT_HISTORY, Room
from signaling.room_state import restore, snapshot
from tests.live import admitted
from tests.rooms import claims


def _room_with_teacher() -> tuple[Room, object]:
    room = Room(7, ListSink())
    return room, room.arrive("sid-t", claims(1, "teacher", "Cô Hà"))


def _ids(room: Room, teacher, count: int) -> list[str]:
    return [room._post(teacher, f"tin {i}", None)["message_id"] for i in range(count)]


def test_ids_stay_distinct_past_the_history_without_relying_on_chance(monkeypatch):
    """Before: m{session}-{len(chat)}-{8 random hex}, and len(chat) stops at 200: from then on only the 32
    random bits told messages apart. With the random part fixed, they must still differ."""
    monkeypatch.setattr("signaling.room.secrets.token_hex", lambda n=None: "0" * (2 * (n or 16)))
    room, teacher = _room_with_teacher()
    ids = _ids(room, teacher, CHAT_HISTORY + 100)
    assert len(set(ids)) == len(ids)
    assert len(room.chat) == CHAT_HISTORY
    assert max(len(i) for i in ids) <= 64  # the store's and the protocol's limit


def test_a_restored_room_does_not_reissue_ids():
    room, teacher = _room_with_teacher()
    stale = json.loads(json.dumps(snapshot(room)))  # the last snapshot before the node died ...
    ids = _ids(room, teacher, CHAT_HISTORY + 20)  # ... and the messages it posted (and stored) after it
    fresh = json.loads(json.dumps(snapshot(room)))
    assert fresh["chat_seq"] == CHAT_HISTORY + 20

    moved = Room(7, ListSink())  # a drain: the snapshot is up to date
    restore(moved, fresh)
    assert moved.chat_seq == room.chat_seq  # the count goes on
    teacher_there = moved.participants[teacher.participant_id]
    after_move = _ids(moved, teacher_there, 30)

    lost = Room(7, ListSink())  # a dead node: the snapshot is older than its last messages
    restore(lost, stale)
    after_loss = _ids(lost, lost.participants[teacher.participant_id], CHAT_HISTORY + 20)

    everything = ids + after_move + after_loss
    assert len(set(everything)) == len(everything)


def test_a_snapshot_without_a_count_goes_on_from_its_history():
    """A snapshot written by a node from before the count: its history is all there is to go on."""
    room, teacher = _room_with_teacher()
    _ids(room, teacher, 3)
    state = json.loads(json.dumps(snapshot(room)))
    del state["chat_seq"]
    again = Room(7, ListSink())
    restore(again, state)
    assert again.chat_seq == 3


# -- the records writer ------------------------------------------------------------------------------
def _message(session_id: int, user_id: int, message_id: str, text: str) -> RoomEvent:
    return RoomEvent(
        session_id,
        ev.CHAT_MESSAGE,
        user_id,
        None,
        {"message_id": message_id, "text": text, "private": False, "kind": "text"},
        time.time(),
    )


async def _session(server, school) -> int:
    async with server.db() as db:
        live = LiveSession(period_id=school.period.id, started_by_id=school.teacher.id, node="test")
        db.add(live)
        await db.commit()
        return live.id


async def _stored(server, session_id: int) -> dict[str, str]:
    async with server.db() as db:
        rows = (await db.execute(select(ChatMessage).where(ChatMessage.session_id == session_id))).scalars()
        return {m.id: m.text for m in rows}


async def test_the_writer_refuses_a_duplicate_to_its_request_and_acknowledges_the_others(server, school):
    session_id = await _session(server, school)
    writer = RecordsWriter(server.db, interval=0.05)
    writer.start()
    try:
        writer.emit(_message(session_id, school.teacher.id, "m-1", "first"))
        assert await writer.written(5) is True

        ready = asyncio.Event()

        async def request(message_id: str, text: str) -> bool | str:
            writer.emit(_message(session_id, school.teacher.id, message_id, text))
            await ready.wait()  # both requests' events in one batch
            try:
                return await writer.written(5)
            except RecordsRefused:
                return "refused"

        duplicate = asyncio.create_task(request("m-1", "second, same id"))
        other = asyncio.create_task(request("m-2", "third"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        ready.set()
        assert await duplicate == "refused"
        assert await other is True
        # The refusal is told once, to its request; later waits of others are not affected.
        assert await writer.written(5) is True
    finally:
        await writer.close()
    assert await _stored(server, session_id) == {"m-1": "first", "m-2": "third"}


async def test_a_refusal_found_before_the_request_waits_is_still_told(server, school):
    """The batch may be written (by another request's wait) before this request asks whether it is."""
    session_id = await _session(server, school)
    writer = RecordsWriter(server.db)
    writer.emit(_message(session_id, school.teacher.id, "m-1", "first"))
    await writer.flush()

    async def request() -> None:
        writer.emit(_message(session_id, school.teacher.id, "m-1", "again"))
        await writer.flush()
        await writer.written(5)

    with pytest.raises(RecordsRefused):
        await asyncio.create_task(request())
    assert await _stored(server, session_id) == {"m-1": "first"}


# -- end to end --------------------------------------------------------------------------------------
async def test_chat_send_is_refused_when_its_record_is_not_stored(server, school, period):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    room = server.test_server.app[LIVE_ROOMS].rooms[session_id].room
    first = await student.ok("chat:send", {"text": "Em chào cô ạ"})
    room.chat_seq -= 1  # the next message gets the same id again (what a collision did)
    answer = await student.call("chat:send", {"text": "Em hỏi bài 3 ạ"})
    assert answer["ok"] is False and answer["error"]["code"] == "records_refused", answer
    again = await student.ok("chat:send", {"text": "Em hỏi bài 3 ạ"})  # sent again: a new id, stored
    assert again["message_id"] != first["message_id"]
    assert await _stored(server, session_id) == {
        first["message_id"]: "Em chào cô ạ",
        again["message_id"]: "Em hỏi bài 3 ạ",
    }
