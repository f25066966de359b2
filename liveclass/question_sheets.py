"""The question bank as a spreadsheet: the template teachers fill in, the import, the export.

The sheet "Câu hỏi" has one question per row under a header row (docs/api.md, "Question bank"):

    Môn học / Subject | Chủ đề (chương) / Topic | Loại / Kind | Câu hỏi / Question | Lựa chọn A … Lựa chọn F |
    Đáp án đúng / Correct answer | Sai số / Tolerance | Điểm / Points | Giải thích / Explanation | Chia sẻ / Shared

- Loại: "Một đáp án", "Nhiều đáp án", "Đúng/Sai", "Trả lời ngắn", "Số" (or single, multiple, truefalse, text,
  number).
- Đáp án đúng: the letters ("B", or "A, C"); "Đúng" or "Sai"; the accepted answers separated by "|"; a number
  ("3,5" and "3.5" both). Empty: a question without a correct answer (then no points).
- Chia sẻ: "Có" shares the question with the teachers of the same subject; "Không" or empty keeps it private.

A header cell may give the Vietnamese name, the English one or both, as the template does. The import checks
every row (the rules of liveclass/questions.py) and creates all of them or none: each bad row is reported with
its line number, the column and the reason.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from liveclass.archive.spreadsheets import xlsx_book
from liveclass.sheet_import import RowProblem, SheetFileError, column_positions, open_workbook, words
from liveclass.questions import LETTERS, check_place, check_question, number_text

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 1000
SHEET = "Câu hỏi"

# (key, header) in the template's order.
COLUMNS = [
    ("subject", "Môn học / Subject"),
    ("topic", "Chủ đề (chương) / Topic"),
    ("kind", "Loại / Kind"),
    ("text", "Câu hỏi / Question"),
    *[(f"option_{letter}", f"Lựa chọn {letter} / Option {letter}") for letter in LETTERS],
    ("correct", "Đáp án đúng / Correct answer"),
    ("tolerance", "Sai số / Tolerance"),
    ("points", "Điểm / Points"),
    ("explanation", "Giải thích / Explanation"),
    ("shared", "Chia sẻ / Shared"),
]
HEADER = [label for _, label in COLUMNS]
REQUIRED = ("subject", "kind", "text")
KIND_WORDS = {
    "một đáp án": "single",
    "nhiều đáp án": "multiple",
    "đúng/sai": "truefalse",
    "đúng sai": "truefalse",
    "trả lời ngắn": "text",
    "số": "number",
    "true/false": "truefalse",
}
KIND_NAMES = {
    "single": "Một đáp án",
    "multiple": "Nhiều đáp án",
    "truefalse": "Đúng/Sai",
    "text": "Trả lời ngắn",
    "number": "Số",
}
TRUE_WORDS, FALSE_WORDS = {"đúng", "true", "đ", "t", "1"}, {"sai", "false", "s", "f", "0"}
YES_WORDS, NO_WORDS = {"có", "yes", "x", "1", "true", "co"}, {"không", "no", "0", "false", "khong", ""}

EXAMPLES = [
    [
        "Toán",
        "Chương 1. Mệnh đề và tập hợp",
        "Một đáp án",
        "Tập hợp A = {1; 2; 3} có bao nhiêu tập con?",
        "3",
        "6",
        "8",
        "9",
        "",
        "",
        "C",
        "",
        1,
        "Một tập n phần tử có 2^n tập con.",
        "Có",
    ],
    [
        "Toán",
        "Chương 1. Mệnh đề và tập hợp",
        "Nhiều đáp án",
        "Những số nào là số nguyên tố?",
        "2",
        "9",
        "11",
        "15",
        "",
        "",
        "A, C",
        "",
        2,
        "",
        "Không",
    ],
    [
        "Toán",
        "Chương 2. Bất phương trình",
        "Đúng/Sai",
        "Bất phương trình x² + 1 < 0 vô nghiệm.",
        "",
        "",
        "",
        "",
        "",
        "",
        "Đúng",
        "",
        1,
        "x² + 1 luôn dương.",
        "Có",
    ],
    [
        "Ngữ văn",
        "Bài 1. Truyện",
        "Trả lời ngắn",
        'Ai là tác giả của "Truyện Kiều"?',
        "",
        "",
        "",
        "",
        "",
        "",
        "Nguyễn Du|Tố Như",
        "",
        1,
        "",
        "Có",
    ],
    [
        "Vật lý",
        "Chương 1. Động học",
        "Số",
        "Một xe đi 90 km trong 2 giờ. Tốc độ trung bình (km/h) là bao nhiêu?",
        "",
        "",
        "",
        "",
        "",
        "",
        "45",
        "0,5",
        1,
        "v = s / t = 90 / 2 = 45 km/h.",
        "Không",
    ],
]
GUIDE = [
    [
        "Môn học / Subject",
        (
            "Bắt buộc. Tên môn như trong phân công giảng dạy (Toán, Ngữ văn…). "
            "/ Required. The subject as in the teaching assignments."
        ),
    ],
    ["Chủ đề (chương) / Topic", "Không bắt buộc. Chương hoặc chủ đề. / Optional: the chapter or topic."],
    [
        "Loại / Kind",
        (
            "Một đáp án, Nhiều đáp án, Đúng/Sai, Trả lời ngắn, Số "
            "(hoặc / or: single, multiple, truefalse, text, number)."
        ),
    ],
    ["Câu hỏi / Question", "Bắt buộc, tối đa 1000 ký tự. / Required, at most 1000 characters."],
    [
        "Lựa chọn A … F / Option A … F",
        (
            "Câu một hoặc nhiều đáp án: 2 đến 6 lựa chọn, từ A, liên tiếp, mỗi lựa chọn "
            "tối đa 200 ký tự. Các loại khác: để trống. / Choice questions: 2 to 6 options "
            "from A on, at most 200 characters each. Other kinds: empty."
        ),
    ],
    [
        "Đáp án đúng / Correct answer",
        (
            "Chữ cái (B) hoặc nhiều chữ cái (A, C); Đúng hoặc Sai; các câu trả lời được "
            "chấp nhận cách nhau bởi | (Nguyễn Du|Tố Như); một số (3,5 hoặc 3.5). Để trống: "
            "câu hỏi không có đáp án đúng (khảo sát). / Letters; Đúng or Sai; accepted "
            "answers separated by |; a number. Empty: no correct answer (a survey)."
        ),
    ],
    [
        "Sai số / Tolerance",
        (
            "Chỉ cho câu dạng Số: đáp án lệch không quá sai số này vẫn đúng. "
            "/ Number questions only: how far an answer may be from the correct one."
        ),
    ],
    ["Điểm / Points", "0 đến 1000; cần có đáp án đúng. / 0 to 1000; needs a correct answer."],
    [
        "Giải thích / Explanation",
        (
            "Không bắt buộc, tối đa 1000 ký tự; học sinh thấy khi giáo viên công bố đáp án. "
            "/ Optional; shown to students when the teacher reveals the answer."
        ),
    ],
    [
        "Chia sẻ / Shared",
        (
            "Có: các giáo viên dạy cùng môn thấy và dùng được câu hỏi. Không hoặc để trống: chỉ mình "
            "bạn. / Có (yes) shares it with the teachers of the same subject; Không (no) or empty: "
            "only you."
        ),
    ],
    [
        "",
        (
            'Mỗi dòng một câu hỏi, ở trang "Câu hỏi". Xem trang "Ví dụ". Tệp tối đa 2 MB và 1000 câu. Nếu có dòng '
            "sai, không câu nào được nhập và mọi dòng sai được liệt kê. / One question per row on the sheet "
            '"Câu hỏi"; see the sheet "Ví dụ" (examples). At most 2 MB and 1000 questions. If a row is wrong, '
            "nothing is imported and every wrong row is listed."
        ),
    ],
]


@dataclass
class ParsedQuestion:
    line: int
    subject: str
    topic: str
    shared: bool
    fields: dict[str, Any] = field(default_factory=dict)


def template_xlsx() -> bytes:
    return xlsx_book(
        [
            (SHEET, HEADER, []),
            ("Hướng dẫn", ["Cột / Column", "Cách ghi / How to fill it"], GUIDE),
            ("Ví dụ", HEADER, EXAMPLES),
        ]
    )


def _number_cell(value: float | None) -> Any:
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else value


def export_xlsx(questions: list[Any]) -> bytes:
    """The questions in the template's columns: the file imports again as the same questions (images aside)."""
    rows = []
    for q in questions:
        options = list(q.options or []) + [""] * (len(LETTERS) - len(q.options or []))
        if q.correct is None:
            correct = ""
        elif q.kind in ("single", "multiple"):
            correct = ", ".join(q.correct)
        elif q.kind == "truefalse":
            correct = "Đúng" if q.correct == ["true"] else "Sai"
        elif q.kind == "text":
            correct = "|".join(q.correct)
        else:
            correct = q.correct[0]
        rows.append(
            [
                q.subject,
                q.topic,
                KIND_NAMES.get(q.kind, q.kind),
                q.text,
                *options,
                correct,
                _number_cell(q.tolerance),
                _number_cell(q.points),
                q.explanation or "",
                "Có" if q.shared else "Không",
            ]
        )
    return xlsx_book([(SHEET, HEADER, rows)])


# -- import --------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(Decimal(repr(value)).normalize(), "f")
    return unicodedata.normalize("NFC", str(value)).strip()


def _number(value: Any, column: str, line: int, problems: list[RowProblem]) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    parsed = number_text(str(value))
    if parsed is None:
        problems.append(RowProblem(line, column, f"{str(value)!r} is not a number. / {str(value)!r} không phải là số."))
        return None
    return float(parsed)


def _correct(kind: str | None, value: Any, line: int, problems: list[RowProblem]) -> list[str] | None:
    column = "Đáp án đúng / Correct answer"
    text = _text(value)
    if not text:
        return None
    if kind in ("single", "multiple"):
        letters: list[str] = []
        for part in text.replace(";", ",").replace(" ", ",").split(","):
            part = part.strip().upper()
            if part.isascii() and part.isalpha():
                letters.extend(part)  # "AC" is A and C
            elif part:
                letters.append(part)  # checked with the question: "not one of the options"
        return letters
    if kind == "truefalse":
        said = words(text)
        if said in TRUE_WORDS:
            return ["true"]
        if said in FALSE_WORDS:
            return ["false"]
        problems.append(
            RowProblem(
                line, column, f'Write "Đúng" or "Sai", not {text!r}. / Ghi "Đúng" hoặc "Sai", không phải {text!r}.'
            )
        )
        return None
    if kind == "text":
        return [part.strip() for part in text.split("|") if part.strip()]
    return [text]


def _kind(value: Any) -> str | None:
    said = words(value or "")
    return said if said in ("single", "multiple", "truefalse", "text", "number") else KIND_WORDS.get(said)


def parse_questions(data: bytes) -> tuple[list[ParsedQuestion], list[RowProblem]]:
    """Every row of the sheet checked; nothing touches the store here. Raises SheetFileError for the file."""
    if len(data) > MAX_FILE_BYTES:
        raise SheetFileError(413, "file_too_large", "The file is larger than 2 MB. / Tệp lớn hơn 2 MB.")
    book = open_workbook(data, "not_xlsx")
    try:
        sheet = book[SHEET] if SHEET in book.sheetnames else book.worksheets[0]
        rows = sheet.iter_rows(values_only=True, max_col=40)
        header = next(rows, None)
        where = column_positions(header or (), COLUMNS, REQUIRED)
        parsed: list[ParsedQuestion] = []
        problems: list[RowProblem] = []
        count = 0
        for line, row in enumerate(rows, start=2):
            if not any(_text(v) for v in row):
                continue  # a blank row
            count += 1
            if count > MAX_ROWS:
                raise SheetFileError(
                    413,
                    "too_many_rows",
                    f"The file has more than {MAX_ROWS} questions; split it. "
                    f"/ Tệp có hơn {MAX_ROWS} câu hỏi; hãy chia nhỏ.",
                )
            parsed_row, row_problems = _parse_row(line, _Cells(row, where))
            problems += row_problems
            if parsed_row is not None and not row_problems:
                parsed.append(parsed_row)
    finally:
        book.close()
    return parsed, problems


class _Cells:
    """A row's cells by column key (None for a column the sheet lacks or a row that stops short)."""

    def __init__(self, row: tuple, where: dict[str, int]):
        self.row, self.where = row, where

    def __call__(self, key: str) -> Any:
        index = self.where.get(key)
        return self.row[index] if index is not None and index < len(self.row) else None


_FIELD_COLUMN = {
    "kind": "Loại / Kind",
    "text": "Câu hỏi / Question",
    "options": "Lựa chọn / Options",
    "correct": "Đáp án đúng / Correct answer",
    "tolerance": "Sai số / Tolerance",
    "points": "Điểm / Points",
    "explanation": "Giải thích / Explanation",
    "subject": "Môn học / Subject",
    "topic": "Chủ đề (chương) / Topic",
}


def _parse_row(line: int, cell) -> tuple[ParsedQuestion | None, list[RowProblem]]:
    problems: list[RowProblem] = []
    raw_kind = _text(cell("kind"))
    kind = _kind(raw_kind)
    if kind is None:
        problems.append(
            RowProblem(
                line,
                "Loại / Kind",
                f"Unknown kind {raw_kind!r}: write Một đáp án, Nhiều đáp án, Đúng/Sai, Trả lời "
                f"ngắn or Số. / Loại {raw_kind!r} không hợp lệ: ghi Một đáp án, Nhiều đáp án, "
                "Đúng/Sai, Trả lời ngắn hoặc Số.",
            )
        )
    if kind is None and not _text(cell("text")):
        problems.append(RowProblem(line, "Câu hỏi / Question", "The question has no text. / Câu hỏi chưa có nội dung."))
    options = [_text(cell(f"option_{letter}")) for letter in LETTERS]
    while options and not options[-1]:
        options.pop()
    shared_said = words(_text(cell("shared")))
    if shared_said not in YES_WORDS | NO_WORDS:
        problems.append(
            RowProblem(
                line,
                "Chia sẻ / Shared",
                f"Write Có or Không, not {shared_said!r}. / Ghi Có hoặc Không, không phải {shared_said!r}.",
            )
        )
    data = {
        "kind": kind,
        "text": _text(cell("text")),
        "options": options,
        "correct": _correct(kind, cell("correct"), line, problems),
        "tolerance": _number(cell("tolerance"), "Sai số / Tolerance", line, problems),
        "points": _number(cell("points"), "Điểm / Points", line, problems),
        "explanation": _text(cell("explanation")) or None,
    }
    subject, topic, place_problems = check_place(_text(cell("subject")), _text(cell("topic")))
    checked, question_problems = check_question(data) if kind is not None else ({}, [])
    for p in place_problems + question_problems:
        if any(q.line == line and q.column == _FIELD_COLUMN.get(p.field) for q in problems):
            continue  # already said about this cell (e.g. "not a number")
        problems.append(RowProblem(line, _FIELD_COLUMN.get(p.field, p.field), p.message))
    if problems:
        return None, problems
    return ParsedQuestion(line, subject, topic, shared_said in YES_WORDS, checked), []
