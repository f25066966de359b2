"""A room's durable state as plain data: what another node needs to take the room over.

When a node dies or drains, the node that takes its rooms over restores each one from its last snapshot:
who was admitted (with their roles, the teacher's per-person permissions and their resume tokens, so
they come back without the lobby), the locks, the stage, the hand queue, the chat history and whether
the period was being recorded. What belongs to a connection (sockets, media, the lobby) is not kept:
people reconnect, publish and subscribe again, and whoever waited in the lobby knocks again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from signaling.policy import Permissions
from signaling.polls import Poll
from signaling.room import Participant, Room

FORMAT = 1


def snapshot(room: Room) -> dict[str, Any]:
    """The room's durable state, JSON- and msgpack-safe."""
    return {
        "format": FORMAT,
        "session_id": room.session_id,
        "version": room.version,
        "ids": room._ids,
        "ended": room.ended,
        "locks": dict(room.locks),
        "chat": list(room.chat),
        "chat_seq": room.chat_seq,
        "hands": [[pid, at] for pid, at in room.hands],
        "removed_users": sorted(room.removed_users),
        "stage": room.stage,
        "recording_state": room.recording_state,
        "students_recorded": room.students_recorded,
        "poll": room.poll.to_dict() if room.poll is not None else None,  # the latest quick poll, answers kept
        "poll_seq": room.poll_seq,
        "participants": [
            {
                "participant_id": p.participant_id,
                "user_id": p.user_id,
                "name": p.name,
                "personal_id": p.personal_id,
                "role": p.role,
                "on_roster": p.on_roster,
                "overrides": dict(p.permissions.overrides),
                "resume_token": p.resume_token,
                "arrived_at": p.arrived_at,
                "connected": p.connected,
                "media_epoch": p.media_epoch,
            }
            for p in room.participants.values()
            if p.state == "admitted"
        ],
    }


def restore(room: Room, state: dict[str, Any]) -> list[Participant]:
    """Fill a new, empty room from a snapshot. Everyone admitted is back in the room as disconnected
    (their seat kept for the grace period, their resume token honoured); returns them."""
    if state.get("format") != FORMAT or state.get("session_id") != room.session_id:
        raise ValueError("not a snapshot of this room")
    room.version = int(state["version"]) + 1  # clients resync on the next version they see
    room._ids = int(state["ids"])
    room.ended = bool(state["ended"])
    room.locks.update({k: bool(v) for k, v in state["locks"].items() if k in room.locks})
    room.chat = deque(state["chat"], maxlen=room.chat.maxlen)
    room.chat_seq = int(state.get("chat_seq", len(room.chat)))  # a snapshot of an older node has none
    room.removed_users = set(state["removed_users"])
    room.stage = state["stage"]
    if state.get("poll"):  # a snapshot of an older node has none
        room.poll = Poll.from_dict(state["poll"])
        room.poll_counts_due = room.poll.state == "open"
    room.poll_seq = int(state.get("poll_seq", 0))
    now = room.clock()
    seats = []
    for entry in state["participants"]:
        seat = Participant(
            participant_id=entry["participant_id"],
            user_id=entry["user_id"],
            name=entry["name"],
            personal_id=entry["personal_id"],
            role=entry["role"],
            on_roster=entry["on_roster"],
            permissions=Permissions(entry["role"], dict(entry["overrides"])),
            state="admitted",
            resume_token=entry["resume_token"],
            arrived_at=entry["arrived_at"],
            dropped_at=now,
            media_epoch=int(entry["media_epoch"]) + 1,
        )
        room.participants[seat.participant_id] = seat
        seats.append(seat)
    present = {seat.participant_id for seat in seats}
    room.hands = [(pid, at) for pid, at in state["hands"] if pid in present]
    if room.stage not in present:
        room.stage = None
    return seats


def was_connected(state: dict[str, Any]) -> set[int]:
    """The users whose connection was open when the snapshot was taken (their attendance was open)."""
    return {entry["user_id"] for entry in state["participants"] if entry["connected"]}
