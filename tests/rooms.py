"""Rooms without I/O, for tests of the room rules: join claims, and a room with its teacher and a student in."""

from __future__ import annotations

import time
import uuid
from typing import Callable

from signaling.events import ListSink
from signaling.join_token import JoinClaims
from signaling.protocol import AdmitRequest, parse
from signaling.room import Participant, Room

SESSION_ID = 7


def claims(user_id: int, role: str, name: str) -> JoinClaims:
    """What an accepted join token of session SESSION_ID says about this account."""
    return JoinClaims(
        user_id, SESSION_ID, role, name, f"00120000{user_id:04d}", True, uuid.uuid4().hex, time.time() + 60
    )


def class_in_progress(clock: Callable[[], float] = time.time) -> tuple[Room, Participant, Participant]:
    """Cô Hà's room with Ánh admitted: (room, teacher, student)."""
    room = Room(SESSION_ID, ListSink(), clock=clock)
    teacher = room.arrive("sid-t", claims(1, "teacher", "Cô Hà"))
    student = room.arrive("sid-s", claims(2, "student", "Ánh"))
    room.handle(teacher, "lobby:admit", parse(AdmitRequest, {"all": True}))
    return room, teacher, student
