"""Quick polls ("Câu hỏi nhanh") in a live room: the rules, as a part of the room. No I/O here.

The teacher opens one poll at a time: A/B/C/D (2–6 letters) or true/false, single or multiple choice, named or
anonymous, with an optional correct answer and points. Students (not guests, not observers) answer with
one tap and may change their answer until the poll closes; the teacher sees live counts and who has not
answered (`poll:counts`, sent at most a few times a second: the room only marks them due, and the live room
sends them, see live_room.py); after `poll:reveal` everyone sees the results, and each student whether they
were right. Answers are kept per account (user id), so a student who reconnects, or comes back from another
device, finds their answer. Every answer, with its server time, is a record (`poll_answered`).

Anonymous means that nobody in the room is named with an answer: the class and observers never see names in
any poll, and in an anonymous poll the teacher sees only the counts and who has not answered (not who chose
what). The school's records keep each answer like any assessment record.
"""
from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from signaling import events as ev
from signaling.policy import STUDENT, TEACHER
from signaling.protocol import RoomError

if TYPE_CHECKING:
    from signaling.room import Participant

LETTERS = "ABCDEF"
TRUE_FALSE = ["true", "false"]  # shown "Đúng" / "Sai"


@dataclass
class PollAnswer:
    user_id: int
    participant_id: str
    name: str
    personal_id: str
    choices: list[str]
    at: float  # server time of the latest answer
    correct: bool | None
    points: float | None
    changes: int = 0  # how many times the answer was changed after the first


@dataclass
class Poll:
    poll_id: str
    kind: str  # "abcd" | "truefalse"
    options: list[str]
    multiple: bool
    anonymous: bool
    correct: list[str] | None
    points: float | None
    opened_at: float
    opened_by: str
    state: str = "open"  # open → closed
    closed_at: float | None = None
    revealed: bool = False
    show_correct: bool = False
    answers: dict[int, PollAnswer] = field(default_factory=dict)  # by user id

    def grade(self, choices: list[str]) -> tuple[bool | None, float | None]:
        if self.correct is None:
            return None, None
        right = sorted(choices) == sorted(self.correct)
        return right, (None if self.points is None else (self.points if right else 0))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.options, 0)
        for answer in self.answers.values():
            for choice in answer.choices:
                counts[choice] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answers"] = [asdict(a) for a in self.answers.values()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Poll:
        data = dict(data)
        answers = [PollAnswer(**a) for a in data.pop("answers")]
        return cls(**data, answers={a.user_id: a for a in answers})


class PollRules:
    """The poll requests and views of a Room (mixed into signaling.room.Room)."""

    poll: Poll | None
    poll_counts_due: bool
    poll_seq: int

    # -- views ---------------------------------------------------------------------------------------
    def _poll_students(self) -> list[Participant]:
        return [p for p in self.present() if p.role == STUDENT]

    def poll_counts(self) -> dict[str, Any]:
        """What the teacher sees live: counts per choice, who has (not) answered."""
        poll = self.poll
        answered_users = set(poll.answers)
        waiting = [p for p in self._poll_students() if p.user_id not in answered_users]
        data = {"poll_id": poll.poll_id, "counts": poll.counts(), "answered": len(poll.answers),
                "eligible": len(poll.answers) + len(waiting),
                "not_answered": [{"participant_id": p.participant_id, "name": p.name} for p in waiting],
                "answers": None}
        if not poll.anonymous:
            data["answers"] = [{"participant_id": a.participant_id, "name": a.name, "choices": list(a.choices),
                                "correct": a.correct, "at": a.at}
                               for a in sorted(poll.answers.values(), key=lambda a: a.at)]
        return data

    def poll_view(self, viewer: Participant) -> dict[str, Any] | None:
        """The latest poll as this viewer may see it (None: no poll in this session yet)."""
        poll = self.poll
        if poll is None:
            return None
        teacher = viewer.role == TEACHER
        view = {"poll_id": poll.poll_id, "kind": poll.kind, "options": list(poll.options),
                "multiple": poll.multiple, "anonymous": poll.anonymous, "points": poll.points,
                "state": poll.state, "opened_at": poll.opened_at, "closed_at": poll.closed_at,
                "revealed": poll.revealed, "show_correct": poll.show_correct,
                "has_correct": poll.correct is not None,
                "correct": list(poll.correct) if poll.correct is not None and (
                    teacher or (poll.revealed and poll.show_correct)) else None,
                "may_answer": viewer.role == STUDENT and poll.state == "open"}
        if teacher:
            view["results"] = self.poll_counts()
        elif poll.revealed:  # counts only: the class is never told who chose what
            view["results"] = {"poll_id": poll.poll_id, "counts": poll.counts(), "answered": len(poll.answers)}
        else:
            view["results"] = None
        if viewer.role == STUDENT:
            mine = poll.answers.get(viewer.user_id)
            view["mine"] = None if mine is None else {
                "choices": list(mine.choices), "at": mine.at,
                **({"correct": mine.correct, "points": mine.points} if poll.revealed and poll.show_correct else {})}
        return view

    def _poll_broadcast(self, event: str) -> None:
        self._broadcast(event, lambda v: {"poll": self.poll_view(v)})

    def send_poll_counts(self) -> None:
        """The live counts to the teachers (the live room calls this, at most a few times a second)."""
        self.poll_counts_due = False
        if self.poll is None:
            return
        counts = self.poll_counts()
        for teacher in self.teachers():
            self._send(teacher, "poll:counts", counts)

    def _poll_people_changed(self) -> None:
        """Someone came or went: the teacher's list of who has not answered changes."""
        if self.poll is not None and self.poll.state == "open":
            self.poll_counts_due = True

    def _current_poll(self, poll_id: str) -> Poll:
        if self.poll is None or self.poll.poll_id != poll_id:
            raise RoomError("unknown_poll", "There is no such poll in this period.")
        return self.poll

    def _poll_choices(self, poll: Poll, choices: list[str], what: str = "answer") -> list[str]:
        for choice in choices:
            if choice not in poll.options:
                raise RoomError("unknown_choice", f"{choice!r} is not a choice of this poll "
                                                  f"({', '.join(poll.options)}).", choice=choice)
        chosen = [o for o in poll.options if o in set(choices)]  # each once, in the options' order
        if len(chosen) > 1 and not poll.multiple:
            raise RoomError("single_choice", f"This poll takes one choice; the {what} has {len(chosen)}.")
        return chosen

    # -- requests ------------------------------------------------------------------------------------
    def _on_poll_open(self, teacher: Participant, payload) -> dict:
        if self.poll is not None and self.poll.state == "open":
            raise RoomError("poll_open", "A poll is already open; close it first.", poll_id=self.poll.poll_id)
        if payload.kind == "truefalse":
            if payload.multiple:
                raise RoomError("invalid_poll", "A true/false poll takes one choice.")
            options = list(TRUE_FALSE)
        else:
            options = list(LETTERS[:payload.options])
        if payload.points is not None and not payload.correct:
            raise RoomError("invalid_poll", "Points need a correct answer.")
        self.poll_seq += 1
        poll = Poll(poll_id=f"q{self.session_id}-{self.poll_seq}-{secrets.token_hex(3)}", kind=payload.kind,
                    options=options, multiple=payload.multiple, anonymous=payload.anonymous, correct=None,
                    points=payload.points, opened_at=self.clock(), opened_by=teacher.name)
        if payload.correct:
            poll.correct = self._poll_choices(poll, payload.correct, "correct answer")
        self.poll = poll
        self.poll_counts_due = False
        self._event(ev.POLL_OPENED, teacher, None, poll_id=poll.poll_id, kind=poll.kind, options=poll.options,
                    multiple=poll.multiple, anonymous=poll.anonymous, correct=poll.correct, points=poll.points)
        self._poll_broadcast("poll:opened")
        return {"poll_id": poll.poll_id}

    def _on_poll_answer(self, student: Participant, payload) -> dict:
        poll = self._current_poll(payload.poll_id)
        if poll.state != "open":
            raise RoomError("poll_closed", "This poll is closed; answers are no longer taken.")
        choices = self._poll_choices(poll, payload.choices)
        previous = poll.answers.get(student.user_id)
        if previous is not None and previous.choices == choices:
            return {"poll_id": poll.poll_id, "choices": choices, "changed": False}
        now = self.clock()
        correct, points = poll.grade(choices)
        poll.answers[student.user_id] = PollAnswer(
            user_id=student.user_id, participant_id=student.participant_id, name=student.name,
            personal_id=student.personal_id, choices=choices, at=now, correct=correct, points=points,
            changes=0 if previous is None else previous.changes + 1)
        self._event(ev.POLL_ANSWERED, student, student, poll_id=poll.poll_id, choices=choices, correct=correct,
                    points=points, answered_at=now, changed=previous is not None)
        self.poll_counts_due = True
        return {"poll_id": poll.poll_id, "choices": choices, "changed": True}

    def _close_poll(self, by: Participant | None, reason: str | None = None) -> None:
        poll = self.poll
        poll.state = "closed"
        poll.closed_at = self.clock()
        counts = self.poll_counts()
        waiting = [p.user_id for p in self._poll_students() if p.user_id not in poll.answers]
        self._event(ev.POLL_CLOSED, by, None, poll_id=poll.poll_id, counts=counts["counts"],
                    answered=counts["answered"], eligible=counts["eligible"], not_answered_user_ids=waiting,
                    **({"reason": reason} if reason else {}))
        self.poll_counts_due = False
        self._poll_broadcast("poll:closed")

    def _on_poll_close(self, teacher: Participant, payload) -> dict:
        poll = self._current_poll(payload.poll_id)
        if poll.state == "open":
            self._close_poll(teacher)
        return {"poll_id": poll.poll_id, "state": poll.state}

    def _on_poll_reveal(self, teacher: Participant, payload) -> dict:
        poll = self._current_poll(payload.poll_id)
        if poll.state == "open":  # revealing ends the answering
            self._close_poll(teacher)
        poll.revealed = True
        poll.show_correct = bool(payload.show_correct and poll.correct is not None)
        self._event(ev.POLL_REVEALED, teacher, None, poll_id=poll.poll_id, show_correct=poll.show_correct)
        self._poll_broadcast("poll:results")
        return {"poll_id": poll.poll_id, "show_correct": poll.show_correct}

    def close_poll_at_end(self) -> None:
        """The period ends (or the server stops it) with a poll open: it closes, with its counts recorded."""
        if self.poll is not None and self.poll.state == "open":
            self._close_poll(None, "ended")
