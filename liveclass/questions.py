"""The question bank (ngân hàng câu hỏi): a teacher's questions, by subject and topic (chapter), reused in the
room's polls and quizzes and shared with the teachers of the same subject.

A question has one shape everywhere (the bank's answers, the room's `poll:open`, the records):
    kind: single | multiple | truefalse | text | number
    text: 1..1000 characters
    options: single/multiple: 2..6 texts (1..200 characters), labelled A, B, C… in order; other kinds: []
    correct: single ["B"], multiple ["A", "C"], truefalse ["true"] or ["false"], text: 1..10 accepted answers
             (1..200 characters), number: one number written with a "." decimal (["3.5"]); or null
    tolerance: number only, >= 0 (null: exact)
    points: 0..1000, only with a correct answer
    explanation: <= 1000 characters, or null
    image_url: a link the bank signed (below), or null; bank_id: the bank question's id

`check_question` checks and normalises one; its messages are in English and Vietnamese, because the
teacher who reads them may read either. The room checks the same rules again (signaling/polls.py): a
request need not come from the bank.

Who sees what: a teacher sees her own questions and the questions shared by other teachers of a subject
she teaches (a teaching assignment with that subject); an admin sees all. Only the owner or an admin
changes or deletes one.

Images: PNG, JPEG, WebP or GIF up to 1 MB, checked by content, stored once per content as
<files dir>/question-images/<sha256>. They are fetched through a link signed with the server's secret
(HMAC-SHA256) that names the question, the image's hash and an expiry: any logged-in account may open it
until then (students in the room see the picture), nobody can make one, and a link to a replaced image
stops working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import time
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import filetype
from sqlalchemy import Select, and_, or_, select

from liveclass.errors import ApiError
from liveclass.models import AccountRole, Question, TeachingAssignment, User

KINDS = ("single", "multiple", "truefalse", "text", "number")
CHOICE_KINDS = ("single", "multiple")
LETTERS = "ABCDEF"
MAX_TEXT = 1000
MAX_OPTION = 200
MAX_ACCEPTED = 10
MAX_POINTS = 1000
MAX_SUBJECT = 100
MAX_TOPIC = 200
IMAGE_MAX_BYTES = 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
IMAGE_LINK_SECONDS = 24 * 3600
# The room's question shape (docs/protocol.md) takes image links of this form only: a link, not an API call, so
# without the API version; the same route also answers under /api/v1 (liveclass/app.py).
IMAGE_URL_PREFIX = "/api/question-images/"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@dataclass
class Problem:
    """One thing wrong with a question: the field it is about and what to do, in English / Vietnamese."""

    field: str
    message: str


def _say(english: str, vietnamese: str) -> str:
    return f"{english} / {vietnamese}"


def _clean(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)).strip()


def number_text(text: str) -> str | None:
    """A number as a teacher writes it ("3,5", "1 000", "-2") as the bank keeps it ("3.5", "1000", "-2"), or None."""
    compact = "".join(text.split()).replace(",", ".")
    if not _NUMBER.fullmatch(compact):
        return None
    try:
        value = Decimal(compact)
    except InvalidOperation:
        return None
    if value == 0:
        return "0"
    out = format(value.normalize(), "f")
    return out.removeprefix("+")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def check_question(data: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """The question's fields checked and normalised (texts trimmed, letters in order, numbers with "."),
    and every problem found; `data` holds kind, text, options, correct, tolerance, points, explanation."""
    problems: list[Problem] = []
    out: dict[str, Any] = {}

    def bad(field: str, english: str, vietnamese: str) -> None:
        problems.append(Problem(field, _say(english, vietnamese)))

    kind = data.get("kind")
    if kind not in KINDS:
        bad(
            "kind",
            f"Unknown kind {kind!r}: use single, multiple, truefalse, text or number.",
            f"Loại câu hỏi {kind!r} không hợp lệ: dùng single, multiple, truefalse, text hoặc number.",
        )
        return out, problems
    out["kind"] = kind

    text = _clean(data.get("text") or "")
    if not text:
        bad("text", "The question has no text.", "Câu hỏi chưa có nội dung.")
    elif len(text) > MAX_TEXT:
        bad(
            "text",
            f"The question is longer than {MAX_TEXT} characters ({len(text)}).",
            f"Câu hỏi dài quá {MAX_TEXT} ký tự ({len(text)}).",
        )
    out["text"] = text

    options = [_clean(o) for o in (data.get("options") or [])]
    if kind in CHOICE_KINDS:
        if not 2 <= len(options) <= len(LETTERS):
            bad(
                "options",
                f"A choice question has 2 to {len(LETTERS)} options (this one has {len(options)}).",
                f"Câu hỏi lựa chọn cần từ 2 đến {len(LETTERS)} lựa chọn (câu này có {len(options)}).",
            )
        for index, option in enumerate(options[: len(LETTERS)]):
            letter = LETTERS[index]
            if not option:
                bad("options", f"Option {letter} is empty.", f"Lựa chọn {letter} đang để trống.")
            elif len(option) > MAX_OPTION:
                bad(
                    "options",
                    f"Option {letter} is longer than {MAX_OPTION} characters.",
                    f"Lựa chọn {letter} dài quá {MAX_OPTION} ký tự.",
                )
    elif options:
        bad(
            "options",
            "Only single and multiple choice questions have options.",
            "Chỉ câu hỏi một đáp án hoặc nhiều đáp án mới có các lựa chọn.",
        )
    out["options"] = options if kind in CHOICE_KINDS else []

    correct = data.get("correct")
    if correct is not None and not isinstance(correct, list):
        correct = [correct]
    correct = [_clean(c) for c in correct] if correct else None
    if correct is not None and not any(correct):
        correct = None
    if correct is not None:
        if kind in CHOICE_KINDS:
            letters = [c.upper() for c in correct]
            allowed = LETTERS[: len(options)]
            unknown = [c for c in letters if len(c) != 1 or c not in allowed]
            if unknown:
                bad(
                    "correct",
                    f"The correct answer {', '.join(unknown)} is not one of the options "
                    f"({', '.join(allowed) or 'none'}).",
                    f"Đáp án đúng {', '.join(unknown)} không nằm trong các lựa chọn "
                    f"({', '.join(allowed) or 'không có'}).",
                )
            elif kind == "single" and len(set(letters)) != 1:
                bad(
                    "correct",
                    "A single choice question has exactly one correct letter.",
                    "Câu hỏi một đáp án chỉ có đúng một đáp án đúng.",
                )
            correct = [c for c in LETTERS if c in set(letters)]
        elif kind == "truefalse":
            value = correct[0].casefold() if len(correct) == 1 else ""
            if value not in ("true", "false"):
                bad(
                    "correct",
                    'A true/false question\'s correct answer is "true" or "false".',
                    'Đáp án đúng của câu Đúng/Sai là "true" (Đúng) hoặc "false" (Sai).',
                )
            correct = [value]
        elif kind == "text":
            correct = [c for c in correct if c]
            if len(correct) > MAX_ACCEPTED:
                bad(
                    "correct",
                    f"A short answer question accepts at most {MAX_ACCEPTED} answers.",
                    f"Câu trả lời ngắn chấp nhận tối đa {MAX_ACCEPTED} đáp án.",
                )
            if any(len(c) > MAX_OPTION for c in correct):
                bad(
                    "correct",
                    f"An accepted answer is longer than {MAX_OPTION} characters.",
                    f"Một đáp án được chấp nhận dài quá {MAX_OPTION} ký tự.",
                )
        else:  # number
            value = number_text(correct[0]) if len(correct) == 1 else None
            if value is None:
                bad(
                    "correct",
                    f"The correct answer of a number question is one number, not {', '.join(correct)!r}.",
                    f"Đáp án đúng của câu hỏi dạng số phải là một số, không phải {', '.join(correct)!r}.",
                )
            correct = [value]
    out["correct"] = correct

    tolerance = data.get("tolerance")
    if tolerance is not None:
        value = _finite(tolerance)
        if kind != "number":
            bad("tolerance", "Only a number question has a tolerance.", "Chỉ câu hỏi dạng số mới có sai số.")
        elif value is None or value < 0:
            bad("tolerance", "The tolerance is a number of 0 or more.", "Sai số phải là một số không âm.")
        tolerance = value
    out["tolerance"] = tolerance

    points = data.get("points")
    if points is not None:
        value = _finite(points)
        if value is None or not 0 <= value <= MAX_POINTS:
            bad("points", f"Points are a number from 0 to {MAX_POINTS}.", f"Điểm là một số từ 0 đến {MAX_POINTS}.")
        elif correct is None:
            bad("points", "Points need a correct answer.", "Muốn cho điểm thì phải có đáp án đúng.")
        points = value
    out["points"] = points

    explanation = _clean(data.get("explanation") or "") or None
    if explanation and len(explanation) > MAX_TEXT:
        bad(
            "explanation",
            f"The explanation is longer than {MAX_TEXT} characters.",
            f"Phần giải thích dài quá {MAX_TEXT} ký tự.",
        )
    out["explanation"] = explanation
    return out, problems


def check_place(subject: Any, topic: Any) -> tuple[str, str, list[Problem]]:
    """Where a question is filed: its subject (as in the teaching assignments) and topic (chapter)."""
    problems = []
    subject, topic = " ".join(_clean(subject or "").split()), " ".join(_clean(topic or "").split())
    if not subject:
        problems.append(Problem("subject", _say("The subject is missing.", "Chưa ghi môn học.")))
    elif len(subject) > MAX_SUBJECT:
        problems.append(
            Problem(
                "subject",
                _say(
                    f"The subject is longer than {MAX_SUBJECT} characters.", f"Tên môn học dài quá {MAX_SUBJECT} ký tự."
                ),
            )
        )
    if len(topic) > MAX_TOPIC:
        problems.append(
            Problem(
                "topic",
                _say(f"The topic is longer than {MAX_TOPIC} characters.", f"Tên chủ đề dài quá {MAX_TOPIC} ký tự."),
            )
        )
    return subject, topic, problems


def refuse(problems: list[Problem]) -> ApiError:
    """The 400 answer for a question with problems: every problem in `details`."""
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return ApiError(
        400,
        "invalid_question",
        f"Invalid question: {summary}",
        details=[{"field": p.field, "message": p.message} for p in problems],
    )


# -- who sees what -----------------------------------------------------------------------------------
def visible_clause(user: User):
    """SQL condition on Question: the questions `user` may see (admins: all; teachers: theirs and those shared
    in a subject they teach); None for an admin (no condition)."""
    if user.role == AccountRole.admin:
        return None
    taught = select(TeachingAssignment.subject).where(TeachingAssignment.teacher_id == user.id)
    return or_(Question.owner_id == user.id, and_(Question.shared.is_(True), Question.subject.in_(taught)))


def visible(query: Select, user: User) -> Select:
    clause = visible_clause(user)
    return query if clause is None else query.where(clause)


def may_edit(user: User, question: Question) -> bool:
    return user.role == AccountRole.admin or question.owner_id == user.id


# -- images --------------------------------------------------------------------------------------------
def _image_key(secret: str) -> bytes:
    # Its own key, derived from the server's secret: an image link can never pass for another token.
    return hmac.new(secret.encode(), b"liveclass question image link", hashlib.sha256).digest()


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(_image_key(secret), payload.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def image_token(secret: str, question_id: int, sha256: str, expires: int) -> str:
    payload = f"{question_id}.{sha256[:16]}.{expires}"
    return f"{payload}.{_mac(secret, payload)}"


def image_url(secret: str, question: Question, now: float | None = None) -> str | None:
    """A freshly signed link to the question's image, valid 24 to 25 hours. The expiry is rounded up to the
    hour, so the link stays the same for an hour and browsers can keep the picture in their cache."""
    if not question.image_sha256:
        return None
    now = time.time() if now is None else now
    expires = (int(now + IMAGE_LINK_SECONDS) // 3600 + 1) * 3600
    return IMAGE_URL_PREFIX + image_token(secret, question.id, question.image_sha256, expires)


@dataclass
class ImageLink:
    question_id: int
    sha256_prefix: str
    expires: int


def read_image_token(secret: str, token: str, now: float | None = None) -> ImageLink:
    """The link's question and image, if the server signed it: a forged or damaged one is 404, an old one 410."""
    parts = token.split(".")
    unknown = ApiError(404, "not_found", _say("Image not found.", "Không tìm thấy hình ảnh."))
    if (
        len(parts) != 4
        or not parts[0].isascii()
        or not parts[0].isdigit()
        or not parts[2].isascii()
        or not parts[2].isdigit()
        or len(parts[0]) > 10
        or len(parts[2]) > 12
    ):
        raise unknown
    payload = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(secret, payload).encode(), parts[3].encode()):
        raise unknown
    link = ImageLink(int(parts[0]), parts[1], int(parts[2]))
    if link.expires <= (time.time() if now is None else now):
        raise ApiError(
            410,
            "image_link_expired",
            _say(
                "This image link has expired; reload the question to get a new one.",
                "Liên kết hình ảnh đã hết hạn; hãy tải lại câu hỏi.",
            ),
        )
    return link


def images_dir(files_dir: Path) -> Path:
    return files_dir / "question-images"


def check_image(data: bytes) -> str:
    """The image's media type from its content; refuses anything but PNG, JPEG, WebP and GIF up to 1 MB."""
    if not data:
        raise ApiError(400, "empty_file", _say("The image is empty.", "Tệp hình ảnh rỗng."))
    if len(data) > IMAGE_MAX_BYTES:
        raise ApiError(413, "file_too_large", _say("The image is larger than 1 MB.", "Hình ảnh lớn hơn 1 MB."))
    kind = filetype.guess(data[:8192])
    if kind is None or kind.mime not in IMAGE_TYPES:
        raise ApiError(
            415,
            "not_an_image",
            _say(
                "This file is not a PNG, JPEG, WebP or GIF picture.",
                "Tệp này không phải hình ảnh PNG, JPEG, WebP hoặc GIF.",
            ),
        )
    return kind.mime


def store_image(files_dir: Path, data: bytes) -> str:
    """Keep the picture as <files dir>/question-images/<sha256> (mode 0600, folder 0700); returns the hash."""
    digest = hashlib.sha256(data).hexdigest()
    directory = images_dir(files_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / digest
    if not path.exists():
        temporary = directory / f".{digest}.{os.getpid()}.{time.monotonic_ns()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return digest


def remove_image_file(files_dir: Path, sha256: str) -> None:
    (images_dir(files_dir) / sha256).unlink(missing_ok=True)


# -- answers -------------------------------------------------------------------------------------------
def question_out(question: Question, viewer: User, secret: str) -> dict[str, Any]:
    """A bank question as the API answers it: the question's shape + where it is filed and whose it is."""
    return {
        "id": question.id,
        "bank_id": question.id,
        "kind": question.kind,
        "text": question.text,
        "options": list(question.options or []),
        "correct": list(question.correct) if question.correct is not None else None,
        "tolerance": question.tolerance,
        "points": question.points,
        "explanation": question.explanation,
        "image_url": image_url(secret, question),
        "subject": question.subject,
        "topic": question.topic,
        "shared": question.shared,
        "owner": {"id": question.owner.id, "full_name": question.owner.full_name} if question.owner else None,
        "may_edit": may_edit(viewer, question),
        "created_at": question.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": question.updated_at.isoformat().replace("+00:00", "Z"),
    }
