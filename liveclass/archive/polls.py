"""A session's quick polls as the school keeps them: rebuilt from the session events (poll_opened,
poll_answered, poll_closed, poll_revealed; signaling/polls.py writes them), and as polls.xlsx — one sheet
per poll summary (counts per choice) and one with every student's final answer (personal IDs as text).
Who had not answered comes from the poll_closed event (the students in the room when it closed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.archive.spreadsheets import xlsx_book
from liveclass.archive.tables import YES_NO, local_time
from liveclass.models import SessionEvent, User

POLL_TYPES = ("poll_opened", "poll_answered", "poll_closed", "poll_revealed")
KIND_LABELS = {"abcd": "Trắc nghiệm / Multiple choice", "truefalse": "Đúng/Sai / True/False"}
CHOICE_LABELS = {"true": "Đúng / True", "false": "Sai / False"}

SUMMARY_HEADER = [
    "STT / No.", "Mở lúc / Opened at", "Kết thúc lúc / Closed at", "Loại / Kind", "Các lựa chọn / Choices",
    "Chọn nhiều / Several answers", "Ẩn danh / Anonymous", "Đáp án đúng / Correct answer", "Điểm / Points",
    "Số đã trả lời / Answered", "Số chưa trả lời / Not answered", "Số trả lời đúng / Right answers",
    "Kết quả theo lựa chọn / Counts per choice", "Đã công bố / Revealed", "Mã câu hỏi / Poll ID",
]
ANSWERS_HEADER = [
    "Câu hỏi số / Poll no.", "Họ và tên / Name", "Mã định danh / Personal ID", "Trả lời / Answer",
    "Đúng / Right", "Điểm / Points", "Trả lời lúc / Answered at", "Số lần đổi / Changes", "Mã câu hỏi / Poll ID",
]


@dataclass
class PollRecord:
    poll_id: str
    opened_at: datetime
    settings: dict[str, Any]
    closed_at: datetime | None = None
    revealed: bool = False
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)  # user → the last answer (+ changes)
    not_answered: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.settings["options"], 0)
        for answer in self.answers.values():
            for choice in answer["choices"]:
                counts[choice] = counts.get(choice, 0) + 1
        return counts


async def session_polls(db: AsyncSession, session_id: int) -> tuple[list[PollRecord], dict[int, User]]:
    """The session's polls in the order opened, and the users they name."""
    events = (await db.execute(select(SessionEvent).where(SessionEvent.session_id == session_id,
                                                          SessionEvent.type.in_(POLL_TYPES))
                               .order_by(SessionEvent.at, SessionEvent.id))).scalars().all()
    polls: dict[str, PollRecord] = {}
    for event in events:
        data = event.data or {}
        poll = polls.get(data.get("poll_id"))
        if event.type == "poll_opened":
            polls[data["poll_id"]] = PollRecord(data["poll_id"], event.at, data)
        elif poll is None:
            continue
        elif event.type == "poll_answered" and event.actor_id is not None:
            previous = poll.answers.get(event.actor_id)
            poll.answers[event.actor_id] = {**data, "at": event.at,
                                            "changes": 0 if previous is None else previous["changes"] + 1}
        elif event.type == "poll_closed":
            poll.closed_at = event.at
            poll.not_answered = list(data.get("not_answered_user_ids") or [])
        elif event.type == "poll_revealed":
            poll.revealed = True
    user_ids = {u for p in polls.values() for u in [*p.answers, *p.not_answered]}
    users = {u.id: u for u in (await db.execute(select(User).where(User.id.in_(user_ids)))).scalars()} \
        if user_ids else {}
    return list(polls.values()), users


def _choices(choices: list[str] | None) -> str:
    return ", ".join(CHOICE_LABELS.get(c, c) for c in choices or [])


def polls_tables(polls: list[PollRecord], users: dict[int, User]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The two sheets of polls.xlsx: the polls, and every student's final answer (and who did not answer)."""
    summary, answers = [], []
    for number, poll in enumerate(polls, 1):
        s = poll.settings
        counts = poll.counts()
        right = sum(1 for a in poll.answers.values() if a.get("correct"))
        summary.append([
            number, local_time(poll.opened_at), local_time(poll.closed_at), KIND_LABELS.get(s["kind"], s["kind"]),
            _choices(s["options"]), YES_NO[bool(s.get("multiple"))], YES_NO[bool(s.get("anonymous"))],
            _choices(s.get("correct")), s.get("points") if s.get("points") is not None else "",
            len(poll.answers), len(poll.not_answered), right if s.get("correct") else "",
            "; ".join(f"{CHOICE_LABELS.get(c, c)}: {n}" for c, n in counts.items()), YES_NO[poll.revealed],
            poll.poll_id,
        ])
        rows = []
        for user_id, answer in poll.answers.items():
            user = users.get(user_id)
            correct = answer.get("correct")
            rows.append([number, user.full_name if user else f"#{user_id}", user.personal_id if user else "",
                         _choices(answer["choices"]), "" if correct is None else YES_NO[bool(correct)],
                         answer.get("points") if answer.get("points") is not None else "",
                         local_time(answer["at"]), answer["changes"], poll.poll_id])
        for user_id in poll.not_answered:
            user = users.get(user_id)
            rows.append([number, user.full_name if user else f"#{user_id}", user.personal_id if user else "",
                         "Chưa trả lời / Not answered", "", 0 if s.get("points") is not None else "", "", 0,
                         poll.poll_id])
        answers += sorted(rows, key=lambda r: r[1])
    return [("Câu hỏi nhanh", SUMMARY_HEADER, summary), ("Câu trả lời", ANSWERS_HEADER, answers)]


def polls_xlsx(polls: list[PollRecord], users: dict[int, User]) -> bytes:
    return xlsx_book(polls_tables(polls, users))

