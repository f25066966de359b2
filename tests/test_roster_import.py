"""`liveclass roster import` run for real (a subprocess), then checked in the store and through the HTTP API.

Line numbers in the expectations are the file's own lines as the admin sees them in an editor (header = 1).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from tests.helpers import make_settings, start_server
from tests.test_cli import count_users, liveclass

YEAR = "2026-2027"
HEADER = ["personal_id", "full_name", "role", "class", "date_of_birth", "parent_of"]

ADMIN, TEACHER_1, TEACHER_2 = "001088000001", "001088000002", "001088000003"
ANH, KHOI, HUONG = "001210000001", "001210000002", "001210000003"
CUONG, LAN, OBSERVER = "001079000001", "001079000002", "001090000001"

GOOD_ROWS = [
    [ADMIN, "Trần Quản Trị", "admin", "", "", ""],
    # A parent before their children: the order of the rows does not matter.
    [CUONG, "Phạm Văn Cường", "parent", "", "", f"{ANH};{KHOI}"],
    [TEACHER_1, "Nguyễn Thị Hà", "teacher", "10A1", "1985-03-12", ""],
    [TEACHER_2, "Lê Văn Bình", "teacher", "10A2", "", ""],
    [ANH, "Phạm Ngọc Ánh", "student", "10A1", "2010-09-05", ""],
    [KHOI, "Đỗ Minh Khôi", "student", "10A1", "15/01/2010", ""],
    [HUONG, "Vũ Thị Thu Hương", "student", "10A2", "2010-12-31", ""],
    [LAN, "Hoàng Thị Lan", "parent", "", "", HUONG],
    [OBSERVER, "Hoàng Hiệu Trưởng", "observer", "", "", ""],
]


# -- helpers ------------------------------------------------------------------------------------------
def csv_text(rows, header=HEADER, newline="\n") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write_roster(path: Path, rows, *, encoding="utf-8", newline="\n", header=HEADER) -> Path:
    path.write_bytes(csv_text(rows, header, newline).encode(encoding))
    return path


def import_roster(path: Path, data_dir: Path, *extra: str, year: str | None = YEAR):
    args = ["roster", "import", str(path), *extra]
    if year:
        args += ["--school-year", year]
    return liveclass(*args, data_dir=data_dir)


def read_passwords(path: Path) -> dict[str, tuple[str, str]]:
    """personal_id -> (full_name, password), checking the file's shape on the way."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["personal_id", "full_name", "password"]
    result = {pid: (name, password) for pid, name, password in rows[1:]}
    assert len(result) == len(rows) - 1  # one line per account
    assert all(len(password) >= 8 for _, password in result.values())
    return result


class Store:
    """What the import left in the SQLite store, by personal ID and class name."""

    def __init__(self, data_dir: Path):
        with sqlite3.connect(data_dir / "liveclass.db") as db:
            self.users = {
                pid: (name, role, dob)
                for pid, name, role, dob in db.execute("SELECT personal_id, full_name, role, date_of_birth FROM users")
            }
            self.must_change = dict(db.execute("SELECT personal_id, must_change_password FROM users"))
            self.password_hashes = dict(db.execute("SELECT personal_id, password_hash FROM users"))
            self.classes = [(name, year) for name, year in db.execute("SELECT name, school_year FROM classes")]
            self.homeroom = {
                (name, year): pid
                for name, year, pid in db.execute(
                    "SELECT c.name, c.school_year, u.personal_id FROM classes c "
                    "LEFT JOIN users u ON u.id = c.homeroom_teacher_id"
                )
            }
            self.enrollments = sorted(
                db.execute(
                    "SELECT u.personal_id, c.name, c.school_year FROM enrollments e "
                    "JOIN users u ON u.id = e.student_id JOIN classes c ON c.id = e.class_id"
                )
            )
            self.links = sorted(
                db.execute(
                    "SELECT p.personal_id, s.personal_id FROM parent_links l "
                    "JOIN users p ON p.id = l.parent_id JOIN users s ON s.id = l.student_id"
                )
            )

    def classes_of(self, personal_id: str, year: str = YEAR) -> list[str]:
        return sorted(name for pid, name, y in self.enrollments if pid == personal_id and y == year)


def assert_nothing_imported(data_dir: Path) -> None:
    assert count_users(data_dir) == 0
    db = data_dir / "liveclass.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM classes").fetchone() == (0,)


def reported_lines(stderr: str) -> dict[int, str]:
    """line number -> reason, from the `FILE: line N: reason` lines on stderr."""
    found = {}
    for text in stderr.splitlines():
        if ": line " in text:
            number, reason = text.split(": line ", 1)[1].split(": ", 1)
            found[int(number)] = reason
    return found


# -- a good file --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "encoding, newline", [("utf-8", "\n"), ("utf-8-sig", "\r\n")], ids=["utf8-lf", "utf8-bom-crlf"]
)
async def test_good_file_imports_people_classes_and_links(tmp_path, encoding, newline):
    data_dir = tmp_path / "var"
    roster = write_roster(tmp_path / "roster.csv", GOOD_ROWS, encoding=encoding, newline=newline)
    passwords_out = tmp_path / "passwords.csv"
    result = import_roster(roster, data_dir, "--passwords-out", str(passwords_out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"Roster imported for {YEAR}: 9 created, 0 updated, 0 unchanged, 0 bad row(s) skipped." in result.stdout

    store = Store(data_dir)
    assert store.users == {
        ADMIN: ("Trần Quản Trị", "admin", None),
        CUONG: ("Phạm Văn Cường", "parent", None),
        TEACHER_1: ("Nguyễn Thị Hà", "teacher", "1985-03-12"),
        TEACHER_2: ("Lê Văn Bình", "teacher", None),
        ANH: ("Phạm Ngọc Ánh", "student", "2010-09-05"),
        KHOI: ("Đỗ Minh Khôi", "student", "2010-01-15"),  # DD/MM/YYYY understood
        HUONG: ("Vũ Thị Thu Hương", "student", "2010-12-31"),
        LAN: ("Hoàng Thị Lan", "parent", None),
        OBSERVER: ("Hoàng Hiệu Trưởng", "observer", None),
    }
    assert all(store.must_change.values())
    assert sorted(store.classes) == [("10A1", YEAR), ("10A2", YEAR)]
    assert store.homeroom == {("10A1", YEAR): TEACHER_1, ("10A2", YEAR): TEACHER_2}
    assert store.enrollments == sorted([(ANH, "10A1", YEAR), (KHOI, "10A1", YEAR), (HUONG, "10A2", YEAR)])
    assert store.links == sorted([(CUONG, ANH), (CUONG, KHOI), (LAN, HUONG)])

    # Generated passwords: one per new account, only in the private file, never on the terminal.
    passwords = read_passwords(passwords_out)
    assert {pid: name for pid, (name, _) in passwords.items()} == {pid: v[0] for pid, v in store.users.items()}
    for _, password in passwords.values():
        assert password not in result.stdout + result.stderr
    assert str(passwords_out) in result.stdout

    # What people notice: every generated password logs in and must be changed; the admin then sees the classes.
    server = await start_server(make_settings(data_dir))
    try:
        for pid, (_, password) in passwords.items():
            person = server.person()
            response = await person.request("POST", "/auth/login", json={"personal_id": pid, "password": password})
            body = await response.json()
            assert response.status == 200, body
            assert body["must_change_password"] is True and body["user"]["personal_id"] == pid
            if pid == ADMIN:
                admin = person
                admin.csrf = body["csrf_token"]
        await admin.json(
            "POST",
            "/auth/password",
            json={"current_password": passwords[ADMIN][1], "new_password": "Sông-Hương-mùa-thu"},
        )
        classes = {c["name"]: c for c in (await admin.json("GET", "/classes"))["items"]}
        assert sorted(classes) == ["10A1", "10A2"] and classes["10A1"]["school_year"] == YEAR
        detail = await admin.json("GET", f"/classes/{classes['10A1']['id']}")
        assert sorted(s["full_name"] for s in detail["students"]) == ["Phạm Ngọc Ánh", "Đỗ Minh Khôi"]
        teacher = await admin.json("GET", f"/users/{detail['homeroom_teacher_id']}")
        assert teacher["full_name"] == "Nguyễn Thị Hà"
    finally:
        await server.close()


def test_default_school_year_is_the_current_one(tmp_path):
    from liveclass.roster import current_school_year

    data_dir = tmp_path / "var"
    roster = write_roster(tmp_path / "roster.csv", [[ANH, "Phạm Ngọc Ánh", "student", "10A1", "", ""]])
    result = import_roster(roster, data_dir, "--passwords-out", str(tmp_path / "p.csv"), year=None)
    assert result.returncode == 0, result.stderr
    assert Store(data_dir).enrollments == [(ANH, "10A1", current_school_year())]


def test_header_is_matched_loosely_and_blank_lines_are_ignored(tmp_path):
    """Columns in another order, capitals and spaces in the header, empty lines: as Excel users write them."""
    data_dir = tmp_path / "var"
    text = (
        " Full_Name , PERSONAL_ID,role,parent_of,class,date_of_birth\n"
        "\n"
        "Phạm Ngọc Ánh,001210000001,student,,10A1,\n"
        ",,,,,\n"
        "  Đỗ   Minh Khôi ,001210000002,student,,10A1,\n"
    )
    (tmp_path / "roster.csv").write_text(text, encoding="utf-8")
    result = import_roster(tmp_path / "roster.csv", data_dir, "--passwords-out", str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    store = Store(data_dir)
    assert {pid: v[0] for pid, v in store.users.items()} == {ANH: "Phạm Ngọc Ánh", KHOI: "Đỗ Minh Khôi"}


# -- bad rows -----------------------------------------------------------------------------------------
BAD_ROWS = [
    [ANH, "Phạm Ngọc Ánh", "student", "10A1", "2010-09-05", ""],  # 2 good
    ["12345", "Lê Thị Sai Số", "student", "10A1", "", ""],  # 3 bad ID
    [KHOI, "Đỗ Minh Khôi", "student", "10A1", "", ""],  # 4 good
    [ANH, "Phạm Ngọc Ánh Trùng", "student", "10A2", "", ""],  # 5 duplicate of line 2
    [HUONG, "", "student", "10A1", "", ""],  # 6 missing name
    ["001210000004", "Vũ Văn Vai", "principal", "", "", ""],  # 7 unknown role
    ["001210000005", "Ngô Thị Ngày", "student", "10A1", "31/02/2010", ""],  # 8 bad date
    [CUONG, "Phạm Văn Cường", "parent", "", "", f"{ANH};001299999999"],  # 9 parent of an unknown person
    [],  # 10 blank
    [LAN, "Hoàng Thị Lan", "parent", "", "", TEACHER_1],  # 11 parent of a teacher
    [TEACHER_1, "Nguyễn Thị Hà", "teacher", "10A1", "", ""],  # 12 good
    ["0012100000066", "Trần Dư Số", "student", "10A1", "", ""],  # 13 bad ID (13 digits)
]
EXPECTED_PROBLEMS = {
    3: ["12345", "pattern"],
    5: ["duplicate", ANH, "line 2"],
    6: ["full_name is missing"],
    7: ["unknown role", "principal"],
    8: ["date_of_birth", "31/02/2010"],
    9: ["001299999999", "not in the file nor registered"],
    11: [TEACHER_1, "not a student"],
    13: ["0012100000066", "pattern"],
}


def assert_problems_reported(stderr: str, roster: Path) -> None:
    assert "Traceback" not in stderr
    found = reported_lines(stderr)
    assert sorted(found) == sorted(EXPECTED_PROBLEMS), stderr
    for line, needles in EXPECTED_PROBLEMS.items():
        for needle in needles:
            assert needle in found[line], (line, needle, found[line])
    assert f"{roster}: line 3: " in stderr  # the file is named too


def test_bad_rows_are_all_reported_and_nothing_is_imported(tmp_path):
    data_dir = tmp_path / "var"
    roster = write_roster(tmp_path / "roster.csv", BAD_ROWS)
    passwords_out = tmp_path / "passwords.csv"
    result = import_roster(roster, data_dir, "--passwords-out", str(passwords_out))
    assert result.returncode == 1, result.stdout
    assert_problems_reported(result.stderr, roster)
    assert "8 bad row(s); nothing was imported" in result.stderr
    assert "--skip-bad-rows" in result.stderr
    assert result.stdout == ""
    assert_nothing_imported(data_dir)
    assert not passwords_out.exists()


def test_skip_bad_rows_imports_the_good_rows_and_reports_the_bad(tmp_path):
    data_dir = tmp_path / "var"
    roster = write_roster(tmp_path / "roster.csv", BAD_ROWS)
    passwords_out = tmp_path / "passwords.csv"
    result = import_roster(roster, data_dir, "--passwords-out", str(passwords_out), "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    assert_problems_reported(result.stderr, roster)
    assert "3 created, 0 updated, 0 unchanged, 8 bad row(s) skipped" in result.stdout

    store = Store(data_dir)
    # The first of two rows with one ID wins; the duplicate changes nothing.
    assert store.users == {
        ANH: ("Phạm Ngọc Ánh", "student", "2010-09-05"),
        KHOI: ("Đỗ Minh Khôi", "student", None),
        TEACHER_1: ("Nguyễn Thị Hà", "teacher", None),
    }
    assert store.enrollments == sorted([(ANH, "10A1", YEAR), (KHOI, "10A1", YEAR)])
    assert store.classes == [("10A1", YEAR)]
    assert store.homeroom == {("10A1", YEAR): TEACHER_1}
    assert store.links == []
    assert set(read_passwords(passwords_out)) == {ANH, KHOI, TEACHER_1}


def test_parent_of_may_name_a_student_already_registered(tmp_path):
    data_dir = tmp_path / "var"
    first = write_roster(
        tmp_path / "students.csv",
        [[ANH, "Phạm Ngọc Ánh", "student", "10A1", "", ""], [TEACHER_1, "Nguyễn Thị Hà", "teacher", "", "", ""]],
    )
    assert import_roster(first, data_dir, "--passwords-out", str(tmp_path / "p1.csv")).returncode == 0
    parents = write_roster(
        tmp_path / "parents.csv",
        [[CUONG, "Phạm Văn Cường", "parent", "", "", ANH], [LAN, "Hoàng Thị Lan", "parent", "", "", TEACHER_1]],
    )
    refused = import_roster(parents, data_dir, "--passwords-out", str(tmp_path / "p2.csv"))
    assert refused.returncode == 1
    assert reported_lines(refused.stderr).keys() == {3}  # a registered teacher is still not a child
    result = import_roster(parents, data_dir, "--passwords-out", str(tmp_path / "p3.csv"), "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    assert Store(data_dir).links == [(CUONG, ANH)]


def test_other_bad_rows(tmp_path):
    data_dir = tmp_path / "var"
    rows = [
        [KHOI, "Đỗ Minh Khôi", "student", "10A1", "", ""],  # 2 good
        [ANH, "Phạm Ngọc Ánh", "student", "10A1", "", "", "extra"],  # 3
        [ANH, "Phạm Ngọc Ánh", "parent", "10A1", "", ""],  # 4
        [ANH, "Phạm Ngọc Ánh", "student", "", "", KHOI],  # 5
        [ANH, "Phạm Ngọc Ánh", "student", "10A1", "2010-13-01", ""],  # 6
        ["", "Phạm Ngọc Ánh", "student", "10A1", "", ""],  # 7
        [ANH, "Á" * 201, "student", "10A1", "", ""],  # 8
        ["12345", "", "principal", "10A1", "hôm qua", ""],  # 9: every reason, one line
    ]
    expected = {
        3: ["too many columns"],
        4: ["class is only for students and teachers"],
        5: ["parent_of is only for parents"],
        6: ["date_of_birth", "2010-13-01"],
        7: ["personal_id is missing"],
        8: ["longer than 200"],
        9: ["pattern", "full_name is missing", "unknown role", "date_of_birth"],
    }
    result = import_roster(
        write_roster(tmp_path / "roster.csv", rows), data_dir, "--passwords-out", str(tmp_path / "p.csv")
    )
    assert result.returncode == 1
    found = reported_lines(result.stderr)
    assert sorted(found) == sorted(expected), result.stderr
    for line, needles in expected.items():
        for needle in needles:
            assert needle in found[line], (line, needle, found[line])
    assert_nothing_imported(data_dir)


# -- whole-file problems ------------------------------------------------------------------------------
def _cp1258_file() -> tuple[bytes, int, int]:
    text = csv_text([[ANH, "Nguyen Van An", "student", "10A1", "", ""], [KHOI, "Lê Văn Hà", "student", "10A1", "", ""]])
    return text.encode("cp1258"), 3, 0xEA  # ê


def _utf8_then_latin1() -> tuple[bytes, int, int]:
    good = csv_text(
        [[ANH, "Phạm Ngọc Ánh", "student", "10A1", "", ""], [KHOI, "Đỗ Minh Khôi", "student", "10A1", "", ""]]
    ).encode("utf-8-sig")
    return good + f"{HUONG},Zoë Müller,student,10A1,,\n".encode("latin-1"), 4, 0xEB  # ë


def _bom_then_latin1_at_line_start() -> tuple[bytes, int, int]:
    """Columns in another order, so the bad byte opens the line: the BOM must not shift the line count."""
    head = "full_name,personal_id,role,class,date_of_birth,parent_of\nAn,001210000001,student,10A1,,\n"
    return "\ufeff".encode() + head.encode() + "Élodie,001210000002,student,10A1,,\n".encode("latin-1"), 3, 0xC9


@pytest.mark.parametrize(
    "make",
    [_cp1258_file, _utf8_then_latin1, _bom_then_latin1_at_line_start],
    ids=["cp1258", "utf8-bom-then-latin1", "bom-then-latin1-at-line-start"],
)
def test_non_utf8_file_is_refused_with_its_line(tmp_path, make):
    data_dir = tmp_path / "var"
    raw, bad_line, bad_byte = make()
    roster = tmp_path / "roster.csv"
    roster.write_bytes(raw)
    passwords_out = tmp_path / "passwords.csv"
    result = import_roster(roster, data_dir, "--passwords-out", str(passwords_out))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"line {bad_line}:" in message and "not UTF-8" in message and "Nothing was imported" in message
    assert f"byte 0x{bad_byte:02x}" in message
    assert_nothing_imported(data_dir)
    assert not passwords_out.exists()


@pytest.mark.parametrize(
    "content, needles",
    [
        (
            "personal_id,full_name,role,class\n001210000001,Phạm Ngọc Ánh,student,10A1\n",
            ["line 1", "header", "missing: date_of_birth, parent_of"],
        ),
        ("001210000001,Phạm Ngọc Ánh,student,10A1,,\n", ["line 1", "header", "missing: personal_id, full_name"]),
        (
            "personal_id;full_name;role;class;date_of_birth;parent_of\n001210000001;Phạm Ngọc Ánh;student;10A1;;\n",
            ["line 1", "header"],
        ),
        ("", ["line 1", "header"]),
    ],
    ids=["two-columns-missing", "no-header", "semicolons", "empty-file"],
)
def test_missing_header_columns(tmp_path, content, needles):
    data_dir = tmp_path / "var"
    roster = tmp_path / "roster.csv"
    roster.write_text(content, encoding="utf-8")
    result = import_roster(roster, data_dir, "--passwords-out", str(tmp_path / "p.csv"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith("liveclass: "), message
    for needle in needles:
        assert needle in message, (needle, message)
    assert_nothing_imported(data_dir)


def test_missing_file(tmp_path):
    result = import_roster(tmp_path / "nope.csv", tmp_path / "var")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "nope.csv" in result.stderr


# -- re-import ----------------------------------------------------------------------------------------
def test_reimport_updates_moves_and_never_duplicates(tmp_path):
    data_dir = tmp_path / "var"
    first_rows = [
        [TEACHER_1, "Nguyễn Thị Hà", "teacher", "10A1", "", ""],
        [TEACHER_2, "Lê Văn Bình", "teacher", "10A2", "", ""],
        [ANH, "Phạm Ngọc Ánh", "student", "10A1", "2010-09-05", ""],
        [KHOI, "Đỗ Minh Khôi", "student", "10A1", "", ""],
        [HUONG, "Vũ Thị Thu Hương", "student", "10A2", "", ""],
        [CUONG, "Phạm Văn Cường", "parent", "", "", f"{ANH};{KHOI}"],
    ]
    first = import_roster(
        write_roster(tmp_path / "r1.csv", first_rows), data_dir, "--passwords-out", str(tmp_path / "p1.csv")
    )
    assert first.returncode == 0, first.stderr
    before = Store(data_dir)
    assert len(read_passwords(tmp_path / "p1.csv")) == 6

    new_student = "001210000004"
    second_rows = [
        [TEACHER_1, "Nguyễn Thị Hà", "teacher", "10A1", "", ""],
        [TEACHER_2, "Lê Văn Bình", "teacher", "10A2", "", ""],
        [ANH, "Phạm Ngọc Anh Thư", "student", "10A1", "2010-09-05", ""],  # name corrected
        [KHOI, "Đỗ Minh Khôi", "student", "10A2", "", ""],  # moved to 10A2
        [HUONG, "Vũ Thị Thu Hương", "student", "10A2", "", ""],
        [CUONG, "Phạm Văn Cường", "parent", "", "", f"{ANH};{KHOI}"],
        [new_student, "Trịnh Công Sơn", "student", "10A1", "", ""],  # new
    ]
    second_file = write_roster(tmp_path / "r2.csv", second_rows)
    second = import_roster(second_file, data_dir, "--passwords-out", str(tmp_path / "p2.csv"))
    assert second.returncode == 0, second.stderr
    assert "1 created, 1 updated" in second.stdout

    after = Store(data_dir)
    assert len(after.users) == 7
    assert after.users[ANH][0] == "Phạm Ngọc Anh Thư"
    assert after.classes_of(KHOI) == ["10A2"]  # left 10A1
    assert after.classes_of(new_student) == ["10A1"]
    assert sorted(after.classes) == [("10A1", YEAR), ("10A2", YEAR)]
    assert len(after.enrollments) == 4 and after.links == before.links
    # Passwords only for the new account; existing ones keep theirs.
    assert set(read_passwords(tmp_path / "p2.csv")) == {new_student}
    assert {pid: after.password_hashes[pid] for pid in before.password_hashes} == before.password_hashes

    # The same file once more: nothing new, so no password file is needed, and nothing changes.
    third = import_roster(second_file, data_dir)
    assert third.returncode == 0, third.stderr
    assert "0 created, 0 updated, 7 unchanged" in third.stdout
    again = Store(data_dir)
    assert (again.users, again.enrollments, again.links, sorted(again.classes), again.password_hashes) == (
        after.users,
        after.enrollments,
        after.links,
        sorted(after.classes),
        after.password_hashes,
    )

    # The next school year: new classes, last year's enrollment stays in last year's records.
    next_year = import_roster(
        write_roster(tmp_path / "r3.csv", [[KHOI, "Đỗ Minh Khôi", "student", "11A2", "", ""]]),
        data_dir,
        year="2027-2028",
    )
    assert next_year.returncode == 0, next_year.stderr
    final = Store(data_dir)
    assert final.classes_of(KHOI) == ["10A2"] and final.classes_of(KHOI, "2027-2028") == ["11A2"]


def test_teacher_change_of_homeroom_and_name_on_reimport(tmp_path):
    data_dir = tmp_path / "var"
    rows = [[TEACHER_1, "Nguyễn Thị Hà", "teacher", "10A1", "", ""], [TEACHER_2, "Lê Văn Bình", "teacher", "", "", ""]]
    assert (
        import_roster(
            write_roster(tmp_path / "r1.csv", rows), data_dir, "--passwords-out", str(tmp_path / "p1.csv")
        ).returncode
        == 0
    )
    rows = [[TEACHER_2, "Lê Văn Bình", "teacher", "10A1", "", ""]]
    result = import_roster(write_roster(tmp_path / "r2.csv", rows), data_dir)
    assert result.returncode == 0, result.stderr
    assert Store(data_dir).homeroom == {("10A1", YEAR): TEACHER_2}


# -- generated passwords ------------------------------------------------------------------------------
def test_new_accounts_without_passwords_out_are_refused(tmp_path):
    data_dir = tmp_path / "var"
    result = import_roster(write_roster(tmp_path / "roster.csv", GOOD_ROWS), data_dir)
    assert result.returncode == 1
    assert "--passwords-out" in result.stderr and "Nothing was imported" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert_nothing_imported(data_dir)


def test_existing_passwords_file_is_not_overwritten(tmp_path):
    data_dir = tmp_path / "var"
    passwords_out = tmp_path / "passwords.csv"
    passwords_out.write_text("last year's passwords\n")
    result = import_roster(
        write_roster(tmp_path / "roster.csv", GOOD_ROWS), data_dir, "--passwords-out", str(passwords_out)
    )
    assert result.returncode == 1
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert passwords_out.read_text() == "last year's passwords\n"
    assert_nothing_imported(data_dir)


def test_passwords_file_in_a_missing_directory(tmp_path):
    data_dir = tmp_path / "var"
    result = import_roster(
        write_roster(tmp_path / "roster.csv", GOOD_ROWS),
        data_dir,
        "--passwords-out",
        str(tmp_path / "no" / "such" / "p.csv"),
    )
    assert result.returncode == 1
    assert "Cannot create" in result.stderr and "Traceback" not in result.stderr
    assert_nothing_imported(data_dir)


# -- a whole school -----------------------------------------------------------------------------------
def test_a_2000_student_roster(tmp_path):
    data_dir = tmp_path / "var"
    classes = [f"{grade}A{n}" for grade in (10, 11, 12) for n in range(1, 15)][:40]
    rows = [[f"0010880{i:05d}", f"Giáo Viên Chủ Nhiệm {i}", "teacher", name, "", ""] for i, name in enumerate(classes)]
    students = [f"0012100{i:05d}" for i in range(2000)]
    rows += [
        [pid, f"Nguyễn Thị Học Sinh {i}", "student", classes[i % 40], f"{1 + i % 28:02d}/0{1 + i % 9}/2010", ""]
        for i, pid in enumerate(students)
    ]
    rows += [
        [f"0010790{i:05d}", f"Phụ Huynh Số {i}", "parent", "", "", f"{students[2 * i]};{students[2 * i + 1]}"]
        for i in range(100)
    ]
    roster = write_roster(tmp_path / "school.csv", rows, encoding="utf-8-sig", newline="\r\n")
    passwords_out = tmp_path / "passwords.csv"

    started = time.perf_counter()
    result = import_roster(roster, data_dir, "--passwords-out", str(passwords_out))
    elapsed = time.perf_counter() - started
    print(f"\nroster import of {len(rows)} rows (2,000 students): {elapsed:.1f} s")  # information, not a limit
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when not on a terminal, never a password
    assert "2140 created" in result.stdout

    store = Store(data_dir)
    assert len(store.users) == 2140
    assert len(store.enrollments) == 2000 and len(store.classes) == 40
    per_class = {}
    for _, name, _ in store.enrollments:
        per_class[name] = per_class.get(name, 0) + 1
    assert set(per_class.values()) == {50}
    assert len(store.links) == 200
    assert len(read_passwords(passwords_out)) == 2140

    started = time.perf_counter()
    again = import_roster(roster, data_dir)
    print(f"re-import of the same roster: {time.perf_counter() - started:.1f} s")
    assert again.returncode == 0, again.stderr
    assert "0 created, 0 updated, 2140 unchanged" in again.stdout
    assert count_users(data_dir) == 2140
