"""A session's assessments — quick polls and quizzes — as the school keeps them: rebuilt from the session
events (poll_opened, poll_question, poll_answered, poll_closed, poll_revealed; signaling/polls.py writes
them), as JSON for the records page and as polls.xlsx.

A poll holds one or more questions (single / multiple choice, true/false, short text, number). Per student
and question the records keep the final answer (choices or text), its server time, whether it was right,
its points and how often it was changed; per student the score (the sum of their points), the right
answers and the maximum score; per question the counts and how many were right.

Sessions recorded before quizzes existed have quick polls whose events carry no `questions` and no
`question`: they read as one question (question 0), single or multiple choice by `multiple` (true/false
stays true/false), their options the letters.

Who had not answered comes from the poll_closed event (the students in the room when it closed); they
count with 0 points. polls.xlsx has three sheets: every question with its counts, every student's answer
to every question (personal IDs as text; who did not answer too), and every student's score per poll.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.archive.attendance import name_order
from liveclass.archive.spreadsheets import xlsx_book
from liveclass.archive.tables import YES_NO, local_time
from liveclass.models import SessionEvent, User

POLL_TYPES = ("poll_opened", "poll_question", "poll_answered", "poll_closed", "poll_revealed")
CHOICE_KINDS = ("single", "multiple", "truefalse")
LETTERS = "ABCDEF"
TRUE_FALSE = ("true", "false")
KIND_LABELS = {
    "single": "Một lựa chọn / Single choice",
    "multiple": "Nhiều lựa chọn / Multiple choice",
    "truefalse": "Đúng/Sai / True/False",
    "text": "Trả lời ngắn / Short text",
    "number": "Số / Number",
}
CHOICE_LABELS = {"true": "Đúng / True", "false": "Sai / False"}
NOT_ANSWERED = "Chưa trả lời / Not answered"
MAX_TEXT_COUNTS = 20  # the text answers counted one by one per question; the rest as "other"

SUMMARY_HEADER = [
    "Bài số / Poll no.",
    "Câu số / Question no.",
    "Tên bài / Title",
    "Mở lúc / Opened at",
    "Kết thúc lúc / Closed at",
    "Loại / Kind",
    "Câu hỏi / Question",
    "Các lựa chọn / Options",
    "Đáp án đúng / Correct answer",
    "Điểm / Points",
    "Kết quả / Counts",
    "Số đã trả lời / Answered",
    "Số trả lời đúng / Right answers",
    "Số chưa trả lời / Not answered",
    "Ẩn danh / Anonymous",
    "Đã công bố / Revealed",
    "Mã câu hỏi / Poll ID",
]
ANSWERS_HEADER = [
    "Bài số / Poll no.",
    "Câu số / Question no.",
    "Họ và tên / Name",
    "Mã định danh / Personal ID",
    "Trả lời / Answer",
    "Đúng / Right",
    "Điểm / Points",
    "Trả lời lúc / Answered at",
    "Số lần đổi / Changes",
    "Mã câu hỏi / Poll ID",
]
SCORES_HEADER = [
    "Bài số / Poll no.",
    "Tên bài / Title",
    "Họ và tên / Name",
    "Mã định danh / Personal ID",
    "Điểm / Score",
    "Điểm tối đa / Max score",
    "Số câu đúng / Right answers",
    "Số câu đã trả lời / Questions answered",
    "Số câu / Questions",
    "Mã câu hỏi / Poll ID",
]
SHEETS = ("Câu hỏi", "Câu trả lời", "Điểm")


def normalise_text(text: str) -> str:
    """How typed answers are grouped (as the room grades them): NFC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _number(text: str) -> float | None:
    cleaned = "".join(str(text).split()).replace(",", ".")
    try:
        return float(cleaned) if cleaned and cleaned.count(".") <= 1 else None
    except ValueError:
        return None


def _num(value: float | int | None) -> float | int | None:
    """3.0 → 3 (a spreadsheet and JSON show whole points as whole numbers)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class QuestionRecord:
    index: int
    kind: str
    text: str = ""
    options: list[str] = field(default_factory=list)  # option texts (single/multiple); may be "" (quick polls)
    correct: list[str] | None = None
    tolerance: float | None = None
    points: float | None = None
    explanation: str | None = None
    bank_id: int | None = None
    has_image: bool = False

    @property
    def choice_ids(self) -> list[str]:
        if self.kind == "truefalse":
            return list(TRUE_FALSE)
        return list(LETTERS[: len(self.options)]) if self.kind in CHOICE_KINDS else []

    @property
    def graded(self) -> bool:
        return bool(self.correct)

    def option_views(self) -> list[dict]:
        if self.kind == "truefalse":
            return [{"id": c, "text": ""} for c in TRUE_FALSE]
        return [{"id": c, "text": self.options[i] or ""} for i, c in enumerate(self.choice_ids)]

    def view(self) -> dict:
        return {
            "index": self.index,
            "kind": self.kind,
            "text": self.text,
            "options": self.option_views(),
            "correct": self.correct,
            "tolerance": self.tolerance,
            "points": _num(self.points),
            "explanation": self.explanation,
            "bank_id": self.bank_id,
            "has_image": self.has_image,
        }


def _question_of(data: dict, index: int) -> QuestionRecord:
    options = data.get("options") or []
    return QuestionRecord(
        index=index,
        kind=str(data.get("kind") or "single"),
        text=str(data.get("text") or ""),
        options=[str(o or "") for o in options] if isinstance(options, list) else [],
        correct=list(data["correct"]) if data.get("correct") else None,
        tolerance=data.get("tolerance"),
        points=data.get("points"),
        explanation=data.get("explanation"),
        bank_id=data.get("bank_id"),
        has_image=bool(data.get("image_url")),
    )


def questions_of(settings: dict) -> list[QuestionRecord]:
    """The questions of a poll_opened event; an older quick poll (no `questions`) as its one question."""
    if isinstance(settings.get("questions"), list) and settings["questions"]:
        return [_question_of(q or {}, i) for i, q in enumerate(settings["questions"])]
    if settings.get("kind") == "truefalse":
        kind, options = "truefalse", []
    else:
        kind = "multiple" if settings.get("multiple") else "single"
        options = [""] * len(settings.get("options") or LETTERS[:4])
    return [
        QuestionRecord(
            index=0,
            kind=kind,
            options=options,
            correct=list(settings["correct"]) if settings.get("correct") else None,
            points=settings.get("points"),
        )
    ]


@dataclass
class AnswerRecord:
    user_id: int
    question: int
    choices: list[str] | None
    text: str | None
    correct: bool | None
    points: float | None
    at: datetime
    changes: int = 0


@dataclass
class PollRecord:
    poll_id: str
    opened_at: datetime
    settings: dict[str, Any]
    questions: list[QuestionRecord]
    closed_at: datetime | None = None
    close_reason: str | None = None
    revealed: bool = False
    show_correct: bool = False
    eligible: int | None = None
    # user → question index → the final answer (with how many times it was changed)
    answers: dict[int, dict[int, AnswerRecord]] = field(default_factory=dict)
    not_answered: list[int] = field(default_factory=list)
    shown: list[tuple[int, datetime]] = field(default_factory=list)  # pace one: (question, shown from)

    @property
    def title(self) -> str | None:
        return self.settings.get("title")

    @property
    def quick(self) -> bool:
        return bool(self.settings.get("quick", "questions" not in self.settings))

    @property
    def max_score(self) -> float | None:
        """The points of every graded question with points; None if no question has points."""
        points = [q.points for q in self.questions if q.graded and q.points is not None]
        return _num(sum(points)) if points else None

    @property
    def students(self) -> list[int]:
        """Those who answered, then those in the room at the close who did not."""
        return [*self.answers, *(u for u in self.not_answered if u not in self.answers)]

    def answers_to(self, index: int) -> list[AnswerRecord]:
        return [mine[index] for mine in self.answers.values() if index in mine]

    def counts(self, index: int) -> list[dict]:
        """[{answer, count, correct}] — every choice (0 too) for choice kinds; the typed answers grouped
        as the room grades them (most given first, at most MAX_TEXT_COUNTS, then "other")."""
        question = self.questions[index]
        given = self.answers_to(index)
        if question.kind in CHOICE_KINDS:
            right = set(question.correct or [])
            return [
                {
                    "answer": c,
                    "count": sum(1 for a in given if c in (a.choices or [])),
                    "correct": (c in right) if question.graded else None,
                }
                for c in question.choice_ids
            ]
        groups: dict[str, dict] = {}
        for answer in given:
            text = answer.text or ""
            value = _number(text) if question.kind == "number" else None
            key = repr(value) if value is not None else normalise_text(text)
            group = groups.setdefault(key, {"answer": text, "count": 0, "correct": answer.correct})
            group["count"] += 1
        ordered = sorted(groups.values(), key=lambda g: (-g["count"], normalise_text(g["answer"])))
        if len(ordered) > MAX_TEXT_COUNTS:
            rest = ordered[MAX_TEXT_COUNTS:]
            ordered = ordered[:MAX_TEXT_COUNTS] + [
                {"answer": None, "count": sum(g["count"] for g in rest), "correct": None, "other": True}
            ]
        return ordered

    def right(self, index: int) -> int | None:
        if not self.questions[index].graded:
            return None
        return sum(1 for a in self.answers_to(index) if a.correct)

    def score_of(self, user_id: int) -> dict:
        mine = self.answers.get(user_id, {})
        graded = any(q.graded for q in self.questions)
        points = [a.points for a in mine.values() if a.points is not None]
        has_points = self.max_score is not None
        return {
            "score": _num(sum(points)) if has_points else None,
            "max_score": self.max_score,
            "right": sum(1 for a in mine.values() if a.correct) if graded else None,
            "answered": len(mine),
            "questions": len(self.questions),
        }


def rebuild_polls(events: Iterable[SessionEvent]) -> list[PollRecord]:
    """The polls of one session's events (ordered by time), in the order opened."""
    polls: dict[str, PollRecord] = {}
    for event in events:
        data = event.data or {}
        poll = polls.get(data.get("poll_id", ""))  # "" is never a key: a poll is kept by a non-empty id
        if event.type == "poll_opened" and data.get("poll_id"):
            polls[data["poll_id"]] = PollRecord(data["poll_id"], event.at, data, questions_of(data))
        elif poll is None:
            continue
        elif event.type == "poll_answered" and event.actor_id is not None:
            index = data.get("question") or 0
            if not isinstance(index, int) or not 0 <= index < len(poll.questions):
                continue
            mine = poll.answers.setdefault(event.actor_id, {})
            previous = mine.get(index)
            mine[index] = AnswerRecord(
                user_id=event.actor_id,
                question=index,
                choices=data.get("choices"),
                text=data.get("text"),
                correct=data.get("correct"),
                points=data.get("points"),
                at=event.at,
                changes=0 if previous is None else previous.changes + 1,
            )
        elif event.type == "poll_question":
            poll.shown.append((data.get("question") or 0, event.at))
        elif event.type == "poll_closed":
            poll.closed_at = event.at
            poll.close_reason = data.get("reason")
            poll.eligible = data.get("eligible")
            poll.not_answered = list(data.get("not_answered_user_ids") or [])
        elif event.type == "poll_revealed":
            poll.revealed = True
            poll.show_correct = bool(data.get("show_correct"))
    return list(polls.values())


async def _people(db: AsyncSession, user_ids: set[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    return {u.id: u for u in (await db.execute(select(User).where(User.id.in_(user_ids)))).scalars()}


async def session_polls(db: AsyncSession, session_id: int) -> tuple[list[PollRecord], dict[int, User]]:
    """The session's polls in the order opened, and the users they name."""
    events = (
        (
            await db.execute(
                select(SessionEvent)
                .where(SessionEvent.session_id == session_id, SessionEvent.type.in_(POLL_TYPES))
                .order_by(SessionEvent.at, SessionEvent.id)
            )
        )
        .scalars()
        .all()
    )
    polls = rebuild_polls(events)
    users = await _people(db, {u for p in polls for u in p.students})
    return polls, users


# -- JSON (the records page) ------------------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _person(users: dict[int, User], user_id: int) -> dict:
    user = users.get(user_id)
    return {
        "user_id": user_id,
        "name": user.full_name if user else f"#{user_id}",
        "personal_id": user.personal_id if user else "",
    }


def _sort_key(users: dict[int, User]):
    return lambda user_id: (name_order(users[user_id].full_name if user_id in users else ""), user_id)


def polls_view(polls: list[PollRecord], users: dict[int, User]) -> dict:
    """{items: one per poll (its questions, counts, every answer, every student's score),
    students: per student over the session's polls}."""
    order = _sort_key(users)
    items = []
    totals: dict[int, dict] = {}
    for number, poll in enumerate(polls, 1):
        students = sorted(poll.students, key=order)
        questions = []
        for question in poll.questions:
            answers = sorted(poll.answers_to(question.index), key=lambda a: order(a.user_id))
            questions.append(
                {
                    **question.view(),
                    "counts": poll.counts(question.index),
                    "answered": len(answers),
                    "right": poll.right(question.index),
                    "answers": [
                        {
                            **_person(users, a.user_id),
                            "choices": a.choices,
                            "text": a.text,
                            "correct": a.correct,
                            "points": _num(a.points),
                            "answered_at": _iso(a.at),
                            "changes": a.changes,
                        }
                        for a in answers
                    ],
                }
            )
        scores = []
        for user_id in students:
            score = poll.score_of(user_id)
            scores.append({**_person(users, user_id), **score})
            total = totals.setdefault(
                user_id,
                {
                    **_person(users, user_id),
                    "score": None,
                    "max_score": None,
                    "right": 0,
                    "answered": 0,
                    "questions": 0,
                    "polls": 0,
                    "polls_answered": 0,
                },
            )
            total["polls"] += 1
            total["polls_answered"] += 1 if score["answered"] else 0
            total["answered"] += score["answered"]
            total["questions"] += score["questions"]
            total["right"] += score["right"] or 0
            if score["max_score"] is not None:
                total["score"] = _num((total["score"] or 0) + (score["score"] or 0))
                total["max_score"] = _num((total["max_score"] or 0) + score["max_score"])
        items.append(
            {
                "number": number,
                "poll_id": poll.poll_id,
                "title": poll.title,
                "quick": poll.quick,
                "anonymous": bool(poll.settings.get("anonymous")),
                "final": bool(poll.settings.get("final")),
                "pace": poll.settings.get("pace") or "all",
                "time_limit": poll.settings.get("time_limit"),
                "seconds_per_question": poll.settings.get("seconds_per_question"),
                "opened_at": _iso(poll.opened_at),
                "closed_at": _iso(poll.closed_at),
                "close_reason": poll.close_reason,
                "revealed": poll.revealed,
                "show_correct": poll.show_correct,
                "max_score": poll.max_score,
                "answered": len(poll.answers),
                "eligible": poll.eligible,
                "not_answered": [
                    _person(users, u) for u in sorted(poll.not_answered, key=order) if u not in poll.answers
                ],
                "questions": questions,
                "scores": scores,
            }
        )
    return {"items": items, "students": [totals[u] for u in sorted(totals, key=order)]}


# -- polls.xlsx ---------------------------------------------------------------------------------------------
def _choice_text(question: QuestionRecord, choice: str) -> str:
    if choice in CHOICE_LABELS:
        return CHOICE_LABELS[choice]
    ids = question.choice_ids
    text = question.options[ids.index(choice)] if choice in ids and ids.index(choice) < len(question.options) else ""
    return f"{choice}. {text}" if text else choice


def _choices(question: QuestionRecord, choices: list[str] | None) -> str:
    return ", ".join(_choice_text(question, c) for c in choices or [])


def _correct_text(question: QuestionRecord) -> str:
    if not question.correct:
        return ""
    if question.kind in CHOICE_KINDS:
        return ", ".join(CHOICE_LABELS.get(c, c) for c in question.correct)
    text = " | ".join(question.correct)
    if question.kind == "number" and question.tolerance:
        text += f" (± {_num(question.tolerance)})"
    return text


def _options_text(question: QuestionRecord) -> str:
    if question.kind not in CHOICE_KINDS:
        return ""
    return ", ".join(_choice_text(question, c) for c in question.choice_ids)


def _counts_text(counts: list[dict]) -> str:
    return "; ".join(
        f"{CHOICE_LABELS.get(c['answer'], c['answer']) if c['answer'] is not None else '…'}: {c['count']}"
        for c in counts
    )


def _blank(value: Any) -> Any:
    return "" if value is None else value


def polls_tables(polls: list[PollRecord], users: dict[int, User]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The three sheets of polls.xlsx: the questions, every answer (and who did not answer), the scores."""
    order = _sort_key(users)
    summary, answers, scores = [], [], []

    def who(user_id: int) -> tuple[str, str]:
        user = users.get(user_id)
        return (user.full_name, user.personal_id) if user else (f"#{user_id}", "")

    for number, poll in enumerate(polls, 1):
        s = poll.settings
        students = sorted(poll.students, key=order)
        for question in poll.questions:
            q_no = question.index + 1
            given = poll.answers_to(question.index)
            summary.append(
                [
                    number,
                    q_no,
                    poll.title or "",
                    local_time(poll.opened_at),
                    local_time(poll.closed_at),
                    KIND_LABELS.get(question.kind, question.kind),
                    question.text,
                    _options_text(question),
                    _correct_text(question),
                    _blank(_num(question.points)),
                    _counts_text(poll.counts(question.index)),
                    len(given),
                    _blank(poll.right(question.index)),
                    len(students) - len(given),
                    YES_NO[bool(s.get("anonymous"))],
                    YES_NO[poll.revealed],
                    poll.poll_id,
                ]
            )
            for user_id in students:
                name, personal_id = who(user_id)
                answer = poll.answers.get(user_id, {}).get(question.index)
                if answer is None:
                    answers.append(
                        [
                            number,
                            q_no,
                            name,
                            personal_id,
                            NOT_ANSWERED,
                            "",
                            0 if question.graded and question.points is not None else "",
                            "",
                            0,
                            poll.poll_id,
                        ]
                    )
                    continue
                shown = _choices(question, answer.choices) if answer.choices is not None else (answer.text or "")
                answers.append(
                    [
                        number,
                        q_no,
                        name,
                        personal_id,
                        shown,
                        "" if answer.correct is None else YES_NO[bool(answer.correct)],
                        _blank(_num(answer.points)),
                        local_time(answer.at),
                        answer.changes,
                        poll.poll_id,
                    ]
                )
        for user_id in students:
            name, personal_id = who(user_id)
            score = poll.score_of(user_id)
            scores.append(
                [
                    number,
                    poll.title or "",
                    name,
                    personal_id,
                    _blank(score["score"]),
                    _blank(score["max_score"]),
                    _blank(score["right"]),
                    score["answered"],
                    score["questions"],
                    poll.poll_id,
                ]
            )
    return [
        (SHEETS[0], SUMMARY_HEADER, summary),
        (SHEETS[1], ANSWERS_HEADER, answers),
        (SHEETS[2], SCORES_HEADER, scores),
    ]


def polls_xlsx(polls: list[PollRecord], users: dict[int, User]) -> bytes:
    return xlsx_book(polls_tables(polls, users))


# -- a class over a date range -------------------------------------------------------------------------------
@dataclass
class ScoreTotals:
    """One student's assessments over several sessions. `assessments`: the polls they answered or were in the
    room for when it closed; `answered`: those they answered (a question at least); the score and the
    maximum over the polls with points among them (a poll they missed while absent does not count)."""

    assessments: int = 0
    answered: int = 0
    score: float = 0
    max_score: float = 0
    right: int = 0

    def view(self) -> dict:
        return {
            "assessments": self.assessments,
            "assessments_answered": self.answered,
            "score": _num(round(self.score, 2)) if self.max_score else None,
            "max_score": _num(round(self.max_score, 2)) if self.max_score else None,
            "score_rate": round(self.score / self.max_score, 3) if self.max_score else None,
            "right_answers": self.right,
        }


async def class_scores(db: AsyncSession, session_ids: list[int]) -> dict[int, ScoreTotals]:
    """Per student (user id), the totals of the polls of the given sessions."""
    totals: dict[int, ScoreTotals] = {}
    for start in range(0, len(session_ids), 500):
        chunk = session_ids[start : start + 500]
        events = (
            await db.execute(
                select(SessionEvent)
                .where(SessionEvent.session_id.in_(chunk), SessionEvent.type.in_(POLL_TYPES))
                .order_by(SessionEvent.session_id, SessionEvent.at, SessionEvent.id)
            )
        ).scalars()
        by_session: dict[int, list[SessionEvent]] = {}
        for event in events:
            by_session.setdefault(event.session_id, []).append(event)
        for session_events in by_session.values():
            for poll in rebuild_polls(session_events):
                for user_id in poll.students:
                    line = totals.setdefault(user_id, ScoreTotals())
                    score = poll.score_of(user_id)
                    line.assessments += 1
                    line.answered += 1 if score["answered"] else 0
                    line.right += score["right"] or 0
                    if score["max_score"] is not None:
                        line.score += score["score"] or 0
                        line.max_score += score["max_score"]
    return totals
