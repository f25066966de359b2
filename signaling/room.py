"""One live room: its participants, lobby, chat, hands, locks and permissions. No I/O here.

Every change is made synchronously and leaves the messages to send in `outbox`, which the server
delivers afterwards; domain events go to the sink. So a room is consistent between any two awaits and
can be tested without sockets.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from signaling import events as ev
from signaling import protocol as proto
from signaling.events import EventSink, RoomEvent
from signaling.join_token import JoinClaims
from signaling.media_plan import MediaView
from signaling.policy import (
    LEARNERS,
    LOCKABLE,
    OBSERVER,
    SOURCES,
    TEACHER,
    Permissions,
    lock_covers,
    may,
)
from signaling.polls import PollRules
from signaling.protocol import MAX_CHAT_LENGTH, RoomError

CHAT_HISTORY = 200
# Why an account's connections were closed (you:logged_out), as the person is told.
ACCOUNT_REMOVALS = {
    "logged_out": "You logged out.",
    "account_deactivated": "Your account has been deactivated; ask the school's admin.",
    "password_changed": "Your password was changed; log in again.",
    "password_reset": "Your password was reset by the school's admin; log in with the new one.",
    "role_changed": "Your account's role was changed; log in again.",
    "removed_from_class": "You are no longer in this class's list; ask the school's admin.",
}
CHAT_RATE_COUNT = 5  # at most this many messages ...
CHAT_RATE_WINDOW = 10.0  # ... in any window of this many seconds
# Learners' requests that reach the whole class or write records, limited so that one flooding student
# costs classmates at most a few updates a second: action → (its group, at most COUNT in WINDOW seconds).
LEARNER_LIMITS: dict[str, tuple[str, int, float]] = {
    "hand:raise": ("hands", 6, 10.0),
    "hand:lower": ("hands", 6, 10.0),
    "media:state": ("media", 10, 10.0),
    "media:saver": ("media", 10, 10.0),
    "rtc:publish": ("rtc", 10, 10.0),
    "rtc:subscribe": ("rtc", 10, 10.0),
    "poll:answer": ("polls", 30, 10.0),  # a student's answers to a poll (a quiz has up to 20), changes included
}
KNOCKS = (5, 60.0)  # at most so many arrivals of one account (lobby knocks) in so many seconds


class RateLimit:
    """At most `count` events in any `window` seconds."""

    def __init__(self, count: int, window: float):
        self.window = window
        self.times: deque[float] = deque(maxlen=count)

    def check(self, now: float, what: str) -> None:
        """Count one more, or refuse it with the seconds to wait."""
        if len(self.times) == self.times.maxlen and now - self.times[0] < self.window:
            retry = round(self.window - (now - self.times[0]), 1)
            raise RoomError("rate_limited", f"{what}; wait {retry} s.", retry_after=retry)
        self.times.append(now)


@dataclass
class Participant:
    participant_id: str
    user_id: int
    name: str
    personal_id: str
    role: str
    on_roster: bool
    permissions: Permissions
    sid: str | None = None
    state: str = "lobby"  # lobby → admitted → gone
    resume_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    arrived_at: float = field(default_factory=time.time)
    dropped_at: float | None = None
    media: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(SOURCES, False))
    chat_limit: RateLimit = field(default_factory=lambda: RateLimit(CHAT_RATE_COUNT, CHAT_RATE_WINDOW))
    limits: dict[str, RateLimit] = field(default_factory=dict)  # LEARNER_LIMITS' groups
    was_removed: bool = False  # kicked earlier in this session: the teacher sees it in the lobby
    published: set[str] = field(default_factory=set)  # sources with a publish track (rtc:publish)
    saver: str = "off"  # data saver (media:saver): off, screen or audio; kept across a resume
    grid_first: tuple[str, ...] = ()  # media:grid: whose cameras this viewer's grid slots carry first
    media_epoch: int = 0  # a resume starts new media connections: the old ones belong to an older epoch
    unmuted_at: float = 0.0

    @property
    def connected(self) -> bool:
        return self.sid is not None


@dataclass
class Outgoing:
    sid: str
    event: str
    data: Any
    disconnect_after: bool = False


class Room(PollRules):
    def __init__(
        self,
        session_id: int,
        sink: EventSink,
        *,
        grace_seconds: float = 60.0,
        sees_classmates: bool = False,
        clock: Callable[[], float] = time.time,
    ):
        self.session_id = session_id
        self.sink = sink
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.version = 0
        self.participants: dict[str, Participant] = {}
        self.locks: dict[str, bool] = dict.fromkeys(LOCKABLE, False)
        self.chat: deque[dict[str, Any]] = deque(maxlen=CHAT_HISTORY)
        self.hands: list[tuple[str, float]] = []  # (participant_id, raised_at), in order raised
        self.removed_users: set[int] = set()
        self.stage: str | None = None  # the participant the teacher put on stage
        self.recording = False  # set by the recording control; shown to everyone (rec:status)
        self.recording_state = "off"  # "off" | "recording" | "paused" (a paused recording is still on)
        self.students_recorded: bool | None = None  # while recording: are learners' tracks recorded too?
        self.sees_classmates = sees_classmates  # do students see each other's cameras?
        self.ended = False
        self.outbox: list[Outgoing] = []
        self._knocks: dict[int, RateLimit] = {}  # user → their recent arrivals as a learner
        self.delivery_lock = asyncio.Lock()  # held by the server while it sends the outbox
        self.media_lock = asyncio.Lock()  # held while the media plane is brought in step
        # Changes the media plane must follow, and how many of them it has followed: a settle that
        # waited for the lock while another applied the plan has nothing left to do.
        self.media_changes = 0
        self.media_applied = 0
        self._ids = 0
        # Chat message ids: m{session}-{incarnation}-{seq}. seq counts every message this room ever posted (kept
        # in the snapshot; len(self.chat) stops at CHAT_HISTORY), so one room never repeats an id. incarnation is
        # new, 64 random bits, for every Room object: a room restored from a snapshot older than its last
        # messages (its node died) continues an old seq, and must still not reissue ids already stored.
        self.chat_seq = 0
        self._chat_incarnation = secrets.token_hex(8)
        self.poll = None  # the latest quick poll (signaling/polls.py): open, closed or revealed
        self.poll_seq = 0  # polls opened in this session
        self.poll_counts_due = False  # the teacher's live counts changed; the live room sends them

    # -- helpers -------------------------------------------------------------------------------------
    def _event(
        self, type_: str, actor: Participant | None = None, target: Participant | None = None, **data: Any
    ) -> None:
        self.sink.emit(
            RoomEvent(
                self.session_id,
                type_,
                actor.user_id if actor else None,
                target.user_id if target else None,
                data,
                self.clock(),
            )
        )

    def _send(self, participant: Participant, event: str, data: Any, disconnect_after: bool = False) -> None:
        if participant.sid:
            self.outbox.append(Outgoing(participant.sid, event, data, disconnect_after))

    def _bump(self) -> int:
        self.version += 1
        return self.version

    def present(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.state == "admitted"]

    def teachers(self) -> list[Participant]:
        return [p for p in self.present() if p.role == TEACHER]

    def lobby(self) -> list[Participant]:
        return sorted((p for p in self.participants.values() if p.state == "lobby"), key=lambda p: p.arrived_at)

    @property
    def teacher_present(self) -> bool:
        return any(p.connected for p in self.teachers())

    def by_sid(self, sid: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.sid == sid and p.state != "gone"), None)

    def _by_user(self, user_id: int) -> Participant | None:
        return next((p for p in self.participants.values() if p.user_id == user_id and p.state != "gone"), None)

    def _target(self, participant_id: str) -> Participant:
        target = self.participants.get(participant_id)
        if target is None or target.state != "admitted":
            raise RoomError("unknown_participant", "That person is not in the room.")
        return target

    @staticmethod
    def _sees(viewer: Participant, subject: Participant) -> bool:
        # Observers visit silently: only the teacher (and other observers) see them listed.
        return subject.role != OBSERVER or viewer.role in (TEACHER, OBSERVER)

    def view(self, subject: Participant, viewer: Participant) -> dict[str, Any]:
        data: dict[str, Any] = {
            "participant_id": subject.participant_id,
            "name": subject.name,
            "role": subject.role,
            "connection": "connected" if subject.connected else "reconnecting",
            "media": dict(subject.media),
            "permissions": subject.permissions.effective(self.locks),
        }
        if viewer.role == TEACHER:
            data |= {"personal_id": subject.personal_id, "on_roster": subject.on_roster, "user_id": subject.user_id}
        return data

    def _broadcast(
        self,
        event: str,
        make: Callable[[Participant], Any],
        about: Participant | None = None,
        exclude: Participant | None = None,
    ) -> None:
        for viewer in self.present():
            if viewer is exclude or (about is not None and not self._sees(viewer, about)):
                continue
            self._send(viewer, event, make(viewer))

    def _participant_updated(self, subject: Participant) -> None:
        version = self._bump()
        self._broadcast(
            "participant:updated", lambda v: {"version": version, "participant": self.view(subject, v)}, about=subject
        )

    def _lobby_entry(self, p: Participant) -> dict[str, Any]:
        return {
            "participant_id": p.participant_id,
            "name": p.name,
            "personal_id": p.personal_id,
            "role": p.role,
            "on_roster": p.on_roster,
            "was_removed": p.was_removed,
            "arrived_at": p.arrived_at,
        }

    def _send_lobby_to_teachers(self) -> None:
        lobby = [self._lobby_entry(p) for p in self.lobby()]
        for teacher in self.teachers():
            self._send(teacher, "lobby:updated", {"lobby": lobby})

    def _tell_lobby_waiting(self) -> None:
        for p in self.lobby():
            self._send(p, "lobby:waiting", {"teacher_present": self.teacher_present, "locked": self.locks["room"]})

    def state_for(self, viewer: Participant) -> dict[str, Any]:
        """The full snapshot a participant needs on join and on resync."""
        return {
            "version": self.version,
            "session_id": self.session_id,
            "you": {
                "participant_id": viewer.participant_id,
                "role": viewer.role,
                "name": viewer.name,
                "permissions": viewer.permissions.effective(self.locks),
                "media": dict(viewer.media),
                "resume_token": viewer.resume_token,
            },
            "participants": [self.view(p, viewer) for p in self.present() if self._sees(viewer, p)],
            "hands": self.hand_queue(),
            "locks": dict(self.locks),
            "chat": [m for m in self.chat if self._may_read(viewer, m)],
            "recording": self.recording,
            "recording_state": self.recording_state,
            "students_recorded": self.students_recorded,
            "stage": self.stage,
            "lobby": [self._lobby_entry(p) for p in self.lobby()] if viewer.role == TEACHER else None,
            "poll": self.poll_view(viewer),
        }

    def _send_state(self, p: Participant) -> None:
        self._send(p, "room:state", self.state_for(p))

    # -- arrival, departure, reconnect ----------------------------------------------------------------
    def arrive(self, sid: str, claims: JoinClaims, resume_token: Any = None) -> Participant:
        """A connection with an accepted join token. Raises RoomError to refuse it."""
        if self.ended:
            raise RoomError("session_ended", "The period has ended.")
        seat = self._by_user(claims.user_id)
        if (
            seat is not None
            and seat.state == "admitted"
            and isinstance(resume_token, str)
            and secrets.compare_digest(resume_token, seat.resume_token)
        ):
            return self._resume(seat, sid)
        if self.locks["room"] and claims.room_role in LEARNERS:
            # Checked before anything changes: a refused second tab does not cost the first its seat.
            raise RoomError("room_locked", "The teacher has locked the room; try again later.")
        if claims.room_role in LEARNERS:  # each knock reaches the teacher and the records
            self._knocks.setdefault(claims.user_id, RateLimit(*KNOCKS)).check(
                self.clock(), "You have knocked too often; the teacher has seen you"
            )
        if seat is not None:
            # The same account again without the seat's resume token (another tab or device): the
            # newest connection wins and the older one is closed, so one person is never in twice.
            self._replace(seat)
        participant = Participant(
            participant_id=self._new_id(),
            user_id=claims.user_id,
            name=claims.name,
            personal_id=claims.personal_id,
            role=claims.room_role,
            on_roster=claims.on_roster,
            permissions=Permissions(claims.room_role, {}),
            sid=sid,
            arrived_at=self.clock(),
            was_removed=claims.user_id in self.removed_users,
        )
        self.participants[participant.participant_id] = participant
        if participant.role in LEARNERS or participant.was_removed:
            # Everyone a teacher has not let in waits, rostered or not, even before the teacher arrives;
            # so does anyone the teacher removed earlier, observers included.
            self._event(ev.LOBBY_ENTERED, participant, participant, on_roster=participant.on_roster)
            self._send(participant, "lobby:waiting", {"teacher_present": self.teacher_present, "locked": False})
            self._send_lobby_to_teachers()
        else:
            self._enter(participant, None)
        return participant

    def _new_id(self) -> str:
        self._ids += 1
        return f"p{self._ids}-{secrets.token_hex(3)}"

    def _enter(self, participant: Participant, admitted_by: Participant | None) -> None:
        participant.state = "admitted"
        if admitted_by is None:
            self._event(ev.PARTICIPANT_JOINED, participant, participant, room_role=participant.role)
        version = self._bump()
        self._broadcast(
            "participant:joined",
            lambda v: {"version": version, "participant": self.view(participant, v)},
            about=participant,
            exclude=participant,
        )
        if admitted_by is not None:
            self._send(participant, "lobby:admitted", {"admitted_by": admitted_by.name})
        self._send_state(participant)
        if participant.role == TEACHER:
            self._tell_lobby_waiting()
        self._poll_people_changed()

    def _resume(self, seat: Participant, sid: str) -> Participant:
        if seat.sid is not None:  # the old connection is still open: close it quietly
            self.outbox.append(Outgoing(seat.sid, "you:replaced", {"reason": "resumed"}, True))
        seat.sid = sid
        seat.dropped_at = None
        seat.published = set()  # the client publishes and subscribes again on its new connection
        seat.media = dict.fromkeys(SOURCES, False)
        seat.media_epoch += 1
        self._event(ev.PARTICIPANT_RECONNECTED, seat, seat, room_role=seat.role)
        self._send_state(seat)
        self._participant_updated(seat)
        if seat.role == TEACHER:
            self._tell_lobby_waiting()
        return seat

    def _replace(self, seat: Participant) -> None:
        if seat.sid is not None:
            self.outbox.append(
                Outgoing(
                    seat.sid,
                    "you:replaced",
                    {
                        "reason": "signed_in_elsewhere",
                        "message": "You joined this period from another tab or device; this one is closed.",
                    },
                    True,
                )
            )
        self._leave(seat, "replaced")

    def disconnected(self, sid: str, reason: str = "dropped") -> Participant | None:
        """The connection is gone. Lobby: leave. Room: keep the seat for the grace period. `reason`:
        dropped (the network), or node_moving (the server handed the room to another node)."""
        participant = self.by_sid(sid)
        if participant is None:
            return None
        participant.sid = None
        if participant.state == "lobby":
            self._leave(participant, "left")
            return None
        participant.dropped_at = self.clock()
        participant.published = set()  # its publish connection goes with it; a resume publishes anew
        participant.media = dict.fromkeys(SOURCES, False)  # nothing is sent while the connection is gone
        self._event(
            ev.PARTICIPANT_DROPPED, participant, participant, **({} if reason == "dropped" else {"reason": reason})
        )
        self._participant_updated(participant)
        if participant.role == TEACHER:
            self._tell_lobby_waiting()
        return participant

    def expire_seat(self, participant_id: str) -> bool:
        """Called when the grace period after a drop has passed; True if the participant left now."""
        participant = self.participants.get(participant_id)
        if participant is None or participant.state == "gone" or participant.connected:
            return False
        if self.clock() - (participant.dropped_at or 0) < self.grace_seconds - 0.001:
            return False
        self._leave(participant, "grace_expired")
        return True

    def leave(self, participant: Participant, reason: str = "left") -> None:
        self._leave(participant, reason)

    def _leave(self, participant: Participant, reason: str, tell_others: bool = True) -> None:
        """`participant` leaves: recorded, and told to the others unless the room is ending for all of them
        (then each only gets room:ended, not one message per classmate: 45 students, not 45² messages)."""
        was = participant.state
        participant.state = "gone"
        self.hands = [(pid, at) for pid, at in self.hands if pid != participant.participant_id]
        if self.stage == participant.participant_id:  # the stage empties, and everyone sees it
            self.stage = None
            self._event(ev.STAGE_CHANGED, None, None)
            stage_version = self._bump()
            if tell_others:
                self._broadcast("room:stage", lambda v: {"version": stage_version, "participant_id": None})
        if was == "lobby":
            self._event(ev.LOBBY_LEFT, participant, participant, reason=reason)
            if tell_others:
                self._send_lobby_to_teachers()
            return
        self._event(ev.PARTICIPANT_LEFT, participant, participant, reason=reason, dropped_at=participant.dropped_at)
        if not tell_others:
            return
        version = self._bump()
        self._broadcast(
            "participant:left",
            lambda v: {"version": version, "participant_id": participant.participant_id, "reason": reason},
            about=participant,
        )
        self._broadcast_hands()
        if participant.role == TEACHER:
            self._tell_lobby_waiting()
        self._poll_people_changed()

    def remove_user(self, user_id: int, reason: str = "logged_out") -> Participant | None:
        """The account logged out, or lost its right to be here (e.g. it was deactivated): it leaves now."""
        participant = self._by_user(user_id)
        if participant is not None:
            self._send(
                participant,
                "you:logged_out",
                {"reason": reason, "message": ACCOUNT_REMOVALS.get(reason, "You were signed out.")},
                disconnect_after=True,
            )
            self._leave(participant, reason)
        return participant

    def end(
        self,
        by: Participant | None,
        by_user_id: int | None = None,
        by_name: str | None = None,
        reason: str | None = None,
    ) -> None:
        """End the period: `by` in the room, or the user who ended it over HTTP, or the server (`reason`:
        auto_ended when nobody was in it long after its period)."""
        if self.ended:
            return
        self.close_poll_at_end()
        self.ended = True
        name = by.name if by else by_name
        extra = {"reason": reason} if reason else {}
        for participant in list(self.participants.values()):
            if participant.state == "gone":
                continue
            self._send(
                participant,
                "room:ended",
                {"session_id": self.session_id, "ended_by": name, **extra},
                disconnect_after=True,
            )
            self._leave(participant, "ended", tell_others=False)
        self.sink.emit(
            RoomEvent(self.session_id, ev.ROOM_ENDED, by.user_id if by else by_user_id, None, extra, self.clock())
        )

    @property
    def abandoned(self) -> bool:
        """Nobody connected (in the room or its lobby) and no seat kept for a dropped connection's resume."""
        return not any(p.state != "gone" and (p.connected or p.state == "admitted") for p in self.participants.values())

    # -- media -------------------------------------------------------------------------------------
    def media_views(self) -> list[MediaView]:
        """The connected participants as the media plan sees them."""
        return [
            MediaView(
                p.participant_id,
                p.role,
                frozenset(p.published),
                frozenset(s for s, on in p.media.items() if on),
                frozenset(s for s in SOURCES if p.permissions.allowed(s, self.locks)),
                p.unmuted_at,
                p.saver,
                p.grid_first,
            )
            for p in self.present()
            if p.connected
        ]

    def add_published(self, participant: Participant, sources: set[str]) -> None:
        participant.published |= sources

    # -- requests ------------------------------------------------------------------------------------
    def authorize(self, participant: Participant, action: str, payload: Any) -> None:
        """The policy check every request passes first."""
        policy_action = "chat:send_private" if action == "chat:send" and payload.to is not None else action
        if not may(participant.role, policy_action):
            raise RoomError("forbidden", f"Your role ({participant.role}) may not do {policy_action}.")
        if participant.state != "admitted" and action not in ("room:leave", "room:sync"):
            raise RoomError("not_admitted", "Wait until the teacher lets you in.")
        if participant.role in LEARNERS and action in LEARNER_LIMITS:
            group, count, window = LEARNER_LIMITS[action]
            participant.limits.setdefault(group, RateLimit(count, window)).check(self.clock(), "Too many requests")

    def handle(self, participant: Participant, action: str, payload: Any) -> Any:
        """Run one request after the policy check; returns the acknowledgement's data."""
        self.authorize(participant, action, payload)
        return getattr(self, "_on_" + action.replace(":", "_"))(participant, payload)

    def _on_room_sync(self, p: Participant, payload: proto.Empty) -> dict[str, Any]:
        return self.state_for(p) if p.state == "admitted" else {"lobby": True, "teacher_present": self.teacher_present}

    def _on_room_leave(self, p: Participant, payload: proto.Empty) -> None:
        self._send(p, "room:left", {"session_id": self.session_id}, disconnect_after=True)
        self._leave(p, "left")

    def _on_room_end(self, p: Participant, payload: proto.Empty) -> None:
        self.end(p)

    # lobby
    def _lobby_targets(self, payload: proto.AdmitRequest) -> list[Participant]:
        if payload.all:
            return self.lobby()
        targets = []
        for pid in dict.fromkeys(payload.participant_ids):  # each person once, in the order given
            target = self.participants.get(pid)
            if target is None or target.state != "lobby":
                raise RoomError("not_in_lobby", f"{pid} is not waiting in the lobby.")
            targets.append(target)
        return targets

    def _on_lobby_admit(self, teacher: Participant, payload: proto.AdmitRequest) -> dict[str, Any]:
        targets = self._lobby_targets(payload)
        for target in targets:
            self._knocks.pop(target.user_id, None)  # let in: earlier knocks no longer count against them
            self._event(
                ev.LOBBY_ADMITTED,
                teacher,
                target,
                room_role=target.role,
                waited_seconds=round(self.clock() - target.arrived_at, 3),
            )
            self._enter(target, teacher)
        self._send_lobby_to_teachers()
        return {"admitted": [t.participant_id for t in targets]}

    def _on_lobby_deny(self, teacher: Participant, payload: proto.DenyRequest) -> dict[str, Any]:
        targets = self._lobby_targets(payload)
        for target in targets:
            self._event(ev.LOBBY_DENIED, teacher, target, reason=payload.reason)
            self._send(target, "lobby:denied", {"reason": payload.reason}, disconnect_after=True)
            target.state = "gone"
        self._send_lobby_to_teachers()
        return {"denied": [t.participant_id for t in targets]}

    # chat
    @staticmethod
    def _may_read(viewer: Participant, message: dict[str, Any]) -> bool:
        if message["to"] is None or viewer.role == TEACHER:
            return True
        return viewer.participant_id in (message["from"]["participant_id"], message["to"]["participant_id"])

    def _on_chat_send(self, sender: Participant, payload: proto.ChatSend) -> dict[str, Any]:
        text = payload.text.strip()
        if not text:
            raise RoomError("empty_message", "The message is empty.")
        if len(text) > MAX_CHAT_LENGTH:
            raise RoomError("message_too_long", f"A message may have at most {MAX_CHAT_LENGTH} characters.")
        recipient = None
        if payload.to is not None:
            recipient = self._target(payload.to)
            if recipient is sender:
                raise RoomError("invalid_recipient", "You cannot write to yourself.")
            if sender.role != TEACHER and recipient.role != TEACHER:
                raise RoomError("forbidden", "Private messages go to the teacher only.")
            if sender.permissions.overrides.get("chat") is False:
                raise RoomError("chat_muted", "The teacher has turned off your chat.")
        else:
            if sender.role == OBSERVER:
                raise RoomError("forbidden", "Observers write privately to the teacher only.")
            if not sender.permissions.allowed("chat", self.locks):
                code = "chat_muted" if sender.permissions.overrides.get("chat") is False else "chat_locked"
                raise RoomError(
                    code,
                    "The teacher has turned off chat."
                    if code == "chat_locked"
                    else "The teacher has turned off your chat.",
                )
        if sender.role != TEACHER:
            sender.chat_limit.check(self.clock(), "You are sending messages too fast")
        message = self._post(sender, text, recipient)
        return {"message_id": message["message_id"]}

    def _post(
        self, sender: Participant, text: str, recipient: Participant | None, kind: str = "text", **extra: Any
    ) -> dict[str, Any]:
        self.chat_seq += 1
        message = {
            "message_id": f"m{self.session_id}-{self._chat_incarnation}-{self.chat_seq}",
            "from": {"participant_id": sender.participant_id, "name": sender.name, "role": sender.role},
            "to": ({"participant_id": recipient.participant_id, "name": recipient.name} if recipient else None),
            "text": text,
            "at": self.clock(),
            "kind": kind,
            "deleted": False,
            **extra,
        }
        self.chat.append(message)
        self._event(
            ev.CHAT_MESSAGE,
            sender,
            recipient,
            message_id=message["message_id"],
            text=text,
            private=recipient is not None,
            kind=kind,
            **extra,
        )
        for viewer in self.present():
            if self._may_read(viewer, message):
                self._send(viewer, "chat:message", message)
        return message

    def _on_chat_delete(self, teacher: Participant, payload: proto.ChatDelete) -> dict[str, Any]:
        message = next((m for m in self.chat if m["message_id"] == payload.message_id), None)
        if message is None:
            raise RoomError("unknown_message", "That message does not exist.")
        if not message["deleted"]:
            message.update(deleted=True, text="", deleted_by=teacher.name)
            message.pop("handout", None)
            self._event(ev.CHAT_DELETED, teacher, None, message_id=message["message_id"])
            for viewer in self.present():
                if self._may_read(viewer, message):
                    self._send(
                        viewer, "chat:deleted", {"message_id": message["message_id"], "deleted_by": teacher.name}
                    )
        return {"message_id": message["message_id"]}

    def share_handout(self, uploader_user_id: int, handout: dict[str, Any]) -> dict[str, Any]:
        """A handout uploaded over HTTP is announced in the chat, from the teacher who gave it out."""
        sender = self._by_user(uploader_user_id)
        if sender is None or sender.state != "admitted":
            raise RoomError("not_in_room", "Join the room before handing out material.")
        return self._post(sender, handout["filename"], None, kind="handout", handout=dict(handout))

    # hands
    def hand_queue(self) -> list[dict[str, Any]]:
        return [
            {"participant_id": pid, "name": self.participants[pid].name, "position": i + 1, "raised_at": at}
            for i, (pid, at) in enumerate(self.hands)
        ]

    def _broadcast_hands(self) -> None:
        queue = self.hand_queue()
        self._broadcast("hand:queue", lambda v: {"hands": queue})

    def _on_hand_raise(self, p: Participant, payload: proto.Empty) -> dict[str, Any]:
        if all(pid != p.participant_id for pid, _ in self.hands):
            self.hands.append((p.participant_id, self.clock()))
            self._event(ev.HAND_RAISED, p, p, position=len(self.hands))
            self._broadcast_hands()
        position = next(i + 1 for i, (pid, _) in enumerate(self.hands) if pid == p.participant_id)
        return {"position": position}

    def _on_hand_lower(self, p: Participant, payload: proto.HandLower) -> dict[str, Any]:
        if p.role != TEACHER and (payload.all or payload.participant_id not in (None, p.participant_id)):
            raise RoomError("forbidden", "You can only lower your own hand.")
        if payload.all:
            lowered = [pid for pid, _ in self.hands]
        else:
            lowered = [payload.participant_id or p.participant_id]
        lowered = [pid for pid in lowered if any(h == pid for h, _ in self.hands)]
        if lowered:
            self.hands = [(pid, at) for pid, at in self.hands if pid not in lowered]
            for pid in lowered:
                self._event(ev.HAND_LOWERED, p, self.participants[pid])
            self._broadcast_hands()
        return {"lowered": lowered}

    # media state (the media plane enforces it on the forwarded tracks)
    def _on_media_state(self, p: Participant, payload: proto.MediaState) -> dict[str, Any]:
        changes = {k: v for k, v in payload.model_dump().items() if v is not None}
        for source, on in changes.items():
            if on and not p.permissions.allowed(source, self.locks):
                raise RoomError("not_permitted", f"You may not turn on your {source} now.", source=source)
        changed = {k: v for k, v in changes.items() if p.media[k] != v}
        if changed.get("microphone"):
            p.unmuted_at = self.clock()  # the latest speakers get the audio slots
        if changed:
            p.media.update(changed)
            self._event(ev.MEDIA_CHANGED, p, p, **changed)
            self._participant_updated(p)
        return {"media": dict(p.media)}

    def _on_media_saver(self, p: Participant, payload: proto.SaverRequest) -> dict[str, Any]:
        """Data saver: what this participant receives (the media plan reads it); not a record."""
        p.saver = payload.mode
        return {"mode": p.saver}

    def _on_media_grid(self, p: Participant, payload: proto.GridRequest) -> dict[str, Any]:
        """The teacher's gallery page: those students' cameras fill her grid slots first (the media plan reads
        it); not a record."""
        p.grid_first = tuple(dict.fromkeys(payload.participant_ids))
        return {"participant_ids": list(p.grid_first)}

    def _force_off(self, target: Participant, source: str, by: Participant) -> None:
        if target.media.get(source):
            target.media[source] = False
            self._event(ev.MEDIA_MUTED, by, target, source=source)
            self._send(target, "you:muted", {"source": source, "by": by.name})

    # moderation
    def _on_mod_mute(self, teacher: Participant, payload: proto.MuteRequest) -> dict[str, Any]:
        target = self._target(payload.participant_id)
        was_on = target.media.get(payload.source, False)
        self._force_off(target, payload.source, teacher)
        if was_on:
            self._participant_updated(target)
        return {"muted": was_on}

    def _on_mod_kick(self, teacher: Participant, payload: proto.KickRequest) -> dict[str, Any]:
        target = self._target(payload.participant_id)
        if target.role == TEACHER:
            raise RoomError("forbidden", "The teacher cannot be removed.")
        self.removed_users.add(target.user_id)
        self._event(ev.PARTICIPANT_KICKED, teacher, target, reason=payload.reason)
        self._send(target, "you:kicked", {"reason": payload.reason, "by": teacher.name}, disconnect_after=True)
        self._leave(target, "kicked")
        return {"removed": target.participant_id}

    def _on_mod_lock(self, teacher: Participant, payload: proto.LockRequest) -> dict[str, Any]:
        if self.locks[payload.what] != payload.locked:
            self.locks[payload.what] = payload.locked
            self._event(ev.LOCK_CHANGED, teacher, None, what=payload.what, locked=payload.locked)
            covered = lock_covers(payload.what)
            if payload.locked and covered:
                for p in self.present():
                    if p.role in LEARNERS:
                        if p.permissions.overrides.get(covered) is True:
                            del p.permissions.overrides[covered]  # locking again takes back the floor
                        if covered in p.media:
                            self._force_off(p, covered, teacher)
            version = self._bump()
            for p in self.present():
                self._send(p, "room:locks", {"version": version, "locks": dict(self.locks)})
                self._send(p, "you:permissions", {"permissions": p.permissions.effective(self.locks)})
            for p in self.present():
                if p.role in LEARNERS:  # their permissions (and maybe media) changed: lists stay true
                    self._participant_updated(p)
            if payload.what == "room":
                self._tell_lobby_waiting()
        return {"locks": dict(self.locks)}

    def _on_mod_permit(self, teacher: Participant, payload: proto.PermitRequest) -> dict[str, Any]:
        target = self._target(payload.participant_id)
        if target.role == TEACHER:
            raise RoomError("forbidden", "The teacher's permissions cannot be changed.")
        changes = {k: v for k, v in payload.permissions.model_dump().items() if v is not None}
        if target.role == OBSERVER and any(changes.values()):
            raise RoomError("forbidden", "Observers only watch; they cannot be given permissions.")
        target.permissions.overrides.update(changes)
        effective = target.permissions.effective(self.locks)
        for source in SOURCES:
            if not effective[source]:  # a revoke stops what is on, at once
                self._force_off(target, source, teacher)
        self._event(ev.PERMISSIONS_CHANGED, teacher, target, **changes)
        self._send(target, "you:permissions", {"permissions": effective, "by": teacher.name})
        self._participant_updated(target)
        return {"permissions": effective}

    def _on_mod_stage(self, teacher: Participant, payload: proto.StageRequest) -> dict[str, Any]:
        """Put one student on stage (everyone sees their camera), or nobody (participant_id null)."""
        target = self._target(payload.participant_id) if payload.participant_id else None
        if target is not None and target.role not in LEARNERS:
            raise RoomError("forbidden", "Only a student or a guest can be put on stage.")
        new = target.participant_id if target else None
        if new != self.stage:
            self.stage = new
            self._event(ev.STAGE_CHANGED, teacher, target)
            version = self._bump()
            self._broadcast("room:stage", lambda v: {"version": version, "participant_id": new})
        return {"participant_id": new}
