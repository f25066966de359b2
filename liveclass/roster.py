"""Roster import from the school's CSV: check every row first, then create or update in one transaction.

Columns (header required, UTF-8 with or without BOM, comma separated):
    personal_id,full_name,role,class,date_of_birth,parent_of
- role: admin, teacher, student, parent or observer.
- class: a student's class (enrolled; moved there from another class of the same school year);
  a teacher's homeroom class; empty otherwise. Missing classes are created.
- date_of_birth: YYYY-MM-DD or DD/MM/YYYY, may be empty.
- parent_of: for a parent, the personal IDs of their children, separated by ';'.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Callable, Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.accounts import personal_id_problem
from liveclass.config import Settings
from liveclass.models import AccountRole, Enrollment, ParentLink, SchoolClass, User
from liveclass.passwords import generate_password, hash_generated_password

COLUMNS = ["personal_id", "full_name", "role", "class", "date_of_birth", "parent_of"]
MAX_NAME = 200


class RosterFileError(Exception):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass
class RosterRow:
    line: int
    personal_id: str
    full_name: str
    role: AccountRole
    class_name: str
    date_of_birth: date | None
    parent_of: list[str]


@dataclass
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    passwords: list[tuple[str, str, str]] = field(default_factory=list)  # personal_id, name, password


def current_school_year(today: date | None = None) -> str:
    """Vietnamese school years start in September: 2026-11-23 is in 2026-2027."""
    today = today or date.today()
    start = today.year if today.month >= 8 else today.year - 1
    return f"{start}-{start + 1}"


def decode_roster(raw: bytes) -> str:
    # Drop the BOM ourselves: with "utf-8-sig" the error offset would not count it, naming the wrong line.
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise RosterFileError(
            f"line {line}: the file is not UTF-8 (byte 0x{body[exc.start]:02x}); save it as "
            "'CSV UTF-8' in Excel or LibreOffice and try again"
        ) from None


def _parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"date_of_birth {text!r} is not YYYY-MM-DD or DD/MM/YYYY")


def parse_roster(text: str, settings: Settings) -> tuple[list[RosterRow], list[RowProblem]]:
    """Every row checked on its own and against the others; nothing touches the store here."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RosterFileError(
            f"line 1: the header must name the columns {','.join(COLUMNS)}; missing: {', '.join(missing)}"
        )
    reader.fieldnames = header
    rows: list[RosterRow] = []
    problems: list[RowProblem] = []
    first_line_of: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for k, v in record.items() if k is not None):
            continue  # blank line
        if None in record:
            problems.append(RowProblem(line, f"too many columns ({len(header) + len(record[None])})"))
            continue
        value = {k: (v or "").strip() for k, v in record.items()}
        reasons = []
        pid = value["personal_id"]
        if not pid:
            reasons.append("personal_id is missing")
        elif problem := personal_id_problem(settings, pid):
            reasons.append(problem)
        elif pid in first_line_of:
            reasons.append(f"duplicate personal_id {pid} (first on line {first_line_of[pid]})")
        else:
            first_line_of[pid] = line
        name = " ".join(value["full_name"].split())
        if not name:
            reasons.append("full_name is missing")
        elif len(name) > MAX_NAME:
            reasons.append(f"full_name is longer than {MAX_NAME} characters")
        role = value["role"].lower()
        if role not in AccountRole.__members__:
            reasons.append(f"unknown role {value['role']!r} (use one of: {', '.join(AccountRole.__members__)})")
        class_name = value["class"]
        if len(class_name) > 64:
            reasons.append("class is longer than 64 characters")
        elif class_name and role not in ("student", "teacher"):
            reasons.append(f"class is only for students and teachers, not for role {role!r}")
        birth = None
        if value["date_of_birth"]:
            try:
                birth = _parse_date(value["date_of_birth"])
            except ValueError as exc:
                reasons.append(str(exc))
        children = [c.strip() for c in value["parent_of"].split(";") if c.strip()]
        if children and role != "parent":
            reasons.append("parent_of is only for parents")
        if reasons:
            problems.append(RowProblem(line, "; ".join(reasons)))
            continue
        rows.append(RosterRow(line, pid, name, AccountRole(role), class_name, birth, children))
    return rows, problems


async def import_roster(
    db: AsyncSession,
    settings: Settings,
    rows: list[RosterRow],
    *,
    school_year: str,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportResult:
    """Create or update accounts, classes, enrollments and parent links (the caller commits)."""
    result = ImportResult()
    existing = {
        u.personal_id: u
        for u in (await db.execute(select(User).where(User.personal_id.in_([r.personal_id for r in rows])))).scalars()
    }
    classes = {
        c.name: c
        for c in (await db.execute(select(SchoolClass).where(SchoolClass.school_year == school_year))).scalars()
    }
    users: dict[str, User] = {}
    for row in rows:
        user = existing.get(row.personal_id)
        if user is None:
            password = generate_password()
            user = User(
                personal_id=row.personal_id,
                full_name=row.full_name,
                role=row.role,
                date_of_birth=row.date_of_birth,
                password_hash=hash_generated_password(password),
                must_change_password=True,
                active=True,
            )
            db.add(user)
            result.created += 1
            result.passwords.append((row.personal_id, row.full_name, password))
        elif (user.full_name, user.role, user.date_of_birth) != (row.full_name, row.role, row.date_of_birth):
            user.full_name, user.role, user.date_of_birth = row.full_name, row.role, row.date_of_birth
            result.updated += 1
        else:
            result.unchanged += 1
        users[row.personal_id] = user
        if row.class_name and row.class_name not in classes:
            classes[row.class_name] = SchoolClass(name=row.class_name, school_year=school_year)
            db.add(classes[row.class_name])
        progress(1)
    await db.flush()

    # Load what already links these people once, instead of a query per row.
    ids = [u.id for u in users.values()]
    year_class_ids = {c.id for c in classes.values()}
    enrolled: dict[int, set[int]] = {}
    for student_id, class_id in (
        await db.execute(
            select(Enrollment.student_id, Enrollment.class_id).where(
                Enrollment.student_id.in_(ids), Enrollment.class_id.in_(year_class_ids)
            )
        )
    ).all():
        enrolled.setdefault(student_id, set()).add(class_id)
    linked = {
        (parent_id, student_id)
        for parent_id, student_id in (
            await db.execute(select(ParentLink.parent_id, ParentLink.student_id).where(ParentLink.parent_id.in_(ids)))
        ).all()
    }

    for row in rows:
        user = users[row.personal_id]
        if row.role == AccountRole.student and row.class_name:
            target = classes[row.class_name].id
            current = enrolled.get(user.id, set())
            # One class per school year: a re-import that names another class moves the student.
            if current - {target}:
                await db.execute(
                    delete(Enrollment).where(
                        Enrollment.student_id == user.id, Enrollment.class_id.in_(current - {target})
                    )
                )
            if target not in current:
                db.add(Enrollment(student_id=user.id, class_id=target))
        elif row.role == AccountRole.teacher and row.class_name:
            classes[row.class_name].homeroom_teacher_id = user.id
        for child_pid in row.parent_of:
            child = (
                users.get(child_pid)
                or (await db.execute(select(User).where(User.personal_id == child_pid))).scalar_one_or_none()
            )
            if child is not None and (user.id, child.id) not in linked:
                db.add(ParentLink(parent_id=user.id, student_id=child.id))
                linked.add((user.id, child.id))
    return result


async def check_links(db: AsyncSession, rows: Iterable[RosterRow]) -> list[RowProblem]:
    """parent_of must name students, in this file or already in the store."""
    rows = list(rows)
    in_file = {r.personal_id: r.role for r in rows}
    wanted = {c for r in rows for c in r.parent_of if c not in in_file}
    stored = (
        {
            pid: role
            for pid, role in (
                await db.execute(select(User.personal_id, User.role).where(User.personal_id.in_(wanted)))
            ).all()
        }
        if wanted
        else {}
    )
    problems = []
    for row in rows:
        for child in row.parent_of:
            role = in_file.get(child, stored.get(child))
            if role is None:
                problems.append(RowProblem(row.line, f"parent_of names {child}, who is not in the file nor registered"))
            elif role != AccountRole.student:
                problems.append(RowProblem(row.line, f"parent_of names {child}, who is not a student"))
    return problems
