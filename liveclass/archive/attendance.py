"""Attendance worked out from what the live room stored: presence intervals and session events.

For one session, one line per person who was in the room, plus every student enrolled in the class
who never came (absent). For a class over a date range, one line per enrolled student.

Definitions (docs/api.md repeats them for the people who read the numbers):
- present: the sum of the person's presence intervals (a dropped connection ends one, a reconnect
  starts the next); an interval still open counts until the session ended (or now, if it runs).
- late: arrival (the first lobby entry, or the first entry into the room for those who skip the
  lobby) after the lesson began — the period's start, or the session's start if the teacher opened
  the room later. Arriving up to LATE_GRACE after that is on time (connecting takes a moment).
- camera / microphone / screen minutes: time the source was on while present (the room turns every
  source off when a connection drops and on rejoin).
- status: present / late / absent (enrolled, never came); and for those who knocked but never got in:
  denied (the teacher refused them) or not_admitted (they waited in the lobby and were never let in).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.models import (
    AttendanceInterval,
    Enrollment,
    LiveSession,
    Period,
    SessionEvent,
    User,
    utcnow,
)
from signaling import events as ev

LATE_GRACE = timedelta(minutes=1)
SOURCES = ("camera", "microphone", "screen")
_ARRIVALS = {ev.LOBBY_ENTERED, ev.PARTICIPANT_JOINED, ev.LOBBY_ADMITTED}
_LOBBY_DECISIONS = {ev.LOBBY_ADMITTED, ev.LOBBY_DENIED}
_COUNTED = {ev.HAND_RAISED: "hands_raised", ev.CHAT_MESSAGE: "messages"}


def name_order(name: str) -> tuple[str, str]:
    """How a Vietnamese class register orders people: by given name (the last word), then the full
    name; letters with marks right after their base letter (Ánh with Anh, Đ after D)."""

    def plain(text: str) -> str:
        text = text.casefold().replace("đ", "dz")  # đ sorts after every other d
        return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))

    words = name.split()
    return plain(words[-1] if words else ""), plain(name)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _minutes(seconds: float) -> float:
    return round(seconds / 60, 1)


@dataclass
class Stretch:
    joined_at: datetime
    left_at: datetime | None
    end_reason: str | None


@dataclass
class ParticipantAttendance:
    user_id: int
    name: str
    personal_id: str
    room_role: str
    enrolled: bool = False
    stretches: list[Stretch] = field(default_factory=list)
    arrived_at: datetime | None = None
    seconds_present: float = 0.0
    seconds_late: float = 0.0
    media_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0.0))
    hands_raised: int = 0
    messages: int = 0
    admitted_by: str | None = None  # the name of who let them in from the lobby
    denied_by: str | None = None
    denied_reason: str | None = None

    @property
    def status(self) -> str:
        if not self.stretches:
            if self.denied_by:
                return "denied"
            return "not_admitted" if self.arrived_at else "absent"
        return "late" if self.seconds_late > LATE_GRACE.total_seconds() else "present"

    def view(self) -> dict:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "personal_id": self.personal_id,
            "room_role": self.room_role,
            "enrolled": self.enrolled,
            "status": self.status,
            "arrived_at": iso(self.arrived_at),
            "intervals": [
                {"joined_at": iso(s.joined_at), "left_at": iso(s.left_at), "end_reason": s.end_reason}
                for s in self.stretches
            ],
            "minutes_present": _minutes(self.seconds_present),
            "minutes_late": _minutes(self.seconds_late),
            "camera_minutes": _minutes(self.media_seconds["camera"]),
            "microphone_minutes": _minutes(self.media_seconds["microphone"]),
            "screen_minutes": _minutes(self.media_seconds["screen"]),
            "hands_raised": self.hands_raised,
            "messages": self.messages,
            "admitted_by": self.admitted_by,
            "denied_by": self.denied_by,
            "denied_reason": self.denied_reason,
        }


def lesson_start(session: LiveSession, period: Period) -> datetime:
    return max(period.starts_at, session.started_at)


def _media_seconds(
    events: list[SessionEvent], stretches: list[Stretch], end_of: Callable[[Stretch], datetime]
) -> dict[str, float]:
    """Time each source was on, counted only inside presence stretches."""
    total = dict.fromkeys(SOURCES, 0.0)
    for stretch in stretches:
        stop = end_of(stretch)
        on_since: dict[str, datetime] = {}
        for event in events:
            if not (stretch.joined_at <= event.at <= stop):
                continue
            data = event.data or {}
            if event.type == ev.MEDIA_CHANGED:
                changes = {s: bool(data[s]) for s in SOURCES if s in data}
            elif event.type == ev.MEDIA_MUTED and data.get("source") in SOURCES:
                changes = {data["source"]: False}
            else:
                continue
            for source, on in changes.items():
                if on and source not in on_since:
                    on_since[source] = event.at
                elif not on and source in on_since:
                    total[source] += (event.at - on_since.pop(source)).total_seconds()
        for source, since in on_since.items():
            total[source] += max(0.0, (stop - since).total_seconds())
    return total


async def session_attendance(
    db: AsyncSession, session: LiveSession, period: Period, now: datetime | None = None
) -> list[ParticipantAttendance]:
    """Everyone who was in the session, then the enrolled students who never came; by name."""
    now = now or utcnow()
    intervals = (
        (
            await db.execute(
                select(AttendanceInterval)
                .where(AttendanceInterval.session_id == session.id)
                .order_by(AttendanceInterval.joined_at, AttendanceInterval.id)
            )
        )
        .scalars()
        .all()
    )
    events = (
        (
            await db.execute(
                select(SessionEvent)
                .where(
                    SessionEvent.session_id == session.id,
                    SessionEvent.type.in_(
                        _ARRIVALS | _LOBBY_DECISIONS | set(_COUNTED) | {ev.MEDIA_CHANGED, ev.MEDIA_MUTED}
                    ),
                )
                .order_by(SessionEvent.at, SessionEvent.id)
            )
        )
        .scalars()
        .all()
    )
    enrolled_ids = set(
        (await db.execute(select(Enrollment.student_id).where(Enrollment.class_id == period.class_id))).scalars()
    )
    knocked_ids = {e.target_id for e in events if e.type == ev.LOBBY_ENTERED and e.target_id is not None}
    deciders_ids = {e.actor_id for e in events if e.type in _LOBBY_DECISIONS and e.actor_id is not None}
    people_ids = {i.user_id for i in intervals} | enrolled_ids | knocked_ids | deciders_ids
    people = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(people_ids)))).scalars()}

    def end_of(stretch: Stretch) -> datetime:
        return stretch.left_at or session.ended_at or now

    lines: dict[int, ParticipantAttendance] = {}
    for interval in intervals:
        who = people.get(interval.user_id)
        if who is None:
            continue
        line = lines.setdefault(
            who.id,
            ParticipantAttendance(who.id, who.full_name, who.personal_id, interval.room_role, who.id in enrolled_ids),
        )
        line.stretches.append(Stretch(interval.joined_at, interval.left_at, interval.end_reason))
    for user_id in (enrolled_ids | knocked_ids) - set(lines):
        if (who := people.get(user_id)) is not None:
            lines[user_id] = ParticipantAttendance(
                who.id, who.full_name, who.personal_id, who.role.value, user_id in enrolled_ids
            )

    by_person: dict[int, list[SessionEvent]] = defaultdict(list)
    for event in events:
        if event.type in _COUNTED and event.actor_id in lines:
            line = lines[event.actor_id]
            setattr(line, _COUNTED[event.type], getattr(line, _COUNTED[event.type]) + 1)
        elif event.target_id in lines:
            by_person[event.target_id].append(event)

    began = lesson_start(session, period)
    for line in lines.values():
        arrivals = [e.at for e in by_person[line.user_id] if e.type in _ARRIVALS]
        for decision in (e for e in by_person[line.user_id] if e.type in _LOBBY_DECISIONS):
            by = people.get(decision.actor_id) if decision.actor_id is not None else None
            if decision.type == ev.LOBBY_ADMITTED:
                line.admitted_by = by.full_name if by else None
            else:
                line.denied_by = by.full_name if by else "?"
                line.denied_reason = (decision.data or {}).get("reason")
        if not line.stretches:
            line.arrived_at = min(arrivals, default=None)
            continue
        line.seconds_present = sum(max(0.0, (end_of(s) - s.joined_at).total_seconds()) for s in line.stretches)
        line.arrived_at = min(arrivals + [line.stretches[0].joined_at])
        if line.room_role == "student":
            line.seconds_late = max(0.0, (line.arrived_at - began).total_seconds())
        line.media_seconds = _media_seconds(by_person[line.user_id], line.stretches, end_of)
    return sorted(
        lines.values(), key=lambda a: (a.room_role != "teacher", not a.stretches, name_order(a.name), a.user_id)
    )


NO_SCORES = {
    "assessments": 0,
    "assessments_answered": 0,
    "score": None,
    "max_score": None,
    "score_rate": None,
    "right_answers": 0,
}


@dataclass
class StudentSummary:
    user_id: int
    name: str
    personal_id: str
    sessions: int = 0
    present: int = 0
    late: int = 0
    absent: int = 0
    seconds_present: float = 0.0
    seconds_late: float = 0.0
    camera_seconds: float = 0.0
    hands_raised: int = 0
    messages: int = 0
    scores: Any = None  # archive.polls.ScoreTotals: quick polls and quizzes (None: none of them)

    def view(self) -> dict:
        attended = self.present + self.late
        return {
            "user_id": self.user_id,
            "name": self.name,
            "personal_id": self.personal_id,
            "sessions": self.sessions,
            "attended": attended,
            "present": self.present,
            "late": self.late,
            "absent": self.absent,
            "attendance_rate": round(attended / self.sessions, 3) if self.sessions else None,
            "minutes_present": _minutes(self.seconds_present),
            "minutes_late": _minutes(self.seconds_late),
            "camera_minutes": _minutes(self.camera_seconds),
            "hands_raised": self.hands_raised,
            "messages": self.messages,
            **(self.scores.view() if self.scores else NO_SCORES),
        }


async def class_summary(
    db: AsyncSession, sessions: list[tuple[LiveSession, Period]], enrolled: list[User]
) -> list[StudentSummary]:
    """Per enrolled student, over the given sessions of their class: how many they attended, were late
    to or missed, and their minutes. Students who came to a session but have since left the class
    still count for the sessions they attended. Beside attendance, each student's assessments (quick polls
    and quizzes) of those sessions: how many, answered, the score and the maximum (archive.polls)."""
    lines = {u.id: StudentSummary(u.id, u.full_name, u.personal_id) for u in enrolled}
    for session, period in sessions:
        for person in await session_attendance(db, session, period):
            if person.room_role != "student" or not (person.enrolled or person.stretches):
                continue
            line = lines.setdefault(person.user_id, StudentSummary(person.user_id, person.name, person.personal_id))
            line.sessions += 1
            counted_as = person.status if person.status in ("present", "late") else "absent"
            setattr(line, counted_as, getattr(line, counted_as) + 1)
            line.seconds_present += person.seconds_present
            line.seconds_late += person.seconds_late
            line.camera_seconds += person.media_seconds["camera"]
            line.hands_raised += person.hands_raised
            line.messages += person.messages
    # Assessments: the polls of the same sessions, for the students listed (others who answered — a
    # student of another class let in — are not part of this class's summary unless they attended).
    from liveclass.archive.polls import class_scores  # (polls reads names in this module's order)

    for user_id, scores in (await class_scores(db, [s.id for s, _ in sessions])).items():
        if user_id in lines:
            lines[user_id].scores = scores
    return sorted(lines.values(), key=lambda s: (name_order(s.name), s.user_id))
