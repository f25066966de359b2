"""Domain events: what happened in a live room, reported to a sink that the application injects.

The room never writes a database itself (no SQL in signaling); `liveclass/` stores these as the
session's records. Events are plain data with the time they happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class RoomEvent:
    session_id: int
    type: str
    actor_user_id: int | None = None  # who did it (None: the server itself)
    target_user_id: int | None = None  # whom it concerns
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


# The event types, for readers of the records (docs/protocol.md lists their data).
PARTICIPANT_JOINED = "participant_joined"  # entered without the lobby (teacher, observer)
LOBBY_ENTERED = "lobby_entered"
LOBBY_LEFT = "lobby_left"
LOBBY_ADMITTED = "lobby_admitted"
LOBBY_DENIED = "lobby_denied"
PARTICIPANT_DROPPED = "participant_dropped"  # connection lost: attendance closes now, seat kept for the grace
PARTICIPANT_RECONNECTED = "participant_reconnected"
PARTICIPANT_LEFT = "participant_left"  # data.reason: left, grace_expired, kicked, ended, logged_out, replaced,
#                                        server_stopped
CHAT_MESSAGE = "chat_message"
CHAT_DELETED = "chat_deleted"
HAND_RAISED = "hand_raised"
HAND_LOWERED = "hand_lowered"
PERMISSIONS_CHANGED = "permissions_changed"
MEDIA_CHANGED = "media_changed"
MEDIA_MUTED = "media_muted"
PARTICIPANT_KICKED = "participant_kicked"
LOCK_CHANGED = "lock_changed"
STAGE_CHANGED = "stage_changed"  # target: who is on stage now (None: nobody)
REC_STARTED = "recording_started"
REC_STOPPED = "recording_stopped"  # data.reason when it stopped by itself (e.g. disk_full)
REC_PAUSED = "recording_paused"  # nothing is written until recording_resumed (or recording_stopped)
REC_RESUMED = "recording_resumed"
RECORDING_SAVED = "recording_saved"  # data.manifest: the files, on the session clock, with checksums
ROOM_ENDED = "room_ended"
POLL_OPENED = "poll_opened"  # a quick poll (signaling/polls.py); data: the poll's settings
POLL_ANSWERED = "poll_answered"  # actor: the student; data: poll_id, question, choices | text, correct, points,
#                                  answered_at, changed
POLL_QUESTION = "poll_question"  # a quiz shown one question at a time moved on; data: poll_id, question
POLL_CLOSED = "poll_closed"  # data: poll_id, counts, answered, eligible, not_answered_user_ids, questions, reason?
POLL_REVEALED = "poll_revealed"  # data: poll_id, show_correct


class RecordsRefused(Exception):
    """The store refused an event the waiting request emitted (e.g. a duplicate id): it is not stored and
    never will be. The request must not be answered `ok`."""


class EventSink(Protocol):
    def emit(self, event: RoomEvent) -> None:
        """Take the event without blocking the room (buffer it; write it later)."""

    async def written(self, timeout: float) -> bool:
        """Wait until every event emitted so far is in the store (False: not within `timeout` seconds).
        A request's acknowledgement waits for it, so an `ok` means the records hold what it did. Raises
        RecordsRefused if an event the waiting task emitted was refused by the store (it is not stored)."""


class ListSink:
    """Keeps events in memory: for a server run without a store, and for reading in tests."""

    def __init__(self) -> None:
        self.events: list[RoomEvent] = []

    def emit(self, event: RoomEvent) -> None:
        self.events.append(event)

    async def written(self, timeout: float) -> bool:
        return True
