"""The question bank with a real server: questions by subject and topic, who sees and edits them, the rules
of a question, images through signed links, and the XLSX template, import and export."""

from __future__ import annotations

import io
import json
import stat
import struct
import time
import zlib

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from liveclass import question_sheets, questions
from liveclass.api.question_schemas import QuestionOut
from liveclass.archive.spreadsheets import XLSX_TYPE as XLSX
from liveclass.archive.spreadsheets import xlsx_book
from liveclass.models import AuditEntry, Question, TeachingAssignment
from tests.helpers import add_user, seed_school

QUADRATIC = {
    "kind": "single",
    "text": "Phương trình x² − 5x + 6 = 0 có nghiệm nào?",
    "options": ["x = 1", "x = 2 và x = 3", "x = −2", "Vô nghiệm"],
    "correct": ["B"],
    "points": 1,
    "explanation": "Δ = 25 − 24 = 1, x = (5 ± 1) / 2.",
    "subject": "Toán",
    "topic": "Chương 2. Phương trình bậc hai",
}


def png(width: int = 2, height: int = 2, seed: int = 0) -> bytes:
    """A real PNG picture (what a phone or a scanner makes, only smaller)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes((seed + x * 40 + y * 80) % 256 for x in range(width * 3)) for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


async def question_count(server) -> int:
    async with server.db() as db:
        return (await db.execute(select(func.count()).select_from(Question))).scalar_one()


async def audit_actions(server) -> list[str]:
    async with server.db() as db:
        return list((await db.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars())


# -- CRUD ----------------------------------------------------------------------------------------------
async def test_a_teacher_adds_finds_changes_and_deletes_a_question(any_store_server):
    server = any_store_server
    school = await seed_school(server)
    teacher = await server.logged_in(school.teacher)

    created = await teacher.json("POST", "/questions", json=QUADRATIC, expect=201)
    assert created["bank_id"] == created["id"]
    assert {
        k: created[k] for k in ("kind", "text", "options", "correct", "points", "explanation", "subject", "topic")
    } == {**{k: QUADRATIC[k] for k in QUADRATIC}, "points": 1.0}
    assert created["shared"] is False and created["may_edit"] is True and created["image_url"] is None
    assert created["owner"] == {"id": school.teacher.id, "full_name": "Nguyễn Thị Hà"}
    assert created["tolerance"] is None and created["created_at"].endswith("Z")
    QuestionOut.model_validate_json(json.dumps(created), strict=True)  # what openapi.json documents, exactly

    number = await teacher.json(
        "POST",
        "/questions",
        expect=201,
        json={
            "kind": "number",
            "text": "Tính 7 : 2",
            "correct": ["3,5"],
            "tolerance": 0.01,
            "points": 2,
            "subject": "Toán",
            "topic": "Chương 1. Số thực",
            "shared": True,
        },
    )
    assert number["correct"] == ["3.5"]  # kept with a "." decimal, as the room grades it

    listed = await teacher.json("GET", "/questions")
    assert [q["id"] for q in listed["items"]] == [number["id"], created["id"]]  # by subject, then topic
    assert (await teacher.json("GET", "/questions?topic=Chương 2. Phương trình bậc hai"))["items"][0]["id"] == created[
        "id"
    ]
    assert [q["id"] for q in (await teacher.json("GET", "/questions?q=7 : 2"))["items"]] == [number["id"]]
    subjects = await teacher.json("GET", "/questions/subjects")
    assert subjects == {
        "items": [{"subject": "Toán", "count": 2, "topics": ["Chương 1. Số thực", "Chương 2. Phương trình bậc hai"]}]
    }

    changed = await teacher.json(
        "PATCH", f"/questions/{created['id']}", json={"kind": "multiple", "correct": ["b", "A"], "shared": True}
    )
    assert changed["kind"] == "multiple" and changed["correct"] == ["A", "B"] and changed["shared"] is True
    assert changed["options"] == QUADRATIC["options"]  # kept: single and multiple choice share them
    again = await teacher.json("GET", f"/questions/{created['id']}")
    assert again["correct"] == ["A", "B"] and again["updated_at"] >= created["updated_at"]

    assert await teacher.json("DELETE", f"/questions/{created['id']}") == {"ok": True}
    gone = await teacher.request("GET", f"/questions/{created['id']}")
    assert gone.status == 404
    assert [q["id"] for q in (await teacher.json("GET", "/questions"))["items"]] == [number["id"]]
    actions = await audit_actions(server)
    assert actions.count("question_created") == 2
    assert "question_updated" in actions and "question_deleted" in actions


# -- who sees what -------------------------------------------------------------------------------------
async def test_questions_are_seen_by_their_author_the_same_subjects_teachers_if_shared_and_admins(server, school):
    async with server.db() as db:
        colleague = await add_user(db, "teacher", "Vũ Văn Toàn")  # also teaches Toán, in another class
        db.add(TeachingAssignment(teacher_id=colleague.id, class_id=school.other_class.id, subject="Toán"))
        await db.commit()
    author = await server.logged_in(school.teacher)
    private = await author.json("POST", "/questions", json=QUADRATIC, expect=201)
    shared = await author.json(
        "POST", "/questions", json={**QUADRATIC, "text": "Câu chia sẻ", "shared": True}, expect=201
    )

    same_subject = await server.logged_in(colleague)
    seen = (await same_subject.json("GET", "/questions"))["items"]
    assert [q["id"] for q in seen] == [shared["id"]]
    assert seen[0]["may_edit"] is False and seen[0]["owner"]["full_name"] == "Nguyễn Thị Hà"
    assert (await same_subject.request("GET", f"/questions/{private['id']}")).status == 404
    assert (await same_subject.json("GET", "/questions?mine=true"))["items"] == []
    refused = await same_subject.request("PATCH", f"/questions/{shared['id']}", json={"text": "Sửa trộm"})
    assert refused.status == 403 and "người soạn" in (await refused.json())["error"]["message"]
    assert (await same_subject.request("DELETE", f"/questions/{shared['id']}")).status == 403
    assert (await same_subject.request("PUT", f"/questions/{shared['id']}/image", data=png())).status == 403

    other_subject = await server.logged_in(school.other_teacher)  # teaches Văn
    assert (await other_subject.json("GET", "/questions"))["items"] == []
    assert (await other_subject.json("GET", "/questions/subjects"))["items"] == []
    assert (await other_subject.request("GET", f"/questions/{shared['id']}")).status == 404

    for account in (school.student, school.parent, school.observer):
        person = await server.logged_in(account)
        response = await person.request("GET", "/questions")
        assert response.status == 403, account.role
        assert (await person.request("POST", "/questions", json=QUADRATIC)).status == 403

    admin = await server.logged_in(school.admin)
    everything = (await admin.json("GET", "/questions"))["items"]
    assert {q["id"] for q in everything} == {private["id"], shared["id"]}
    assert all(q["may_edit"] for q in everything)
    fixed = await admin.json("PATCH", f"/questions/{private['id']}", json={"text": "Sửa bởi quản trị"})
    assert fixed["text"] == "Sửa bởi quản trị"
    assert (await author.json("GET", f"/questions/{private['id']}"))["text"] == "Sửa bởi quản trị"
    assert (await author.json("GET", f"/questions/{shared['id']}"))["text"] == "Câu chia sẻ"  # not changed


# -- the rules of a question ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"kind": "essay"}, "kind", "essay"),
        ({"correct": ["E"]}, "correct", "không nằm trong các lựa chọn"),
        ({"correct": None, "points": 2}, "points", "Points need a correct answer"),
        ({"kind": "number", "options": [], "correct": ["ba phẩy năm"]}, "correct", "one number"),
        ({"text": "x" * 1001}, "text", "longer than 1000"),
        ({"options": ["Chỉ một lựa chọn"], "correct": ["A"]}, "options", "2 to 6 options"),
        ({"kind": "truefalse", "correct": ["true"]}, "options", "Only single and multiple choice"),
        ({"correct": ["A", "B"]}, "correct", "exactly one"),
        ({"tolerance": 0.5}, "tolerance", "Only a number question"),
        ({"points": 5000}, "points", "0 to 1000"),
        ({"subject": "  "}, "subject", "Chưa ghi môn học"),
    ],
    ids=[
        "bad kind",
        "letter not an option",
        "points without correct",
        "number not a number",
        "too long",
        "one option",
        "options on true/false",
        "two answers to single",
        "tolerance not number",
        "points too high",
        "no subject",
    ],
)
async def test_a_wrong_question_is_refused_with_what_to_fix(server, school, change, field, words):
    teacher = await server.logged_in(school.teacher)
    response = await teacher.request("POST", "/questions", json={**QUADRATIC, **change})
    body = await response.json()
    assert response.status == 400, body
    assert body["error"]["code"] == "invalid_question"
    assert field in [d["field"] for d in body["error"]["details"]]
    message = next(d["message"] for d in body["error"]["details"] if d["field"] == field)
    assert words in message and " / " in message  # English, then Vietnamese
    assert await question_count(server) == 0


async def test_a_change_that_breaks_the_question_is_refused_and_nothing_changes(server, school):
    teacher = await server.logged_in(school.teacher)
    created = await teacher.json("POST", "/questions", json=QUADRATIC, expect=201)
    one_option = await teacher.request("PATCH", f"/questions/{created['id']}", json={"options": ["x = 2"]})
    assert one_option.status == 400 and (await one_option.json())["error"]["details"][0]["field"] == "options"
    broken = await teacher.request("PATCH", f"/questions/{created['id']}", json={"correct": ["F"]})
    assert broken.status == 400 and (await broken.json())["error"]["details"][0]["field"] == "correct"
    unchanged = await teacher.json("GET", f"/questions/{created['id']}")
    assert unchanged["correct"] == ["B"] and unchanged["options"] == QUADRATIC["options"]


# -- images --------------------------------------------------------------------------------------------
async def test_an_image_is_shown_to_the_class_through_a_signed_link(server, school):
    teacher = await server.logged_in(school.teacher)
    created = await teacher.json("POST", "/questions", json=QUADRATIC, expect=201)
    picture = png(4, 3)
    with_image = await teacher.json(
        "PUT", f"/questions/{created['id']}/image", data=picture, headers={"Content-Type": "image/png"}
    )
    url = with_image["image_url"]
    assert url.startswith("/api/question-images/")  # the form the room accepts (signaling/protocol.py)
    stored = server.settings.files_dir / "question-images"
    files = [p for p in stored.iterdir()]
    assert len(files) == 1 and files[0].read_bytes() == picture
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600 and stat.S_IMODE(stored.stat().st_mode) == 0o700

    # A student in the room opens the picture the teacher's question carries.
    student = await server.logged_in(school.student)
    shown = await student.request("GET", server.base_url + url)
    assert shown.status == 200 and await shown.read() == picture
    assert shown.headers["Content-Type"] == "image/png"
    assert shown.headers["Cache-Control"] == "private, max-age=3600"
    assert (await server.person(None).request("GET", server.base_url + url)).status == 401
    token = url.rsplit("/", 1)[1]
    versioned = await student.request("GET", f"/question-images/{token}")  # /api/v1/…, as openapi.json lists it
    assert versioned.status == 200 and await versioned.read() == picture

    # Every reading signs the link afresh, valid for about a day.
    expires = int(token.split(".")[2])
    assert 24 * 3600 <= expires - time.time() <= 25 * 3600 + 5

    # A link nobody signed, or signed for another question, or damaged, is refused; so is an old one.
    qid, prefix, exp, mac = token.split(".")
    for forged in (
        f"{int(qid) + 1}.{prefix}.{exp}.{mac}",
        f"{qid}.{prefix}.{int(exp) + 3600}.{mac}",
        f"{qid}.{prefix}.{exp}.{mac[:-2]}AA",
        "abc",
        f"{qid}.{prefix}.{exp}",
    ):
        refused = await student.request("GET", f"/question-images/{forged}")
        assert refused.status == 404, forged
    secret = server.settings.secret_key
    old = questions.image_token(secret, created["id"], files[0].name, int(time.time()) - 10)
    expired = await student.request("GET", f"/question-images/{old}")
    assert expired.status == 410 and (await expired.json())["error"]["code"] == "image_link_expired"

    # A new picture: the old link no longer shows anything, the old file is gone.
    replaced = await teacher.json("PUT", f"/questions/{created['id']}/image", data=png(2, 2, seed=7))
    assert (await student.request("GET", server.base_url + url)).status == 404
    assert (await student.request("GET", server.base_url + replaced["image_url"])).status == 200
    assert len(list(stored.iterdir())) == 1

    removed = await teacher.json("DELETE", f"/questions/{created['id']}/image")
    assert removed["image_url"] is None and list(stored.iterdir()) == []
    assert "question_image_set" in await audit_actions(server)


async def test_only_a_picture_of_at_most_1_mb_is_taken(server, school):
    teacher = await server.logged_in(school.teacher)
    created = await teacher.json("POST", "/questions", json=QUADRATIC, expect=201)
    pdf = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
    not_image = await teacher.request(
        "PUT", f"/questions/{created['id']}/image", data=pdf, headers={"Content-Type": "image/png"}
    )  # the name lies; the content tells
    assert not_image.status == 415 and (await not_image.json())["error"]["code"] == "not_an_image"
    huge = png() + b"\x00" * (1024 * 1024)
    too_big = await teacher.request("PUT", f"/questions/{created['id']}/image", data=huge)
    assert too_big.status == 413 and (await too_big.json())["error"]["code"] == "file_too_large"
    empty = await teacher.request("PUT", f"/questions/{created['id']}/image", data=b"")
    assert empty.status == 400
    assert (await teacher.json("GET", f"/questions/{created['id']}"))["image_url"] is None
    assert (
        not (server.settings.files_dir / "question-images").exists()
        or list((server.settings.files_dir / "question-images").iterdir()) == []
    )


# -- XLSX ----------------------------------------------------------------------------------------------
FILLED = [  # as a teacher types them into the template: Vietnamese words, comma decimals, a number typed as one
    [
        "Toán",
        "Chương 1. Mệnh đề",
        "Một đáp án",
        "2 + 2 = ?",
        "3",
        "4",
        "5",
        None,
        None,
        None,
        "B",
        None,
        1,
        "Phép cộng.",
        "Có",
    ],
    [
        "Toán",
        "Chương 1. Mệnh đề",
        "Nhiều đáp án",
        "Số nào chẵn?",
        "2",
        "3",
        "4",
        "7",
        None,
        None,
        "A, C",
        None,
        2,
        None,
        "Không",
    ],
    [
        "Toán",
        "Chương 2. Hàm số",
        "Đúng/Sai",
        "Hàm y = 2x đồng biến trên R.",
        None,
        None,
        None,
        None,
        None,
        None,
        "Đúng",
        None,
        0.5,
        None,
        None,
    ],
    [
        "Ngữ văn",
        "",
        "Trả lời ngắn",
        'Tác giả "Truyện Kiều"?',
        None,
        None,
        None,
        None,
        None,
        None,
        "Nguyễn Du | Tố Như",
        None,
        1,
        None,
        "có",
    ],
    [
        "Vật lý",
        "Chương 1",
        "Số",
        "Tốc độ (km/h) khi đi 7 km trong 2 giờ?",
        None,
        None,
        None,
        None,
        None,
        None,
        "3,5",
        "0,1",
        1,
        "v = s/t",
        "Không",
    ],
    [
        "Vật lý",
        "Chương 1",
        "number",
        "Gia tốc rơi tự do (m/s²)?",
        None,
        None,
        None,
        None,
        None,
        None,
        9.8,
        0.05,
        None,
        None,
        None,
    ],
    [
        "Toán",
        "Khảo sát",
        "single",
        "Em thích học nhóm không?",
        "Có",
        "Không",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        "Không",
    ],
]
EXPECTED = [  # the same questions as the bank keeps them
    ("Toán", "Chương 1. Mệnh đề", "single", "2 + 2 = ?", ["3", "4", "5"], ["B"], None, 1.0, "Phép cộng.", True),
    ("Toán", "Chương 1. Mệnh đề", "multiple", "Số nào chẵn?", ["2", "3", "4", "7"], ["A", "C"], None, 2.0, None, False),
    ("Toán", "Chương 2. Hàm số", "truefalse", "Hàm y = 2x đồng biến trên R.", [], ["true"], None, 0.5, None, False),
    ("Ngữ văn", "", "text", 'Tác giả "Truyện Kiều"?', [], ["Nguyễn Du", "Tố Như"], None, 1.0, None, True),
    ("Vật lý", "Chương 1", "number", "Tốc độ (km/h) khi đi 7 km trong 2 giờ?", [], ["3.5"], 0.1, 1.0, "v = s/t", False),
    ("Vật lý", "Chương 1", "number", "Gia tốc rơi tự do (m/s²)?", [], ["9.8"], 0.05, None, None, False),
    ("Toán", "Khảo sát", "single", "Em thích học nhóm không?", ["Có", "Không"], None, None, None, None, False),
]


def as_tuple(q: dict) -> tuple:
    return (
        q["subject"],
        q["topic"],
        q["kind"],
        q["text"],
        q["options"],
        q["correct"],
        q["tolerance"],
        q["points"],
        q["explanation"],
        q["shared"],
    )


def filled_template(template: bytes, rows: list[list]) -> bytes:
    book = load_workbook(io.BytesIO(template))
    sheet = book["Câu hỏi"]
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def import_file(person, data: bytes):
    return await person.request("POST", "/questions/import", data=data, headers={"Content-Type": XLSX})


async def test_the_template_filled_in_imports_and_exports_the_same_questions(server, school):
    teacher = await server.logged_in(school.teacher)
    response = await teacher.request("GET", "/questions/template.xlsx")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["Content-Disposition"]
    template = await response.read()
    book = load_workbook(io.BytesIO(template))
    assert book.sheetnames == ["Câu hỏi", "Hướng dẫn", "Ví dụ"]
    header = [c.value for c in book["Câu hỏi"][1]]
    assert header[:4] == ["Môn học / Subject", "Chủ đề (chương) / Topic", "Loại / Kind", "Câu hỏi / Question"]
    assert header[4] == "Lựa chọn A / Option A" and header[9] == "Lựa chọn F / Option F"
    assert header[10:] == [
        "Đáp án đúng / Correct answer",
        "Sai số / Tolerance",
        "Điểm / Points",
        "Giải thích / Explanation",
        "Chia sẻ / Shared",
    ]
    assert book["Câu hỏi"].max_row == 1  # nothing to delete before filling it in
    assert book["Ví dụ"].max_row > 3  # examples, one per kind

    imported = await import_file(teacher, filled_template(template, FILLED))
    assert imported.status == 200, await imported.text()
    assert await imported.json() == {"created": len(FILLED), "errors": []}
    mine = (await teacher.json("GET", "/questions"))["items"]
    assert sorted(as_tuple(q) for q in mine) == sorted(EXPECTED)
    assert "questions_imported" in await audit_actions(server)

    # The export, imported again (by an admin), gives the same questions: nothing lost on the way.
    exported = await teacher.request("GET", "/questions/export.xlsx")
    assert exported.status == 200
    admin = await server.logged_in(school.admin)
    again = await import_file(admin, await exported.read())
    assert (await again.json())["created"] == len(FILLED)
    admins = [q for q in (await admin.json("GET", "/questions"))["items"] if q["owner"]["id"] == school.admin.id]
    assert sorted(as_tuple(q) for q in admins) == sorted(EXPECTED)

    # The export follows the filters: one subject.
    physics = await teacher.request("GET", "/questions/export.xlsx?subject=Vật lý")
    rows = list(load_workbook(io.BytesIO(await physics.read()))["Câu hỏi"].iter_rows(min_row=2, values_only=True))
    assert [r[3] for r in rows] == [e[3] for e in EXPECTED if e[0] == "Vật lý"]


async def test_an_import_with_bad_rows_names_each_and_creates_nothing(server, school):
    teacher = await server.logged_in(school.teacher)
    template = await (await teacher.request("GET", "/questions/template.xlsx")).read()
    rows = [
        FILLED[0],  # line 2: good
        ["Toán", "", "Một đáp án", "Chọn một", "x", "y", None, None, None, None, "D", None, 1, None, None],  # 3
        FILLED[1],  # line 4: good
        ["Toán", "", "Tự luận", "Viết đoạn văn", None, None, None, None, None, None, None, None, None, None, None],
        ["", "", "Số", "Bao nhiêu?", None, None, None, None, None, None, "ba", None, None, None, None],  # line 6
        [None] * 15,  # line 7: blank, skipped
        [
            "Toán",
            "",
            "Đúng/Sai",
            "Trái Đất quay",
            None,
            None,
            None,
            None,
            None,
            None,
            "Có lẽ",
            None,
            "hai",
            None,
            "Có",
        ],  # line 8
    ]
    response = await import_file(teacher, filled_template(template, rows))
    body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "import_rejected"
    found = {(e["line"], e["column"]) for e in body["errors"]}
    assert found == {
        (3, "Đáp án đúng / Correct answer"),
        (5, "Loại / Kind"),
        (6, "Môn học / Subject"),
        (6, "Đáp án đúng / Correct answer"),
        (8, "Đáp án đúng / Correct answer"),
        (8, "Điểm / Points"),
    }
    assert body["errors"] == body["error"]["details"] and body["created"] == 0
    assert all(" / " in e["reason"] for e in body["errors"])
    assert "Tự luận" in next(e["reason"] for e in body["errors"] if e["line"] == 5)
    assert await question_count(server) == 0  # the good rows 2 and 4 were not created either


async def test_an_import_that_is_not_a_question_sheet_is_refused_clearly(server, school):
    teacher = await server.logged_in(school.teacher)
    cases = [
        (b"ho_ten,lop\nAn,10A1\n", 400, "not_xlsx"),  # a CSV
        (b"PK\x03\x04 not really a zip", 400, "not_xlsx"),
        (b"PK\x03\x04" + b"\x00" * (2 * 1024 * 1024), 413, "file_too_large"),
        (xlsx_book([("Câu hỏi", ["Tên", "Lớp"], [["An", "10A1"]])]), 400, "bad_header"),
        (xlsx_book([("Câu hỏi", question_sheets.HEADER, [FILLED[0]] * 1001)]), 413, "too_many_rows"),
        (xlsx_book([("Câu hỏi", question_sheets.HEADER, [])]), 400, "empty_import"),
    ]
    for data, status, code in cases:
        response = await import_file(teacher, data)
        body = await response.json()
        assert (response.status, body["error"]["code"]) == (status, code), body
        assert " / " in body["error"]["message"]
    assert await question_count(server) == 0
    # 1000 questions are fine.
    thousand = await import_file(teacher, xlsx_book([("Câu hỏi", question_sheets.HEADER, [FILLED[0]] * 1000)]))
    assert (await thousand.json())["created"] == 1000
