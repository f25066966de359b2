"""The timetable (thời khóa biểu): periods written in the school's local time, weekly recurrence, the
timetable file, and the checks made before any period is stored.

Times people write are the school's wall-clock times (Asia/Ho_Chi_Minh, no daylight saving): a date, a start
and an end ("07:00", "07:45"). The store keeps UTC.

Checks, over every period a request would create, against each other and against the stored periods:
- a teacher or a class booked twice at the same time: refused, naming the other period (or the other line
  of the file);
- more than two fully online periods (mode "online") for one class in one half-day (morning: starting before
  12:00; afternoon: from 12:00): a warning (the provincial guidance on online teaching); the request goes on
  only with a reason, which the audit log keeps.

The timetable file (CSV UTF-8 or XLSX), one row per weekly period, header required (Vietnamese, English or
both, as the template writes them):
    Lớp / Class | Môn / Subject | Số định danh giáo viên / Teacher personal ID | Thứ / Weekday |
    Bắt đầu / Start | Kết thúc / End | Từ ngày / From | Đến ngày / To | Hình thức / Mode
- Thứ: 2 to 7 (Thứ 2 = Monday … Thứ 7 = Saturday), CN (Sunday); "Thứ 2", "T2", "Mon", "Monday" also.
- Bắt đầu, Kết thúc: 07:00 (24-hour clock, the school's time).
- Từ ngày, Đến ngày: DD/MM/YYYY or YYYY-MM-DD; the period is created on every such weekday between them.
  "Đến ngày" empty: only the first such day.
- Hình thức: "Trực tuyến" / online (default when empty) or "Kết hợp" / hybrid.
- The class must exist in the school year, the teacher must be a teacher assigned to teach the subject in
  the class (Phân công giảng dạy).
Every bad row is reported with its line and the reason, and nothing is created until all rows are right.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.archive.spreadsheets import csv_bytes, xlsx_book
from liveclass.models import AccountRole, Period, PeriodMode, SchoolClass, TeachingAssignment, User
from liveclass.sheet_import import (
    XLSX_MAGIC,
    RowProblem,
    SheetFileError,
    column_positions,
    open_workbook,
    words,
)

SCHOOL_TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ONLINE_PER_HALF_DAY = 2  # the most fully online periods one class has in a morning or an afternoon
NOON = time(12, 0)
MAX_PERIODS = 3000  # one request creates at most this many periods (a school year of a class is ~1200)
MAX_DAYS = 400  # a weekly period spans at most this many days (a school year)
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000

# (key, header) in the template's order.
COLUMNS = [
    ("class", "Lớp / Class"),
    ("subject", "Môn / Subject"),
    ("teacher", "Số định danh giáo viên / Teacher personal ID"),
    ("weekday", "Thứ / Weekday"),
    ("start", "Bắt đầu / Start"),
    ("end", "Kết thúc / End"),
    ("from", "Từ ngày / From"),
    ("to", "Đến ngày / To"),
    ("mode", "Hình thức / Mode"),
]
HEADER = [label for _, label in COLUMNS]
REQUIRED = ("class", "subject", "teacher", "weekday", "start", "end", "from")
ALIASES = {
    "teacher_personal_id": "teacher",
    "teacher personal id": "teacher",
    "teacher's personal id": "teacher",
    "giáo viên": "teacher",
    "teacher": "teacher",
    "day": "weekday",
    "thứ trong tuần": "weekday",
}
WEEKDAY_WORDS = {
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
    "cn": 7,
    "8": 7,
    "chủ nhật": 7,
    "chu nhat": 7,
    "mon": 1,
    "monday": 1,
    "tue": 2,
    "tuesday": 2,
    "wed": 3,
    "wednesday": 3,
    "thu": 4,
    "thursday": 4,
    "fri": 5,
    "friday": 5,
    "sat": 6,
    "saturday": 6,
    "sun": 7,
    "sunday": 7,
}
VI_WEEKDAY = {1: "Thứ 2", 2: "Thứ 3", 3: "Thứ 4", 4: "Thứ 5", 5: "Thứ 6", 6: "Thứ 7", 7: "Chủ nhật"}
EN_WEEKDAY = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}
MODE_WORDS = {
    "": PeriodMode.online,
    "online": PeriodMode.online,
    "trực tuyến": PeriodMode.online,
    "truc tuyen": PeriodMode.online,
    "hybrid": PeriodMode.hybrid,
    "kết hợp": PeriodMode.hybrid,
    "ket hop": PeriodMode.hybrid,
}
EXAMPLES = [
    ["10A1", "Toán", "001088000123", "2", "07:00", "07:45", "07/09/2026", "31/12/2026", "Trực tuyến"],
    ["10A1", "Ngữ văn", "001088000456", "Thứ 4", "08:00", "08:45", "07/09/2026", "31/12/2026", "Kết hợp"],
    ["10A1", "Toán", "001088000123", "CN", "14:00", "14:45", "13/09/2026", "", "online"],
]
GUIDE = [
    ["Lớp / Class", "Bắt buộc: tên lớp như trong trang Lớp học (10A1). / Required: the class's name (10A1)."],
    ["Môn / Subject", "Bắt buộc: môn như trong phân công giảng dạy. / Required: the subject of a teaching assignment."],
    [
        "Số định danh giáo viên / Teacher personal ID",
        "Bắt buộc: số định danh của giáo viên được phân công dạy môn "
        "này ở lớp này. / Required: the personal ID of the teacher "
        "assigned to this subject in this class.",
    ],
    [
        "Thứ / Weekday",
        "2, 3, 4, 5, 6, 7 (Thứ 2 … Thứ 7) hoặc CN (Chủ nhật). / 2 = Monday … 7 = Saturday, "
        "CN = Sunday (Mon … Sun also).",
    ],
    ["Bắt đầu / Start, Kết thúc / End", "Giờ của trường, 24 giờ: 07:00, 13:30. / The school's time, 24-hour clock."],
    [
        "Từ ngày / From, Đến ngày / To",
        "DD/MM/YYYY. Tiết học được tạo vào thứ đã ghi của mỗi tuần từ ngày đến "
        "ngày; để trống “Đến ngày”: chỉ một tiết. / The period is created on that "
        "weekday every week between the two dates; no “To”: one period.",
    ],
    ["Hình thức / Mode", "Trực tuyến (mặc định) hoặc Kết hợp. / online (default) or hybrid."],
    [
        "",
        "Nếu có dòng sai thì chưa tạo tiết nào, và mọi dòng sai được liệt kê. Không quá 2 tiết trực tuyến hoàn "
        "toàn cho một lớp trong một buổi: phải ghi lý do. / If a row is wrong nothing is created and every wrong "
        "row is listed. More than two fully online periods for a class in a half-day need a reason.",
    ],
]


@dataclass
class Planned:
    """A period a request would create."""

    class_id: int
    class_name: str
    subject: str
    teacher_id: int
    teacher_name: str
    starts_at: datetime
    ends_at: datetime
    mode: PeriodMode
    parents_invited: bool = False
    line: int | None = None  # the file's line it comes from


@dataclass
class Check:
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    half_days: list[dict[str, Any]] = field(default_factory=list)


# -- local time ------------------------------------------------------------------------------------------
def at_school(day: date, clock: time) -> datetime:
    """The UTC instant of a date and a wall-clock time at the school."""
    return datetime.combine(day, clock, SCHOOL_TIMEZONE).astimezone(timezone.utc)


def local(instant: datetime) -> datetime:
    return instant.astimezone(SCHOOL_TIMEZONE)


def when_text(starts_at: datetime, ends_at: datetime) -> str:
    start, end = local(starts_at), local(ends_at)
    return f"{start:%d/%m/%Y} {start:%H:%M}–{end:%H:%M}"


def weekly_days(first: date, last: date, weekdays: set[int]) -> list[date]:
    """Every date from `first` to `last` (both included) whose ISO weekday (Monday 1 … Sunday 7) is wanted."""
    days, day = [], first
    while day <= last:
        if day.isoweekday() in weekdays:
            days.append(day)
        day += timedelta(days=1)
    return days


def half_of(instant: datetime) -> tuple[date, str]:
    moment = local(instant)
    return moment.date(), "morning" if moment.time() < NOON else "afternoon"


# -- checks ---------------------------------------------------------------------------------------------
def _other(period: Period | Planned) -> dict[str, Any]:
    if isinstance(period, Period):
        period_id, line = period.id, None
        class_name, teacher_name = period.school_class.name, period.teacher.full_name
    else:
        period_id, line = None, period.line
        class_name, teacher_name = period.class_name, period.teacher_name
    return {
        "period_id": period_id,
        "line": line,
        "class_name": class_name,
        "subject": period.subject,
        "teacher_name": teacher_name,
        "starts_at": period.starts_at.isoformat(),
        "ends_at": period.ends_at.isoformat(),
        "when": when_text(period.starts_at, period.ends_at),
    }


def conflict_reason(item: dict[str, Any]) -> str:
    """A conflict in words, "English / Tiếng Việt", naming the other period."""
    other = item["other"]
    what = f"{other['subject']} · {other['class_name']} ({other['teacher_name']}), {other['when']}"
    where_en = (
        f"period {other['period_id']}"
        if other["period_id"]
        else f"line {other['line']} of this file"
        if other["line"]
        else "another period of this request"
    )
    where_vi = (
        f"tiết số {other['period_id']}"
        if other["period_id"]
        else f"dòng {other['line']} của tệp này"
        if other["line"]
        else "một tiết khác trong yêu cầu này"
    )
    if item["who"] == "teacher":
        return (
            f"{item['when']}: the teacher {item['teacher_name']} already teaches then: {what}, {where_en}. / "
            f"{item['when']}: giáo viên {item['teacher_name']} đã có tiết vào giờ này: {what}, {where_vi}."
        )
    return (
        f"{item['when']}: the class {item['class_name']} already has a period then: {what}, {where_en}. / "
        f"{item['when']}: lớp {item['class_name']} đã có tiết vào giờ này: {what}, {where_vi}."
    )


def half_day_reason(item: dict[str, Any]) -> str:
    day = date.fromisoformat(item["date"]).strftime("%d/%m/%Y")
    en = "morning" if item["half"] == "morning" else "afternoon"
    vi = "buổi sáng" if item["half"] == "morning" else "buổi chiều"
    return (
        f"{item['class_name']} would have {item['count']} fully online periods on the {en} of {day} "
        f"(guidance: at most {ONLINE_PER_HALF_DAY}). / Lớp {item['class_name']} sẽ có {item['count']} tiết "
        f"trực tuyến hoàn toàn vào {vi} {day} (hướng dẫn: không quá {ONLINE_PER_HALF_DAY} tiết)."
    )


async def check(db: AsyncSession, planned: list[Planned], *, ignore_period_id: int | None = None) -> Check:
    """Double bookings and crowded half-days of `planned` against each other and the stored periods."""
    result = Check()
    if not planned:
        return result
    teachers = {p.teacher_id for p in planned}
    classes = {p.class_id for p in planned}
    first = min(p.starts_at for p in planned) - timedelta(days=1)
    last = max(p.ends_at for p in planned) + timedelta(days=1)
    query = select(Period).where(
        Period.starts_at < last,
        Period.ends_at > first,
        or_(Period.teacher_id.in_(teachers), Period.class_id.in_(classes)),
    )
    if ignore_period_id is not None:
        query = query.where(Period.id != ignore_period_id)
    stored = list((await db.execute(query)).scalars().all())

    # Double bookings: sort everything by start and compare each new period with those that overlap it.
    everything: list[Period | Planned] = [*stored, *planned]
    everything.sort(key=lambda p: p.starts_at)
    order = {id(p): i for i, p in enumerate(planned)}
    seen_pairs: set[tuple[int, int, str]] = set()
    for index, period in enumerate(everything):
        for other in everything[index + 1 :]:
            if other.starts_at >= period.ends_at:
                break
            new: Planned
            old: Period | Planned
            if isinstance(period, Period):
                if isinstance(other, Period):
                    continue  # two stored periods: not this request's business
                new, old = other, period
            elif isinstance(other, Period):
                new, old = period, other
            else:  # two new ones: the later in the request is the one refused
                new, old = (other, period) if order[id(other)] > order[id(period)] else (period, other)
            for who, same in (("teacher", new.teacher_id == old.teacher_id), ("class", new.class_id == old.class_id)):
                pair = (id(new), id(old), who)
                if same and pair not in seen_pairs:
                    seen_pairs.add(pair)
                    item = {
                        "line": new.line,
                        "who": who,
                        "class_name": new.class_name,
                        "subject": new.subject,
                        "teacher_name": new.teacher_name,
                        "starts_at": new.starts_at.isoformat(),
                        "ends_at": new.ends_at.isoformat(),
                        "when": when_text(new.starts_at, new.ends_at),
                        "other": _other(old),
                    }
                    item["reason"] = conflict_reason(item)
                    result.conflicts.append(item)
                    break  # one reason per pair is enough: the teacher's first

    # Fully online periods per class and half-day, where this request adds one.
    counts: dict[tuple[int, date, str], int] = {}
    names: dict[int, str] = {}
    touched: set[tuple[int, date, str]] = set()
    for period in planned:
        names[period.class_id] = period.class_name
        if period.mode == PeriodMode.online:
            key = (period.class_id, *half_of(period.starts_at))
            counts[key] = counts.get(key, 0) + 1
            touched.add(key)
    for period in stored:
        if period.mode == PeriodMode.online and period.class_id in classes:
            key = (period.class_id, *half_of(period.starts_at))
            if key in touched:
                counts[key] += 1
    for key in sorted(touched, key=lambda k: (k[1], k[2], names[k[0]])):
        if counts[key] > ONLINE_PER_HALF_DAY:
            item = {"class_name": names[key[0]], "date": key[1].isoformat(), "half": key[2], "count": counts[key]}
            item["reason"] = half_day_reason(item)
            result.half_days.append(item)
    return result


# -- who and what -------------------------------------------------------------------------------------------
async def assignment_problem(
    db: AsyncSession, teacher: User | None, school_class: SchoolClass | None, subject: str
) -> str | None:
    """Why this teacher cannot be timetabled for this subject in this class ("English / Tiếng Việt"), or None."""
    if teacher is None or teacher.role != AccountRole.teacher:
        return "This account is not a teacher. / Tài khoản này không phải giáo viên."
    if not teacher.active:
        return f"The account of {teacher.full_name} is deactivated. / Tài khoản của {teacher.full_name} đã bị khóa."
    if school_class is None:
        return "There is no such class. / Không có lớp này."
    assigned = (
        await db.execute(
            select(TeachingAssignment.id).where(
                TeachingAssignment.teacher_id == teacher.id,
                TeachingAssignment.class_id == school_class.id,
                TeachingAssignment.subject == subject,
            )
        )
    ).first()
    if assigned is None:
        return (
            f"{teacher.full_name} is not assigned to teach {subject} in {school_class.name}: add the teaching "
            f"assignment first. / {teacher.full_name} chưa được phân công dạy {subject} ở lớp "
            f"{school_class.name}: hãy thêm phân công giảng dạy trước."
        )
    return None


# -- the file ----------------------------------------------------------------------------------------------
def template_xlsx() -> bytes:
    return xlsx_book(
        [
            ("Thời khóa biểu", HEADER, []),
            ("Hướng dẫn", ["Cột / Column", "Cách ghi / How to fill it"], GUIDE),
            ("Ví dụ", HEADER, EXAMPLES),
        ]
    )


def template_csv() -> bytes:
    return csv_bytes(HEADER, EXAMPLES)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFC", str(value)).strip()


_CLOCK = re.compile(r"(\d{1,2})\s*[:hg.]\s*(\d{2})?(?::\d{2})?")  # 07:00, 7h, 7g30, 07:00:00


def _clock(value: Any) -> time | None:
    if isinstance(value, datetime):
        return value.time().replace(second=0, microsecond=0)
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    if isinstance(value, float) and 0 <= value < 1:  # a spreadsheet's fraction of a day
        minutes = round(value * 24 * 60)
        return time(minutes // 60, minutes % 60)
    text = _text(value).lower()
    match = _CLOCK.fullmatch(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            found = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        return found if 1970 < found.year < 2100 else None
    return None


def _weekday(value: Any) -> int | None:
    said = words(_text(value)).replace("thứ", "").replace("thu ", "").strip()
    if said.startswith("t") and said[1:].isdigit():
        said = said[1:]
    return WEEKDAY_WORDS.get(said)


@dataclass
class FileRow:
    line: int
    class_name: str
    subject: str
    teacher_pid: str
    weekday: int
    start: time
    end: time
    first: date
    last: date
    mode: PeriodMode


def _rows_of(data: bytes) -> tuple[list[Any], Any]:
    """(header, iterator of (line, cells)) of a CSV or XLSX file."""
    if data.startswith(XLSX_MAGIC):
        book = open_workbook(data, "not_a_timetable")
        sheet = book["Thời khóa biểu"] if "Thời khóa biểu" in book.sheetnames else book.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True, max_col=30, max_row=MAX_ROWS + 2))
        book.close()
        return (list(rows[0]) if rows else []), ((line, list(r)) for line, r in enumerate(rows[1:], start=2))
    body = data.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in body:  # no store keeps it (PostgreSQL refuses it in text): a clear 400, not a 500
        line = body[: body.index(b"\x00")].count(b"\n") + 1
        raise SheetFileError(
            400, "invalid_file", f"line {line}: the file contains the NUL character. / dòng {line}: tệp có ký tự NUL."
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise SheetFileError(
            400,
            "not_utf8",
            f"line {line}: the file is not UTF-8; save it as 'CSV UTF-8' or "
            f".xlsx. / dòng {line}: tệp không phải UTF-8; hãy lưu dạng "
            "'CSV UTF-8' hoặc .xlsx.",
        ) from None
    sample = text[:2000]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])

    def lines():
        for cells in reader:
            yield reader.line_num, cells

    return header, lines()


def parse_file(data: bytes) -> tuple[list[FileRow], list[RowProblem]]:
    """Every row read and checked on its own (the store's checks come after). Raises SheetFileError."""
    if len(data) > MAX_FILE_BYTES:
        raise SheetFileError(413, "file_too_large", "The file is larger than 2 MB. / Tệp lớn hơn 2 MB.")
    if not data.strip():
        raise SheetFileError(400, "empty_import", "The file is empty. / Tệp trống.")
    header, rows = _rows_of(data)
    where = column_positions(header, COLUMNS, REQUIRED, ALIASES)
    parsed: list[FileRow] = []
    problems: list[RowProblem] = []
    count = 0
    for line, cells in rows:

        def cell(key: str) -> Any:
            index = where.get(key)
            return cells[index] if index is not None and index < len(cells) else None

        if not any(_text(v) for v in cells):
            continue
        count += 1
        if count > MAX_ROWS:
            raise SheetFileError(
                413,
                "too_many_rows",
                f"The file has more than {MAX_ROWS} rows; split it. / Tệp có hơn {MAX_ROWS} dòng; hãy chia nhỏ.",
            )
        found: list[RowProblem] = []

        def bad(key: str, reason: str) -> None:
            found.append(RowProblem(line, dict(COLUMNS)[key], reason))

        class_name, subject, teacher = (
            _text(cell("class")),
            " ".join(_text(cell("subject")).split()),
            _text(cell("teacher")),
        )
        if not class_name:
            bad("class", "The class is missing. / Thiếu tên lớp.")
        elif len(class_name) > 64:
            bad("class", "The class name is longer than 64 characters. / Tên lớp dài hơn 64 ký tự.")
        if not subject:
            bad("subject", "The subject is missing. / Thiếu môn học.")
        elif len(subject) > 100:
            bad("subject", "The subject is longer than 100 characters. / Tên môn dài hơn 100 ký tự.")
        if not teacher:
            bad("teacher", "The teacher's personal ID is missing. / Thiếu số định danh giáo viên.")
        weekday = _weekday(cell("weekday"))
        if weekday is None:
            bad(
                "weekday",
                f"{_text(cell('weekday'))!r} is not a weekday: write 2 … 7 or CN. / "
                f"{_text(cell('weekday'))!r} không phải là thứ: ghi 2 … 7 hoặc CN.",
            )
        start, end = _clock(cell("start")), _clock(cell("end"))
        for key, value in (("start", start), ("end", end)):
            if value is None:
                bad(
                    key,
                    f"{_text(cell(key))!r} is not a time such as 07:00. / {_text(cell(key))!r} không phải "
                    "giờ dạng 07:00.",
                )
        if start and end and end <= start:
            bad("end", "The period must end after it starts. / Giờ kết thúc phải sau giờ bắt đầu.")
        first = _day(cell("from"))
        if first is None:
            bad(
                "from",
                f"{_text(cell('from'))!r} is not a date such as 07/09/2026. / {_text(cell('from'))!r} "
                "không phải ngày dạng 07/09/2026.",
            )
        last = first
        if _text(cell("to")):
            last = _day(cell("to"))
            if last is None:
                bad(
                    "to",
                    f"{_text(cell('to'))!r} is not a date such as 31/12/2026. / {_text(cell('to'))!r} "
                    "không phải ngày dạng 31/12/2026.",
                )
        if first and last:
            if last < first:
                bad("to", "“To” is before “From”. / “Đến ngày” trước “Từ ngày”.")
            elif (last - first).days > MAX_DAYS:
                bad("to", f"At most {MAX_DAYS} days from “From”. / Không quá {MAX_DAYS} ngày kể từ “Từ ngày”.")
        mode = MODE_WORDS.get(words(_text(cell("mode"))))
        if mode is None:
            bad(
                "mode",
                f"{_text(cell('mode'))!r} is not a mode: write Trực tuyến or Kết hợp. / "
                f"{_text(cell('mode'))!r} không phải hình thức: ghi Trực tuyến hoặc Kết hợp.",
            )
        if found:
            problems += found
            continue
        # No problem found: every value was read (a missing one is a problem above).
        assert weekday is not None and start is not None and end is not None
        assert first is not None and last is not None and mode is not None
        parsed.append(FileRow(line, class_name, subject, teacher, weekday, start, end, first, last, mode))
    if not parsed and not problems:
        raise SheetFileError(
            400, "empty_import", "The file has no rows under its header. / Tệp chưa có dòng nào dưới dòng tiêu đề."
        )
    return parsed, problems


async def plan_file(db: AsyncSession, rows: list[FileRow], school_year: str) -> tuple[list[Planned], list[RowProblem]]:
    """The periods of the file's rows, or the rows whose class, teacher or assignment is wrong."""
    classes = {
        c.name: c
        for c in (await db.execute(select(SchoolClass).where(SchoolClass.school_year == school_year))).scalars()
    }
    teachers = (
        {
            u.personal_id: u
            for u in (
                await db.execute(select(User).where(User.personal_id.in_({r.teacher_pid for r in rows})))
            ).scalars()
        }
        if rows
        else {}
    )
    assigned = set(
        (
            await db.execute(
                select(TeachingAssignment.teacher_id, TeachingAssignment.class_id, TeachingAssignment.subject)
            )
        ).all()
    )
    planned: list[Planned] = []
    problems: list[RowProblem] = []
    for row in rows:
        school_class, teacher = classes.get(row.class_name), teachers.get(row.teacher_pid)
        if school_class is None:
            problems.append(
                RowProblem(
                    row.line,
                    dict(COLUMNS)["class"],
                    f"There is no class {row.class_name} in {school_year}. / Không có lớp "
                    f"{row.class_name} trong năm học {school_year}.",
                )
            )
            continue
        if teacher is None:
            problems.append(
                RowProblem(
                    row.line,
                    dict(COLUMNS)["teacher"],
                    f"No account has the personal ID {row.teacher_pid}. / Không có tài khoản "
                    f"nào có số định danh {row.teacher_pid}.",
                )
            )
            continue
        if (
            teacher.role != AccountRole.teacher
            or not teacher.active
            or (teacher.id, school_class.id, row.subject) not in assigned
        ):
            reason = await assignment_problem(db, teacher, school_class, row.subject)
            problems.append(RowProblem(row.line, dict(COLUMNS)["teacher"], reason or ""))
            continue
        days = weekly_days(row.first, row.last, {row.weekday})
        if not days:
            problems.append(
                RowProblem(
                    row.line,
                    dict(COLUMNS)["weekday"],
                    f"No {EN_WEEKDAY[row.weekday]} between {row.first:%d/%m/%Y} and {row.last:%d/%m/%Y}. / Không có "
                    f"{VI_WEEKDAY[row.weekday]} nào từ {row.first:%d/%m/%Y} đến {row.last:%d/%m/%Y}.",
                )
            )
            continue
        for day in days:
            planned.append(
                Planned(
                    school_class.id,
                    school_class.name,
                    row.subject,
                    teacher.id,
                    teacher.full_name,
                    at_school(day, row.start),
                    at_school(day, row.end),
                    row.mode,
                    line=row.line,
                )
            )
    return planned, problems


def create(db: AsyncSession, planned: list[Planned]) -> list[Period]:
    created = [
        Period(
            class_id=p.class_id,
            subject=p.subject,
            teacher_id=p.teacher_id,
            starts_at=p.starts_at,
            ends_at=p.ends_at,
            mode=p.mode,
            parents_invited=p.parents_invited,
        )
        for p in planned
    ]
    db.add_all(created)
    return created
