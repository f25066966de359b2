"""Polls and quizzes in a live room: the rules, as a part of the room. No I/O here.

One poll at a time. A poll holds one or more questions:
- the quick poll ("Câu hỏi nhanh"): one question with no text, A/B/C/D (2–6 letters) or true/false;
- questions the teacher's browser took from the question bank (the room never reads the bank: the request
  carries the questions' contents): single or multiple choice, true/false, a short text or a number, each with
  an optional correct answer, points, explanation and image. Several questions make a quiz.
Pace "all": every question takes answers until the teacher closes the poll or its time limit is up. Pace
"one" (a time per question): one question at a time; when its time is up, or on `poll:next`, the next one.
Deadlines are clock times kept in the poll; the live room sets a timer on `poll_deadline()` and calls
`poll_time_up()`, and an answer that arrives after the deadline is refused even if the timer is late.

Students (not guests, not observers) answer; answers are changeable until the poll (or its question) closes,
unless the teacher made them final. The teacher sees live counts per question, who has not answered and, in a
named poll, who answered what and each student's score (`poll:counts`, sent at most a few times a second: the
room only marks them due, and the live room sends them, see live_room.py). After `poll:reveal` everyone sees
the counts, and each student their own result; the correct answers and explanations only if the teacher
chose to show them. Answers are kept per account (user id), so a student who reconnects, or comes back from
another device, finds them. Every answer, with its server time, is a record (`poll_answered`).

Anonymous means that nobody in the room is named with an answer: the class and observers never see names in
any poll, and in an anonymous poll the teacher sees only the counts and who has not answered. The school's
records keep each answer like any assessment record.
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from signaling import events as ev
from signaling import protocol as proto
from signaling.policy import STUDENT, TEACHER
from signaling.protocol import RoomError

if TYPE_CHECKING:
    from signaling.room import Participant

LETTERS = "ABCDEF"
TRUE_FALSE = ["true", "false"]  # shown "Đúng" / "Sai"
CHOICE_KINDS = ("single", "multiple", "truefalse")
TYPED_KINDS = ("text", "number")
MAX_TEXT_ANSWER = 500  # characters of a typed answer
MAX_ACCEPTED = 10  # accepted answers of a text question
TOP_TYPED = 20  # the teacher's counts of typed answers: the most given ones


def normalise_text(text: str) -> str:
    """How typed answers are compared: NFC, case-folded, whitespace collapsed. Accents matter ("bà" ≠ "ba")."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def parse_number(text: str) -> float | None:
    """A typed number: "3,5" and "3.5" alike, spaces ignored (thousands written "1 000"); None if not one."""
    cleaned = "".join(str(text).split()).replace(",", ".")
    if not cleaned or cleaned.count(".") > 1:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def number_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else repr(value)


@dataclass
class Question:
    kind: str  # single | multiple | truefalse | text | number
    text: str = ""
    options: list[str] = field(default_factory=list)  # single/multiple: the option texts, lettered A, B, …
    correct: list[str] | None = None  # letters; "true"/"false"; accepted texts; one number
    tolerance: float | None = None  # number: how far from the correct value is still right
    points: float | None = None
    explanation: str | None = None
    image_url: str | None = None
    bank_id: int | None = None

    @property
    def choice_ids(self) -> list[str]:
        if self.kind == "truefalse":
            return list(TRUE_FALSE)
        return list(LETTERS[: len(self.options)]) if self.kind in CHOICE_KINDS else []

    def check(self, index: int) -> None:
        """Refuse a question that cannot be asked (the bank checks the same; a request may not come from it)."""

        def bad(message: str) -> RoomError:
            return RoomError("invalid_question", f"Question {index + 1}: {message}", question=index)

        if self.kind in ("single", "multiple") and not 2 <= len(self.options) <= len(LETTERS):
            raise bad(f"a choice question has 2 to {len(LETTERS)} options.")
        if self.kind not in ("single", "multiple") and self.options:
            raise bad("only single and multiple choice questions have options.")
        if self.points is not None and not self.correct:
            raise bad("points need a correct answer.")
        if self.tolerance is not None and self.kind != "number":
            raise bad("only a number question has a tolerance.")
        if not self.correct:
            self.correct = None
            return
        if self.kind in CHOICE_KINDS:
            unknown = [c for c in self.correct if c not in self.choice_ids]
            if unknown:
                raise bad(f"{unknown[0]!r} is not one of its choices ({', '.join(self.choice_ids)}).")
            self.correct = [c for c in self.choice_ids if c in set(self.correct)]
            if len(self.correct) > 1 and self.kind != "multiple":
                raise bad("it takes one choice, so it has one correct answer.")
        elif self.kind == "number":
            values = [parse_number(c) for c in self.correct]
            if len(values) != 1 or values[0] is None:
                raise bad("the correct answer of a number question is one number.")
            self.correct = [number_text(values[0])]
        elif len(self.correct) > MAX_ACCEPTED or not all(normalise_text(c) for c in self.correct):
            raise bad(f"a text question accepts 1 to {MAX_ACCEPTED} answers, none of them empty.")

    def grade(self, choices: list[str] | None, text: str | None) -> tuple[bool | None, float | None]:
        if self.correct is None:
            return None, None
        if self.kind in CHOICE_KINDS:
            right = sorted(choices or []) == sorted(self.correct)
        elif self.kind == "number":
            given = parse_number(text or "")
            right = given is not None and abs(given - float(self.correct[0])) <= (self.tolerance or 0) + 1e-9
        else:
            right = normalise_text(text or "") in {normalise_text(c) for c in self.correct}
        return right, (None if self.points is None else (self.points if right else 0))


@dataclass
class PollAnswer:
    user_id: int
    participant_id: str
    name: str
    personal_id: str
    question: int
    choices: list[str] | None  # choice kinds
    text: str | None  # text and number kinds: as typed
    at: float  # server time of the latest answer
    correct: bool | None
    points: float | None
    changes: int = 0  # how many times the answer was changed after the first

    def typed_key(self, question: Question) -> str:
        """The teacher's counts of typed answers group the same answer written differently."""
        if question.kind == "number":
            value = parse_number(self.text or "")
            return number_text(value) if value is not None else self.text or ""
        return normalise_text(self.text or "")


@dataclass
class Poll:
    poll_id: str
    questions: list[Question]
    quick: bool  # the quick poll: one question with no text
    anonymous: bool
    opened_at: float
    opened_by: str
    title: str | None = None
    final: bool = False  # an answer once given cannot be changed
    pace: str = "all"  # "all": every question open at once | "one": one question at a time
    time_limit: int | None = None  # pace all: seconds for the whole poll
    seconds_per_question: int | None = None  # pace one
    current: int = 0  # pace one: the question taking answers
    deadline: float | None = None  # (clock) when the poll (pace all) or the current question (pace one) ends
    state: str = "open"  # open → closed
    closed_at: float | None = None
    revealed: bool = False
    show_correct: bool = False
    answers: dict[int, dict[int, PollAnswer]] = field(default_factory=dict)  # user id → question → answer

    # -- what it holds -------------------------------------------------------------------------------
    def is_open(self, index: int) -> bool:
        return self.state == "open" and (self.pace == "all" or index == self.current)

    def counts(self, index: int) -> dict[str, int]:
        question = self.questions[index]
        given = [a for per_user in self.answers.values() if (a := per_user.get(index)) is not None]
        if question.kind in CHOICE_KINDS:
            counts = dict.fromkeys(question.choice_ids, 0)
            for answer in given:
                for choice in answer.choices or []:
                    counts[choice] += 1
            return counts
        typed: dict[str, int] = {}
        for answer in given:
            key = answer.typed_key(question)
            typed[key] = typed.get(key, 0) + 1
        return dict(sorted(typed.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TYPED])

    def question_results(self) -> list[dict[str, Any]]:
        out = []
        for index, question in enumerate(self.questions):
            given = [a for per_user in self.answers.values() if (a := per_user.get(index)) is not None]
            out.append(
                {
                    "index": index,
                    "counts": self.counts(index),
                    "answered": len(given),
                    "right": None if question.correct is None else sum(1 for a in given if a.correct),
                }
            )
        return out

    def max_score(self) -> float:
        return sum(q.points for q in self.questions if q.points is not None and q.correct is not None)

    def score_of(self, user_id: int) -> dict[str, Any]:
        mine = self.answers.get(user_id, {})
        return {
            "score": sum(a.points for a in mine.values() if a.points is not None),
            "right": sum(1 for a in mine.values() if a.correct),
            "answered": len(mine),
        }

    # -- as kept in the room's snapshot --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["answers"] = [asdict(a) for per_user in self.answers.values() for a in per_user.values()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Poll:
        data = dict(data)
        answers = data.pop("answers")
        if "questions" not in data:  # a quick poll saved by a node of the previous version
            kind = data.pop("kind")
            options, multiple = data.pop("options"), data.pop("multiple")
            data["questions"] = [
                {
                    "kind": "truefalse" if kind == "truefalse" else ("multiple" if multiple else "single"),
                    "options": [] if kind == "truefalse" else [""] * len(options),
                    "correct": data.pop("correct"),
                    "points": data.pop("points"),
                }
            ]
            data["quick"] = True
            answers = [{**a, "question": 0, "text": None} for a in answers]
        poll = cls(**{**data, "questions": [Question(**q) for q in data["questions"]]})
        for a in answers:
            poll.answers.setdefault(a["user_id"], {})[a["question"]] = PollAnswer(**a)
        return poll


class PollRules:
    """The poll requests and views of a Room (mixed into signaling.room.Room)."""

    poll: Poll | None
    poll_counts_due: bool
    poll_seq: int

    if TYPE_CHECKING:  # what the room provides (signaling.room.Room)
        session_id: int
        clock: Callable[[], float]

        def present(self) -> list[Participant]: ...
        def teachers(self) -> list[Participant]: ...
        def _send(self, participant: Participant, event: str, data: Any, disconnect_after: bool = False) -> None: ...
        def _event(
            self, type_: str, actor: Participant | None = None, target: Participant | None = None, **data: Any
        ) -> None: ...
        def _broadcast(
            self,
            event: str,
            make: Callable[[Participant], Any],
            about: Participant | None = None,
            exclude: Participant | None = None,
        ) -> None: ...

    # -- views ---------------------------------------------------------------------------------------
    def _poll_students(self) -> list[Participant]:
        return [p for p in self.present() if p.role == STUDENT]

    def poll_counts(self) -> dict[str, Any]:
        """What the teacher sees live: counts per question and choice, who has (not) answered, scores."""
        poll = self.poll
        assert poll is not None, "asked for the counts of a poll in a session without one"
        answered_users = set(poll.answers)
        waiting = [p for p in self._poll_students() if p.user_id not in answered_users]
        questions = poll.question_results()
        data: dict[str, Any] = {
            "poll_id": poll.poll_id,
            "counts": questions[0]["counts"],
            "answered": len(poll.answers),
            "eligible": len(poll.answers) + len(waiting),
            "complete": sum(1 for mine in poll.answers.values() if len(mine) == len(poll.questions)),
            "not_answered": [{"participant_id": p.participant_id, "name": p.name} for p in waiting],
            "questions": questions,
            "answers": None,
            "scores": None,
        }
        if not poll.anonymous:
            given = sorted((a for mine in poll.answers.values() for a in mine.values()), key=lambda a: a.at)
            data["answers"] = [
                {
                    "participant_id": a.participant_id,
                    "name": a.name,
                    "question": a.question,
                    "choices": a.choices,
                    "text": a.text,
                    "correct": a.correct,
                    "at": a.at,
                }
                for a in given
            ]
            data["scores"] = []
            for mine in poll.answers.values():
                someone = next(iter(mine.values()))
                data["scores"].append(
                    {"participant_id": someone.participant_id, "name": someone.name, **poll.score_of(someone.user_id)}
                )
            data["scores"].sort(key=lambda s: (-s["score"], -s["right"], s["name"]))
        return data

    def _question_view(self, poll: Poll, index: int, shows_answers: bool) -> dict[str, Any]:
        q = poll.questions[index]
        if q.kind == "truefalse":
            options = [{"id": c, "text": ""} for c in TRUE_FALSE]
        else:
            options = [{"id": c, "text": t} for c, t in zip(q.choice_ids, q.options)]
        return {
            "index": index,
            "kind": q.kind,
            "text": q.text,
            "options": options,
            "points": q.points,
            "image_url": q.image_url,
            "has_correct": q.correct is not None,
            "correct": list(q.correct) if q.correct is not None and shows_answers else None,
            "tolerance": q.tolerance if shows_answers else None,
            "explanation": q.explanation if shows_answers else None,
            "open": poll.is_open(index),
        }

    def poll_view(self, viewer: Participant) -> dict[str, Any] | None:
        """The latest poll as this viewer may see it (None: no poll in this session yet)."""
        poll = self.poll
        if poll is None:
            return None
        teacher = viewer.role == TEACHER
        shows_answers = teacher or (poll.revealed and poll.show_correct)
        deadline_in = None
        if poll.state == "open" and poll.deadline is not None:
            deadline_in = round(max(0.0, poll.deadline - self.clock()), 2)
        view: dict[str, Any] = {
            "poll_id": poll.poll_id,
            "title": poll.title,
            "quick": poll.quick,
            "anonymous": poll.anonymous,
            "final": poll.final,
            "pace": poll.pace,
            "current": poll.current,
            "time_limit": poll.time_limit,
            "seconds_per_question": poll.seconds_per_question,
            "deadline_in": deadline_in,
            "state": poll.state,
            "opened_at": poll.opened_at,
            "closed_at": poll.closed_at,
            "revealed": poll.revealed,
            "show_correct": poll.show_correct,
            "questions": [self._question_view(poll, i, shows_answers) for i in range(len(poll.questions))],
            "max_score": poll.max_score(),
            "may_answer": viewer.role == STUDENT and poll.state == "open",
        }
        if poll.quick:  # the quick poll's own fields, as its clients know them
            q = poll.questions[0]
            view.update(
                {
                    "kind": "truefalse" if q.kind == "truefalse" else "abcd",
                    "options": q.choice_ids,
                    "multiple": q.kind == "multiple",
                    "points": q.points,
                    "has_correct": q.correct is not None,
                    "correct": list(q.correct) if q.correct is not None and shows_answers else None,
                }
            )
        if teacher:
            view["results"] = self.poll_counts()
        elif poll.revealed:  # counts only: the class is never told who chose what
            questions = poll.question_results()
            view["results"] = {
                "poll_id": poll.poll_id,
                "counts": questions[0]["counts"],
                "answered": len(poll.answers),
                "questions": questions,
            }
        else:
            view["results"] = None
        if viewer.role == STUDENT:
            view["mine"] = self._mine(poll, viewer.user_id)
        return view

    def _mine(self, poll: Poll, user_id: int) -> dict[str, Any] | None:
        mine = poll.answers.get(user_id)
        if not mine:
            return None
        graded = poll.revealed and poll.show_correct

        def one(a: PollAnswer) -> dict[str, Any]:
            shown = (
                {"choices": a.choices, "at": a.at} if poll.quick else {"choices": a.choices, "text": a.text, "at": a.at}
            )
            return {**shown, **({"correct": a.correct, "points": a.points} if graded else {})}

        out: dict[str, Any] = {"answers": {str(i): one(a) for i, a in sorted(mine.items())}}
        if poll.quick and 0 in mine:
            out.update(one(mine[0]))
        if graded:
            out.update({k: v for k, v in poll.score_of(user_id).items() if k != "answered"}, max_score=poll.max_score())
        return out

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

    # -- time ----------------------------------------------------------------------------------------
    def poll_deadline(self) -> float | None:
        """(Clock time) when the open poll, or its current question, ends by itself; None: never."""
        poll = self.poll
        return poll.deadline if poll is not None and poll.state == "open" else None

    def poll_time_up(self) -> None:
        """The live room's timer (or a late answer) found the deadline passed: the next question, or the end."""
        poll = self.poll
        if poll is None or poll.state != "open" or poll.deadline is None or self.clock() < poll.deadline:
            return
        if poll.pace == "one" and poll.current + 1 < len(poll.questions):
            self._next_question(poll, None)
        else:
            self._close_poll(None, "time_up")

    def _next_question(self, poll: Poll, by: Participant | None) -> None:
        poll.current += 1
        poll.deadline = self.clock() + poll.seconds_per_question if poll.seconds_per_question else None
        self._event(ev.POLL_QUESTION, by, None, poll_id=poll.poll_id, question=poll.current)
        self.poll_counts_due = True
        self._poll_broadcast("poll:updated")

    # -- requests ------------------------------------------------------------------------------------
    def _on_poll_open(self, teacher: Participant, payload: proto.PollOpen) -> dict[str, Any]:
        if self.poll is not None and self.poll.state == "open":
            raise RoomError("poll_open", "A poll is already open; close it first.", poll_id=self.poll.poll_id)
        if (payload.kind is None) == (payload.questions is None):
            raise RoomError("invalid_poll", "Give either a quick poll's kind or questions.")
        if payload.time_limit is not None and payload.seconds_per_question is not None:
            raise RoomError("invalid_poll", "Give a time for the whole poll or per question, not both.")
        if payload.questions is None:  # a quick poll: its kind is given (checked above)
            questions = [self._quick_question(payload)]
        else:
            questions = [Question(**q.model_dump()) for q in payload.questions]
            for index, question in enumerate(questions):
                question.check(index)
        now = self.clock()
        self.poll_seq += 1
        pace = "one" if payload.seconds_per_question else "all"
        seconds = payload.seconds_per_question or payload.time_limit
        poll = Poll(
            poll_id=f"q{self.session_id}-{self.poll_seq}-{secrets.token_hex(3)}",
            questions=questions,
            quick=payload.kind is not None,
            anonymous=payload.anonymous,
            opened_at=now,
            opened_by=teacher.name,
            title=payload.title,
            final=payload.final,
            pace=pace,
            time_limit=payload.time_limit,
            seconds_per_question=payload.seconds_per_question,
            deadline=now + seconds if seconds else None,
        )
        self.poll = poll
        self.poll_counts_due = False
        settings: dict[str, Any] = {
            "poll_id": poll.poll_id,
            "title": poll.title,
            "quick": poll.quick,
            "anonymous": poll.anonymous,
            "final": poll.final,
            "pace": poll.pace,
            "time_limit": poll.time_limit,
            "seconds_per_question": poll.seconds_per_question,
            "questions": [asdict(q) for q in questions],
        }
        if poll.quick:  # as quick polls were recorded before quizzes
            q = questions[0]
            settings.update(
                kind=payload.kind,
                options=q.choice_ids,
                multiple=q.kind == "multiple",
                correct=q.correct,
                points=q.points,
            )
        self._event(ev.POLL_OPENED, teacher, None, **settings)
        self._poll_broadcast("poll:opened")
        return {"poll_id": poll.poll_id}

    @staticmethod
    def _quick_question(payload: proto.PollOpen) -> Question:
        if payload.kind == "truefalse":
            if payload.multiple:
                raise RoomError("invalid_poll", "A true/false poll takes one choice.")
            question = Question("truefalse")
        else:
            question = Question("multiple" if payload.multiple else "single", options=[""] * payload.options)
        if payload.points is not None and not payload.correct:
            raise RoomError("invalid_poll", "Points need a correct answer.")
        question.correct, question.points = payload.correct, payload.points
        unknown = [c for c in payload.correct or [] if c not in question.choice_ids]
        if unknown:
            raise RoomError(
                "unknown_choice",
                f"{unknown[0]!r} is not a choice of this poll ({', '.join(question.choice_ids)}).",
                choice=unknown[0],
            )
        if payload.correct and len(set(payload.correct)) > 1 and question.kind != "multiple":
            raise RoomError("single_choice", "This poll takes one choice; the correct answer has several.")
        question.check(0)
        return question

    def _answer_of(self, question: Question, payload: proto.PollAnswer) -> tuple[list[str] | None, str | None]:
        """The answer as kept: the choices (each once, in the options' order), or the typed text."""
        if question.kind in CHOICE_KINDS:
            if payload.choices is None or payload.text is not None:
                raise RoomError("wrong_kind", "This question is answered by choosing (choices).")
            ids = question.choice_ids
            for choice in payload.choices:
                if choice not in ids:
                    raise RoomError(
                        "unknown_choice",
                        f"{choice!r} is not a choice of this question ({', '.join(ids)}).",
                        choice=choice,
                    )
            chosen = [c for c in ids if c in set(payload.choices)]
            if len(chosen) > 1 and question.kind != "multiple":
                raise RoomError("single_choice", f"This question takes one choice; the answer has {len(chosen)}.")
            return chosen, None
        if payload.text is None or payload.choices is not None:
            raise RoomError("wrong_kind", "This question is answered by typing (text).")
        text = " ".join(payload.text.split())
        if not text:
            raise RoomError("empty_answer", "The answer is empty.")
        if len(text) > MAX_TEXT_ANSWER:
            raise RoomError(
                "answer_too_long",
                f"An answer has at most {MAX_TEXT_ANSWER} characters; this one has {len(text)}.",
                limit=MAX_TEXT_ANSWER,
            )
        if question.kind == "number" and parse_number(text) is None:
            raise RoomError("not_a_number", f"{text[:40]!r} is not a number.")
        return None, text

    def _on_poll_answer(self, student: Participant, payload: proto.PollAnswer) -> dict[str, Any]:
        poll = self._current_poll(payload.poll_id)
        if poll.state == "open" and poll.deadline is not None and self.clock() >= poll.deadline:
            self.poll_time_up()  # the timer is late: the answer is too
        index = payload.question
        if not 0 <= index < len(poll.questions):
            raise RoomError("unknown_question", f"This poll has {len(poll.questions)} question(s).")
        if poll.state != "open":
            raise RoomError("poll_closed", "This poll is closed; answers are no longer taken.")
        if not poll.is_open(index):
            raise RoomError(
                "not_current_question", "This question is not the one being asked now.", current=poll.current
            )
        question = poll.questions[index]
        choices, text = self._answer_of(question, payload)
        mine = poll.answers.setdefault(student.user_id, {})
        previous = mine.get(index)
        if previous is not None and (previous.choices, previous.text) == (choices, text):
            return {"poll_id": poll.poll_id, "question": index, "choices": choices, "text": text, "changed": False}
        if previous is not None and poll.final:
            raise RoomError("answer_final", "Answers in this poll are final; yours is already in.")
        now = self.clock()
        correct, points = question.grade(choices, text)
        mine[index] = PollAnswer(
            user_id=student.user_id,
            participant_id=student.participant_id,
            name=student.name,
            personal_id=student.personal_id,
            question=index,
            choices=choices,
            text=text,
            at=now,
            correct=correct,
            points=points,
            changes=0 if previous is None else previous.changes + 1,
        )
        self._event(
            ev.POLL_ANSWERED,
            student,
            student,
            poll_id=poll.poll_id,
            question=index,
            choices=choices,
            text=text,
            correct=correct,
            points=points,
            answered_at=now,
            changed=previous is not None,
        )
        self.poll_counts_due = True
        return {"poll_id": poll.poll_id, "question": index, "choices": choices, "text": text, "changed": True}

    def _close_poll(self, by: Participant | None, reason: str | None = None) -> None:
        poll = self.poll
        assert poll is not None, "closing a poll in a session without one"
        poll.state = "closed"
        poll.closed_at = self.clock()
        poll.deadline = None
        counts = self.poll_counts()
        waiting = [p.user_id for p in self._poll_students() if p.user_id not in poll.answers]
        self._event(
            ev.POLL_CLOSED,
            by,
            None,
            poll_id=poll.poll_id,
            counts=counts["counts"],
            answered=counts["answered"],
            eligible=counts["eligible"],
            not_answered_user_ids=waiting,
            questions=counts["questions"],
            **({"reason": reason} if reason else {}),
        )
        self.poll_counts_due = False
        self._poll_broadcast("poll:closed")

    def _on_poll_next(self, teacher: Participant, payload: proto.PollRef) -> dict[str, Any]:
        poll = self._current_poll(payload.poll_id)
        if poll.state != "open":
            raise RoomError("poll_closed", "This poll is closed.")
        if poll.pace != "one":
            raise RoomError("not_paced", "All the questions of this poll are open at once.")
        if poll.current + 1 < len(poll.questions):
            self._next_question(poll, teacher)
        else:
            self._close_poll(teacher)
        return {"poll_id": poll.poll_id, "state": poll.state, "current": poll.current}

    def _on_poll_close(self, teacher: Participant, payload: proto.PollRef) -> dict[str, Any]:
        poll = self._current_poll(payload.poll_id)
        if poll.state == "open":
            self._close_poll(teacher)
        return {"poll_id": poll.poll_id, "state": poll.state}

    def _on_poll_reveal(self, teacher: Participant, payload: proto.PollReveal) -> dict[str, Any]:
        poll = self._current_poll(payload.poll_id)
        if poll.state == "open":  # revealing ends the answering
            self._close_poll(teacher)
        poll.revealed = True
        poll.show_correct = bool(payload.show_correct and any(q.correct is not None for q in poll.questions))
        self._event(ev.POLL_REVEALED, teacher, None, poll_id=poll.poll_id, show_correct=poll.show_correct)
        self._poll_broadcast("poll:results")
        return {"poll_id": poll.poll_id, "show_correct": poll.show_correct}

    def close_poll_at_end(self) -> None:
        """The period ends (or the server stops it) with a poll open: it closes, with its counts recorded."""
        if self.poll is not None and self.poll.state == "open":
            self._close_poll(None, "ended")
